// The expert FFN's roofline panel (opened from the dispatch view or the View menu): time per FFN over tokens per
// expert for the scenario's d, F, E, k. Measured on the GPU by a background job; without one (or until then), the
// run saved on a GPU machine for this shape (the run of record carried in the binary, or --roofline FILE), and
// modelled where there is none; the panel says which.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "app/gui/app_state.hpp"
#include "app/gui/roofline_chart.hpp"
#include "demos/lesson_expr.hpp"

namespace moelab_gui {
namespace {

using demos::lesson::format_number;

// Tokens per expert of the scenario: the routing's kept mean when it ran for this scenario, else T·k/E.
double scenario_tokens_per_expert(const Session& ses) {
    const demos::Scenario& s = ses.scenario();
    const demos::Result* r = ses.results().loads();
    if (r && r->scenario == s && r->mean_load > 0) return r->mean_load;
    return s.experts > 0 ? double(s.tokens) * s.top_k / s.experts : 0;
}

// The line under the title: where the chart's numbers come from now, the job's progress, or why it failed.
void status_line(const Session& ses, const demos::ExpertRoofline& rl, bool gpu, bool measured, Commands& cmd) {
    const Palette& pal = skin().pal;
    ImGui::PushTextWrapPos(0);
    const bool saved = !rl.recorded.empty();
    // What the chart shows until this GPU has measured the shape.
    const std::string until =
        saved ? "(showing the run measured on " + rl.recorded + " until then)" : "(modeled until then)";
    if (!gpu) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(pal.warn));
        if (saved)
            ImGui::Text(
                "CPU backend in use: nothing is timed here. The points were measured on %s and saved there "
                "(hover the badge for the file); with a GPU (--backend cuda) the panel measures them here.",
                rl.recorded.c_str());
        else
            ImGui::TextUnformatted(
                "CPU backend in use: nothing is timed here. The lines are modeled from the ceilings recorded on an "
                "NVIDIA H200 (kernels/bench/RESULTS.md); with a GPU (--backend cuda) the panel measures them and the "
                "engine's own choice at each point.");
        ImGui::PopStyleColor();
        anchor("roofline:cpu_note");
        if (saved) anchor("roofline:recorded");
    } else if (measured) {
        ImGui::TextDisabled("measured on %s: read %s GB/s, bf16 GEMM %s TFLOP/s, auto timed at %zu points",
                            rl.ceilings.device.c_str(), format_number(rl.ceilings.read_gbps).c_str(),
                            format_number(rl.ceilings.gemm_tflops).c_str(), rl.points.size());
        anchor("roofline:measured");
    } else if (ses.error().present && ses.error().job == slot_name(Slot::Roofline)) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(pal.bad));
        ImGui::Text("measuring the roofline failed: %s", ses.error().message.c_str());
        ImGui::PopStyleColor();
        anchor("roofline:error");
        if (ImGui::Button("Try again")) cmd.simple(CommandKind::MeasureRoofline);
        anchor("roofline:retry");
    } else if (ses.busy()) {
        const RunnerStatus& st = ses.status();
        const bool mine = st.what.rfind(slot_name(Slot::Roofline), 0) == 0;
        ImGui::TextDisabled("%s", mine ? ("Measuring " + st.what + "… " + until).c_str()
                                       : ("roofline: waiting for the runs before it… " + until).c_str());
        anchor("roofline:measuring");
        ImGui::SameLine();
        ImGui::ProgressBar(st.fraction, ImVec2(std::min(ImGui::GetContentRegionAvail().x, 200.0f), 0), "");
    } else {
        ImGui::TextDisabled("not measured on this GPU for this shape yet %s", until.c_str());
        ImGui::SameLine();
        if (ImGui::SmallButton("Measure on the GPU")) cmd.simple(CommandKind::MeasureRoofline);
        anchor("roofline:measure");
    }
    ImGui::PopTextWrapPos();
}

// The caption under the chart: the ridge, why decode is weight-bound, and what "% of the roofline" means, with
// this scenario's numbers.
std::string caption(const demos::ExpertRoofline& rl, double tpe) {
    const demos::RooflineCeilings& c = rl.ceilings;
    const double ridge = demos::ridge_tokens_per_expert(c);
    std::string s = "Ridge ≈ " + format_number(std::round(ridge)) +
                    " tokens per expert = " + format_number(c.gemm_tflops) + " TFLOP/s ÷ " +
                    format_number(c.read_gbps) +
                    " GB/s: each weight (2 bytes) does 2 FLOPs per token, so an expert does about one FLOP per byte "
                    "it reads per token it gets. Below the ridge the weights take longer to stream in than the "
                    "FLOPs take to run: decode, with a few tokens per expert, is weight-bound, and its time stays "
                    "flat (every active expert's 3·F·d weights read once) however few tokens there are, falling "
                    "only once experts go empty. Above the ridge, time grows with the tokens. % of the roofline = "
                    "the roofline's time ÷ the measured time: 100% is as fast as the two ceilings allow.";
    if (std::any_of(rl.points.begin(), rl.points.end(), [](const demos::RooflinePoint& p) { return p.probe_ms > 0; }))
        s += " The diamonds are the same work without the FFN around it, timed beside each point: below the ridge "
             "the weights read alone as the FFN reads them (two dependent kernels, no arithmetic), above it cuBLAS "
             "over all the rows as if one expert had them all. The gap between a dot and its diamond is the FFN's "
             "own; the gap between the diamond and the line is the hardware's at that size.";
    if (std::any_of(rl.points.begin(), rl.points.end(),
                    [](const demos::RooflinePoint& p) { return p.balanced_ms > 0; }))
        s += " The squares, above the ridge, are the same FFN with the tokens routed round-robin, so every expert "
             "gets the same number: random routing gives some experts a last token tile of only a few tokens, "
             "which streams that expert's weights all the same, and the gap between a dot and its square is what "
             "that costs.";
    const auto peer =
        std::find_if(rl.points.begin(), rl.points.end(), [](const demos::RooflinePoint& p) { return p.peer_ms > 0; });
    if (peer != rl.points.end())
        s += " The crosses are PyTorch (" + peer->peer +
             ") running the same gated FFN on the same tokens in the same run: the peer the engine is measured "
             "against.";
    if (tpe > 0) {
        const demos::RooflineFloor f = demos::roofline_floor(rl.shape, c, tpe);
        s += " This scenario: " + format_number(tpe) + " tokens per expert, " +
             (f.weight_bound() ? "weight-bound" : "math-bound") + ", roofline " + charts::fmt_ms(f.roof_ms()) + ".";
    }
    return s;
}

