// Device banner: which backend and device produced the numbers, plain notices when they come from the CPU
// reference, emulated ranks or the model, the provenance legend, and the run's progress.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "app/gui/app_state.hpp"

namespace moelab_gui {
namespace {

// A few words for the banner per caveat the results carry (Result::caveats: data, not words to search).
std::string short_notice(demos::Result::Caveat c, const demos::Scenario& s) {
    switch (c) {
        case demos::Result::Caveat::CpuReference:
            return "numbers from the CPU reference, not a GPU";
        case demos::Result::Caveat::EmulatedRanks:
            return std::to_string(s.ranks) + " ranks emulated on one device; link times modelled";
        case demos::Result::Caveat::ModeledPipeline:
            return "pipeline timeline modelled, not measured";
        case demos::Result::Caveat::NoisyStrategies:
            return "";  // the dispatch view says it where it matters
    }
    return "";
}

}  // namespace

static void draw_device(const Session& ses, ViewState& vs, Commands& cmd) {
    const Palette& pal = skin().pal;
    const demos::Result* r = ses.results().loads();
    const std::string backend = r ? r->backend : ses.backend_resolved();
    const bool cpu = backend != "cuda";

    // Line 1: backend and device.
    ImGui::PushFont(skin().fonts.bold);
    if (cpu) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(pal.warn));
        ImGui::TextUnformatted("CPU reference");
        ImGui::PopStyleColor();
    } else {
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(pal.prov_gpu));
        ImGui::TextUnformatted("GPU (CUDA)");
        ImGui::PopStyleColor();
    }
    ImGui::PopFont();
    anchor("banner_backend");
    ImGui::SameLine();
    std::string device = r ? r->device : std::string();
    if (!cpu && !ses.gpus().empty()) {
        device.clear();
        for (const auto& g : ses.gpus()) device += (device.empty() ? "" : ", ") + g;
    }
    ImGui::TextUnformatted(device.empty() ? "(device pending)" : device.c_str());
    if (cpu && !r && !ses.gpu_unavailable().empty()) {
        ImGui::SameLine();
        ImGui::TextDisabled("·  no GPU: %s", ses.gpu_unavailable().c_str());
    }

    // Right side: run status and buttons.
    const float right_w = ImGui::GetFontSize() * 24;
    ImGui::SameLine(std::max(ImGui::GetCursorPosX() + 10, ImGui::GetWindowContentRegionMax().x - right_w));
    const RunnerStatus& st = ses.status();
    if (st.busy) {
        char overlay[160];
        std::snprintf(overlay, sizeof overlay, "%s  %.1f s", st.what.c_str(), st.elapsed_s);
        ImGui::ProgressBar(st.fraction, ImVec2(ImGui::GetFontSize() * 15, 0), overlay);
        anchor("progress");
        ImGui::SameLine();
        if (ImGui::SmallButton("Cancel")) cmd.simple(CommandKind::Cancel);
        anchor("cancel");
    } else if (st.pending) {
        ImGui::TextDisabled("edit received, re-running shortly…");
    } else if (!ses.invalid().empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(pal.bad));
        ImGui::TextUnformatted("parameters invalid: showing the last valid run");
        ImGui::PopStyleColor();
    } else if (ses.error().present) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(pal.bad));
        ImGui::TextUnformatted("last run failed (see Controls)");
        ImGui::PopStyleColor();
        if (ImGui::IsItemHovered()) wrapped_tooltip(ses.error().message.c_str());
    } else {
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(pal.ok));
        ImGui::TextUnformatted(ses.results().loads() ? "✓ up to date" : "idle");
        ImGui::PopStyleColor();
    }
    // Edit to result: from an edit to the frame that first showed its loads, over this session.
    const LatencyStats& e2r = ses.edit_to_result();
    if (!e2r.samples_ms.empty()) {
        ImGui::SameLine();
        ImGui::TextDisabled("edit→result %.0f ms (p95 %.0f)", e2r.median_ms(), e2r.p95_ms());
        anchor("edit_to_result");
        if (ImGui::IsItemHovered())
            wrapped_tooltip(("From an edit to the frame that first showed its loads: median and 95th percentile over " +
                             std::to_string(e2r.samples_ms.size()) + " edits of this session.")
                                .c_str());
    }
    if (!st.busy) {
        ImGui::SameLine();
        if (ImGui::SmallButton("Re-run")) cmd.rerun();
        anchor("rerun");
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("Run the scenario again now (Space)");
    }

    // Line 2: a plain notice per caveat of the current results (full text on hover), then the provenance legend.
    std::set<std::string> seen;
    std::vector<std::pair<std::string, std::string>> notices;  // short, full
    std::string all_engine_notes;                              // the engine's full sentences, on hover
    auto notes_of = [&](const std::optional<demos::Result>& res) {
        if (!res) return;
        for (const auto& n : res->notes)
            if (seen.insert(n).second) all_engine_notes += (all_engine_notes.empty() ? "" : "\n\n") + n;
        for (demos::Result::Caveat c : {demos::Result::Caveat::CpuReference, demos::Result::Caveat::EmulatedRanks,
                                        demos::Result::Caveat::ModeledPipeline}) {
            if (!res->has(c)) continue;
            const std::string text = short_notice(c, res->scenario);
            if (seen.insert("caveat:" + text).second) notices.push_back({text, ""});
        }
    };
    notes_of(ses.results().routing);
    notes_of(ses.results().layer);
    notes_of(ses.results().dispatch);
    if (cpu && notices.empty())
        notices.push_back({"numbers from the CPU reference, not a GPU",
                           "Numbers come from the CPU reference implementation, not a GPU."});
    // One row, so the banner keeps its height: notices that do not fit fold into "+N more" (all on hover).
    for (auto& n : notices)
        if (n.second.empty()) n.second = all_engine_notes.empty() ? n.first : all_engine_notes;
    std::string all_notes = all_engine_notes;
    for (std::size_t i = 0; i < notices.size(); ++i) {
        const std::string text = "⚠ " + notices[i].first;
        const float w = ImGui::CalcTextSize(text.c_str()).x;
        const std::string more = "+" + std::to_string(notices.size() - i) + " more";
        if (i > 0) {
            ImGui::SameLine(0, ImGui::GetFontSize() * 0.8f);
            const float rest = i + 1 < notices.size() ? ImGui::CalcTextSize("+9 more").x + 16 : 0;
            if (ImGui::GetContentRegionAvail().x < w + rest) {
                ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(pal.warn), "%s", more.c_str());
                if (ImGui::IsItemHovered()) wrapped_tooltip(all_notes.c_str());
                break;
            }
        }
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(pal.warn));
        ImGui::TextUnformatted(text.c_str());
        ImGui::PopStyleColor();
        anchor("notice:" + notices[i].first.substr(0, notices[i].first.find(' ')));
        if (ImGui::IsItemHovered()) wrapped_tooltip(notices[i].second.c_str());
    }
    if (notices.empty()) ImGui::NewLine();
    ImGui::TextDisabled("every number is tagged:");
    for (demos::Provenance p : {demos::Provenance::MeasuredGpu, demos::Provenance::MeasuredCpu,
                                demos::Provenance::Emulated, demos::Provenance::Modeled}) {
        ImGui::SameLine();
        provenance_badge(pal, p);
    }
}

void show_device(const Session& ses, ViewState& vs, Commands& cmd, bool* p_open) {
    // No title bar: the banner is a strip across the top; the View menu shows and hides it.
    if (begin_view(vs, ViewId::Device, p_open,
                   ImGuiWindowFlags_NoTitleBar | ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoCollapse))
        draw_device(ses, vs, cmd);
    ImGui::End();
}

}  // namespace moelab_gui
