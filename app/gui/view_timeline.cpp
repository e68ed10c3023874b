// Pipeline timeline: MegaScale-Infer's ping-pong lanes (attention, A2E, experts, E2A, per rank on request)
// coloured by micro-batch, the model as a hatched ghost beneath any measurement, the m ≥ 2(1+Tc/Tf) check,
// and the measured stages of one layer pass with their min / median / p95.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>

#include "app/gui/app_state.hpp"
#include "demos/pipeline.hpp"

namespace moelab_gui {
namespace {

const char* kPipeLanes[] = {"attention", "a2e", "experts", "e2a"};
const char* kPipeNames[] = {"attention", "A2E", "experts", "E2A"};

int pipe_lane(const std::string& lane) {
    for (int i = 0; i < 4; ++i)
        if (lane == kPipeLanes[i]) return i;
    return -1;
}

// Draw data for the pipeline lanes: model spans as ghosts, measured spans solid on top, per rank if asked.
charts::Lanes build_pipeline(const demos::Result& r, const ViewState& vs, std::vector<const demos::Span*>* index) {
    charts::Lanes l;
    l.id = "pipeline";
    std::vector<const demos::Span*> measured;
    for (const demos::Span& s : r.timeline)
        if (pipe_lane(s.lane) >= 0) measured.push_back(&s);
    int ranks = 1;
    if (vs.timeline_per_rank) {
        for (const demos::Span& s : r.model_timeline) ranks = std::max(ranks, s.rank + 1);
        for (const demos::Span* s : measured) ranks = std::max(ranks, s->rank + 1);
    }
    for (int g = 0; g < ranks; ++g)
        for (int i = 0; i < 4; ++i) {
            l.lane_names.push_back(ranks > 1 ? std::string(kPipeNames[i]) + " r" + std::to_string(g) : kPipeNames[i]);
            l.lane_ghost.push_back(measured.empty());
        }
    auto add = [&](const demos::Span& s, bool ghost) {
        int lane = pipe_lane(s.lane);
        if (lane < 0) return;
        charts::LaneSpan ls;
        ls.lane = (ranks > 1 ? s.rank * 4 : 0) + lane;
        ls.t0 = s.start_ms;
        ls.t1 = s.end_ms;
        ls.color = skin().pal.series_at(s.micro_batch);
        ls.ghost = ghost;
        ls.id = static_cast<int>(index->size());
        ls.label = "mb" + std::to_string(s.micro_batch);
        index->push_back(&s);
        l.spans.push_back(std::move(ls));
    };
    if (vs.timeline_show_model)
        for (const demos::Span& s : r.model_timeline) add(s, true);
    if (vs.timeline_show_measured)
        for (const demos::Span* s : measured) add(*s, s->provenance == demos::Provenance::Modeled);
    return l;
}

// Draw data for one measured layer pass: one lane per backend, a span per stage.
charts::Lanes build_stages(const demos::Result& r, const ViewState& vs, std::vector<const demos::Span*>* index) {
    charts::Lanes l;
    l.id = "stages";
    std::map<std::string, int> lanes;
    int stage_i = 0;
    for (const demos::Span& s : r.timeline) {
        if (pipe_lane(s.lane) >= 0) continue;
        auto it = lanes.find(s.lane);
        if (it == lanes.end()) {
            it = lanes.emplace(s.lane, static_cast<int>(l.lane_names.size())).first;
            l.lane_names.push_back("layer (" + s.lane + ")");
            l.lane_ghost.push_back(s.provenance == demos::Provenance::Modeled);
        }
        charts::LaneSpan ls;
        ls.lane = it->second;
        ls.t0 = s.start_ms;
        ls.t1 = s.end_ms;
        ls.color = skin().pal.series_at(stage_i++);
        ls.ghost = s.provenance == demos::Provenance::Modeled;
        ls.id = static_cast<int>(index->size());
        ls.label = s.label;
        index->push_back(&s);
        l.spans.push_back(std::move(ls));
    }
    return l;
}

void span_tooltip(const demos::Span& s) {
    char buf[400];
    const int lane = pipe_lane(s.lane);
    std::snprintf(buf, sizeof buf, "%s%s\nlayer %d · micro-batch %d · rank %d\nstart %s · duration %s\n%s",
                  lane >= 0 ? kPipeNames[lane] : s.label.c_str(), lane >= 0 ? "" : " (stage)", s.layer, s.micro_batch,
                  s.rank, charts::fmt_ms(s.start_ms).c_str(), charts::fmt_ms(s.end_ms - s.start_ms).c_str(),
                  demos::provenance_name(s.provenance));
    wrapped_tooltip(buf);
}

void condition_line(const demos::PipelineSummary& p, ViewState& vs) {
    const Palette& pal = skin().pal;
    const double ratio = p.tf_ms > 0 ? p.tc_ms / p.tf_ms : 0;
    ImGui::PushFont(skin().fonts.bold);
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(p.comm_hidden ? pal.ok : pal.bad));
    ImGui::Text("%s  m = %d %s 2(1 + Tc/Tf) = 2(1 + %s/%s) = %.2f", p.comm_hidden ? "✓" : "✗", p.micro_batches,
                p.comm_hidden ? "≥" : "<", charts::fmt_ms(p.tc_ms).c_str(), charts::fmt_ms(p.tf_ms).c_str(),
                2 * (1 + ratio));
    ImGui::PopStyleColor();
    ImGui::PopFont();
    anchor("megascale_condition");
    if (ImGui::IsItemHovered())
        wrapped_tooltip(
            "MegaScale-Infer's ping-pong condition: with m micro-batches, each stage must find work while "
            "the others travel A2E and E2A, so m·Tf ≥ 2(Tf + Tc), i.e. m ≥ 2(1 + Tc/Tf), Tf = max(Ta, Te). "
            "With fast links (Tc < Tf/2) m = 3 suffices; slower links need m ≥ 4.");
    ImGui::TextUnformatted(p.comm_hidden ? "communication hidden behind compute"
                                         : "communication exposed: add micro-batches or a faster link");
    ImGui::SameLine();
    provenance_badge(pal, p.provenance);
    ImGui::Text("Ta %s · Te %s · Tc %s · iteration %s", charts::fmt_ms(p.ta_ms).c_str(),
                charts::fmt_ms(p.te_ms).c_str(), charts::fmt_ms(p.tc_ms).c_str(), charts::fmt_ms(p.total_ms).c_str());
    if (ImGui::IsItemHovered()) {
        char buf[400];
        std::snprintf(buf, sizeof buf,
                      "Per micro-batch: attention Ta, experts Te, one A2E or E2A transfer Tc.\n"
                      "Iteration (m = %d micro-batches, L = %d layers): %s simulated; closed form "
                      "(Ta + Te + 2Tc) + Tf·(m·L − 1) = %s. The two agree when communication is hidden or L = 1.\n"
                      "Busy: attention %.0f%% of the iteration, experts %.0f%%.",
                      p.micro_batches, p.layers, charts::fmt_ms(p.total_ms).c_str(),
                      charts::fmt_ms(p.closed_form_ms).c_str(), 100 * p.attention_util, 100 * p.expert_util);
        wrapped_tooltip(buf);
    }
}

// The split the model proposes (each stage's time ∝ 1/its SMs), as a button that re-runs there. Hidden while the
// lesson view is open on a lesson not yet revealed: the attention-sms lesson asks for exactly this.
void balance_button(const demos::PipelineRun& mp, const Session& ses, ViewState& vs, Commands& cmd) {
    const LessonSession& ls = ses.lesson();
    if (vs.show_lesson && ls.lesson() && ls.phase != LessonPhase::Revealed) return;
    const demos::SplitAdvice adv =
        demos::advise_split(mp.measured.ta_ms, mp.measured.te_ms, mp.attention_sms, mp.expert_sms, mp.device_sms);
    if (!adv.better) return;
    char label[64];
    std::snprintf(label, sizeof label, "balance: %d | %d", adv.attention_sms, adv.expert_sms);
    ImGui::SameLine();
    if (ImGui::SmallButton(label) && !vs.snapshot) {
        demos::Scenario s = ses.scenario();
        s.attention_sms = adv.attention_sms;
        cmd.set_scenario(s, ses.preset(), true);
    }
    anchor("pipeline_balance");
    if (ImGui::IsItemHovered()) {
        char buf[400];
        std::snprintf(buf, sizeof buf,
                      "%s is the slower stage (Ta %s, Te %s). Modeled, with each stage's time proportional to 1/its "
                      "SMs: %d | %d would give Ta %s, Te %s. Click to measure it there.",
                      adv.attention_bound ? "Attention" : "The expert FFN", charts::fmt_ms(mp.measured.ta_ms).c_str(),
                      charts::fmt_ms(mp.measured.te_ms).c_str(), adv.attention_sms, adv.expert_sms,
                      charts::fmt_ms(adv.ta_ms).c_str(), charts::fmt_ms(adv.te_ms).c_str());
        wrapped_tooltip(buf);
    }
}

// The measured pipeline: the condition with the measured Tc and Tf, the pools and their split (a slider), and the
// calibrated model's iteration beside the measured one.
void measured_header(const demos::Result& r, const Session& ses, ViewState& vs, Commands& cmd) {
    const Palette& pal = skin().pal;
    const demos::PipelineRun& mp = r.measured_pipeline;
    condition_line(mp.measured, vs);
    ImGui::Text("measured iteration %s (min %s · p95 %s), %.3g tokens/s",
                charts::fmt_ms(mp.iteration.median_ms).c_str(), charts::fmt_ms(mp.iteration.min_ms).c_str(),
                charts::fmt_ms(mp.iteration.p95_ms).c_str(), mp.tokens_per_s);
    ImGui::SameLine();
    provenance_badge(pal, mp.link_paced ? demos::Provenance::Emulated : demos::Provenance::MeasuredGpu);
    ImGui::Text("model, calibrated on this GPU: %s (%+.0f%%)", charts::fmt_ms(r.pipeline.total_ms).c_str(),
                100 * mp.model_error);
    ImGui::SameLine();
    provenance_badge(pal, demos::Provenance::Modeled);
    if (ImGui::IsItemHovered()) {
        char buf[400];
        std::snprintf(buf, sizeof buf,
                      "The model's constants were fitted from solo runs of each stage on these pools: Ta = %.3g·ba + "
                      "%.3g µs, Te = %.3g·be + %.3g µs, Tc = %.1f µs + bytes / %.0f GB/s.",
                      mp.k1, mp.k2, mp.k3, mp.k4, mp.link_latency_us, mp.link_gbps);
        wrapped_tooltip(buf);
    }
    if (mp.pools == "green-contexts" && mp.device_sms > 16) {
        static int split = 0;          // the slider's value while it is dragged
        static bool dragging = false;  // else it follows the result
        if (!dragging) split = mp.attention_sms;
        ImGui::SetNextItemWidth(std::min(320.0f, ImGui::GetContentRegionAvail().x * 0.5f));
        ImGui::SliderInt("attention SMs", &split, 8, mp.device_sms - 8, "%d");
        dragging = ImGui::IsItemActive();
        anchor("pipeline_split");
        if (ImGui::IsItemDeactivatedAfterEdit() && !vs.snapshot) {
            demos::Scenario s = ses.scenario();
            s.attention_sms = split;
            cmd.set_scenario(s, ses.preset(), true);
        }
        if (ImGui::IsItemHovered())
            wrapped_tooltip(
                "Green contexts split this GPU's SMs into an attention pool and an expert pool: the "
                "one-GPU analogue of MegaScale-Infer's attention replicas n_a. Release to re-run.");
        ImGui::SameLine();
        ImGui::TextDisabled("| experts %d of %d SMs", mp.expert_sms, mp.device_sms);
        balance_button(mp, ses, vs, cmd);
    } else {
        ImGui::TextDisabled("pools: %s%s%s", mp.pools.c_str(), mp.pools_note.empty() ? "" : " — ",
                            mp.pools_note.c_str());
    }
}

}  // namespace