void draw_roofline(const Session& ses, ViewState& vs, Commands& cmd) {
    (void)vs;
    if (!ses.invalid().empty()) {
        no_result_note(ses, "roofline");
        return;
    }
    const demos::Scenario& s = ses.scenario();
    const demos::RooflineShape shape = demos::roofline_shape(s);
    const bool gpu = !ses.cpu_backend();
    const auto& held = ses.results().roofline;
    const bool measured = gpu && held && held->shape == shape;
    const demos::ExpertRoofline* saved = measured ? nullptr : ses.saved_roofline(shape);
    demos::ExpertRoofline modeled;
    if (!measured && !saved) modeled = demos::modeled_roofline(shape);
    const demos::ExpertRoofline& rl = measured ? *held : saved ? *saved : modeled;
    const double tpe = scenario_tokens_per_expert(ses);

    ImGui::Text("Expert FFN: d = %d, F = %d, E = %d, top-%d", s.hidden, s.ffn, s.experts, s.top_k);
    ImGui::SameLine();
    source_badge(skin().pal, rl.source);
    anchor(std::string("roofline:") + demos::lesson::source_name(rl.source));
    if (ImGui::IsItemHovered()) {
        std::string tip;
        for (const std::string& n : rl.notes) tip += (tip.empty() ? "" : "\n\n") + n;
        wrapped_tooltip(tip.c_str());
    }
    status_line(ses, rl, gpu, measured, cmd);

    const std::string text = caption(rl, tpe);
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const float wrap_lines = std::ceil(ImGui::CalcTextSize(text.c_str(), nullptr, false, avail.x).y /
                                       std::max(1.0f, ImGui::GetTextLineHeight()));
    const float caption_h = (wrap_lines + 0.5f) * ImGui::GetTextLineHeightWithSpacing();
    char mark[64];
    std::snprintf(mark, sizeof mark, "this scenario: %s per expert", format_number(tpe).c_str());
    roofline::chart(rl, {{tpe, mark}}, ImVec2(avail.x, std::max(180.0f, avail.y - caption_h)), "panel",
                    "roofline:chart");
    ImGui::PushTextWrapPos(0);
    ImGui::TextDisabled("%s", text.c_str());
    ImGui::PopTextWrapPos();
    anchor("roofline:caption");
}

}  // namespace

void roofline::lesson_reveal_chart(const demos::LessonReveal& rv, float height, const demos::ExpertRoofline* saved) {
    if (rv.experiments.empty() || rv.experiments[0].curve.empty() || rv.results.empty()) return;
    const demos::Scenario& s = rv.results[0].scenario;
    const demos::ExpertRoofline rl = demos::roofline_of_experiment(rv.experiments[0], s.hidden, s.ffn);
    if (rl.lines.empty()) return;
    std::vector<Mark> marks;
    for (std::size_t i = 0; i < rv.results.size(); ++i) {
        const std::string& name = i < rv.run_names.size() ? rv.run_names[i] : std::string();
        marks.push_back({rv.results[i].mean_load,
                         (name.empty() ? "" : name + ": ") + "T = " + std::to_string(rv.results[i].scenario.tokens)});
    }
    ImGui::TextUnformatted("One expert's FFN over tokens per expert");
    ImGui::SameLine();
    source_badge(skin().pal, rl.source);
    anchor(std::string("lesson:roofline:") + demos::lesson::source_name(rl.source));
    chart(rl, marks, ImVec2(ImGui::GetContentRegionAvail().x, height), "lesson", "lesson:roofline");
    // Modelled here (no GPU): the engine's whole FFN on the same shape as a GPU machine measured it, if saved.
    if (!saved || rl.source == demos::lesson::Source::MeasuredGpu || saved->shape != demos::roofline_shape(s)) return;
    ImGui::Text("The engine's whole FFN on this shape, measured on %s", saved->recorded.c_str());
    ImGui::SameLine();
    source_badge(skin().pal, saved->source);
    anchor("lesson:roofline:recorded");
    if (ImGui::IsItemHovered() && !saved->notes.empty()) wrapped_tooltip(saved->notes.front().c_str());
    chart(*saved, marks, ImVec2(ImGui::GetContentRegionAvail().x, height), "lesson-saved", "lesson:roofline:saved");
}

void show_roofline(const Session& ses, ViewState& vs, Commands& cmd, bool* p_open) {
    if (begin_view(vs, ViewId::Roofline, p_open)) draw_roofline(ses, vs, cmd);
    ImGui::End();
}

}  // namespace moelab_gui