static void draw_timeline(const Session& ses, ViewState& vs, Commands& cmd) {
    const Palette& pal = skin().pal;
    const ResultSet& rs = ses.results();
    const demos::Result* pr = rs.pipeline && rs.pipeline_current
                                  ? &*rs.pipeline
                                  : (rs.routing ? &*rs.routing : (rs.layer ? &*rs.layer : nullptr));
    if (!pr || !pr->pipeline.present) {
        no_result_note(ses, "pipeline timeline");
        return;
    }
    if (pr->measured_pipeline.present)
        measured_header(*pr, ses, vs, cmd);
    else
        condition_line(pr->pipeline, vs);

    bool any_measured = false;
    for (const demos::Span& s : pr->timeline) any_measured |= pipe_lane(s.lane) >= 0;
    ImGui::Checkbox("model", &vs.timeline_show_model);
    anchor("timeline_model");
    ImGui::SameLine();
    if (any_measured) {
        ImGui::Checkbox("measurement", &vs.timeline_show_measured);
        ImGui::SameLine();
    }
    int span_ranks = 1;
    for (const demos::Span& s : pr->model_timeline) span_ranks = std::max(span_ranks, s.rank + 1);
    for (const demos::Span& s : pr->timeline) span_ranks = std::max(span_ranks, s.rank + 1);
    if (span_ranks > 1) {
        ImGui::Checkbox("per rank", &vs.timeline_per_rank);
        anchor("timeline_per_rank");
        ImGui::SameLine();
    }
    if (ImGui::SmallButton("fit")) {
        vs.timeline_view.fit = true;
        vs.stages_view.fit = true;
    }
    if (ImGui::IsItemHovered())
        ImGui::SetTooltip(
            "Fit the whole timeline. On the lanes: wheel zooms, drag pans, double-click fits; "
            "colour = micro-batch.");
    ImGui::SameLine();
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(pal.prov_modeled));
    ImGui::TextUnformatted(any_measured ? "hatched = model" : "hatched = modelled");
    ImGui::PopStyleColor();
    if (ImGui::IsItemHovered())
        wrapped_tooltip(any_measured
                            ? "The model's schedule is drawn hatched beneath the measured spans."
                            : "These spans are the ping-pong simulator's schedule, fed with Ta, Te and Tc from "
                              "the cost model and link bandwidth (or your overrides). No attention/expert "
                              "pipeline ran on this machine.");

    // The stage pass below wants a few lines; the pipeline takes the rest.
    const demos::Result* lr = ses.results().layer && ses.results().layer_current ? &*ses.results().layer : pr;
    std::vector<const demos::Span*> stage_index;
    charts::Lanes stages = build_stages(*lr, vs, &stage_index);
    const float stage_h = stages.spans.empty() ? 0
                                               : ImGui::GetFrameHeightWithSpacing() + skin().fonts.small_px * 1.8f +
                                                     skin().fonts.small_px * 2.2f + 8;

    std::vector<const demos::Span*> index;
    charts::Lanes lanes = build_pipeline(*pr, vs, &index);
    ImVec2 avail = ImGui::GetContentRegionAvail();
    charts::Hover h = charts::lanes(lanes, &vs.timeline_view, ImVec2(avail.x, std::max(120.0f, avail.y - stage_h)), pal,
                                    skin().fonts);
    anchor("timeline_lanes");
    if (h.index >= 0 && h.index < static_cast<int>(index.size())) span_tooltip(*index[h.index]);

    if (stages.spans.empty()) return;
    ImGui::Spacing();
    ImGui::PushFont(skin().fonts.bold);
    ImGui::TextUnformatted("one layer pass, stage by stage");
    ImGui::PopFont();
    ImGui::SameLine();
    if (lr == pr && !ses.status().busy && !vs.snapshot) {
        // Only routing and packing ran; the expert FFNs wait for a click where they take seconds.
        if (ImGui::SmallButton("+ experts")) cmd.rerun(true);
        anchor("run_full_layer_now");
        if (ImGui::IsItemHovered()) {
            char buf[300];
            std::snprintf(buf, sizeof buf,
                          "Run the whole layer (expert FFNs and combine too): %.3g GFLOP in the experts. On the CPU "
                          "reference that takes a few seconds or more, so edits re-run it automatically only below "
                          "%.0f GFLOP (and when \"re-run the full layer\" is on).",
                          layer_flops(pr->scenario) / 1e9, kCpuLayerFlops / 1e9);
            wrapped_tooltip(buf);
        }
        ImGui::SameLine();
    }
    provenance_badge(pal, lr->stages.empty() ? demos::Provenance::Modeled : lr->stages.front().provenance);
    // Short enough for presenter mode's large fonts; the detail is in the tooltip.
    char note[96];
    std::snprintf(note, sizeof note, "median of %d; hover for min · p95", lr->scenario.repeats);
    if (ImGui::GetContentRegionAvail().x - ImGui::GetItemRectSize().x > ImGui::CalcTextSize(note).x + 16) {
        ImGui::SameLine();
        ImGui::TextDisabled("%s", note);
    }
    avail = ImGui::GetContentRegionAvail();
    charts::Hover hs =
        charts::lanes(stages, &vs.stages_view, ImVec2(avail.x, std::max(40.0f, avail.y)), pal, skin().fonts);
    anchor("timeline_stages");
    if (hs.index >= 0 && hs.index < static_cast<int>(stage_index.size())) {
        const demos::Span& s = *stage_index[hs.index];
        const demos::StageTime* st = lr->stage(s.label);
        char buf[480];
        if (st) {
            const bool cpu = st->provenance == demos::Provenance::MeasuredCpu;
            std::snprintf(buf, sizeof buf, "%s\nmin %s · median %s · p95 %s over %d repeats\n%s%s", s.label.c_str(),
                          charts::fmt_ms(st->min_ms).c_str(), charts::fmt_ms(st->median_ms).c_str(),
                          charts::fmt_ms(st->p95_ms).c_str(), st->repeats, demos::provenance_name(st->provenance),
                          cpu ? "\nCPU times taken while the app draws share the cores with it; `moelab run layer` "
                                "times without it."
                              : "");
            wrapped_tooltip(buf);
        } else {
            span_tooltip(s);
        }
    }
}

void show_timeline(const Session& ses, ViewState& vs, Commands& cmd, bool* p_open) {
    if (begin_view(vs, ViewId::Timeline, p_open)) draw_timeline(ses, vs, cmd);
    ImGui::End();
}

}  // namespace moelab_gui
