// Communication: the seed's 2·T·k·d·b with the live values put in, what actually crosses links with experts
// spread over ranks, the deduplicated figure, the per-rank traffic heatmap, and the transfer time with provenance.
#include <algorithm>
#include <cstdio>
#include <string>

#include "app/gui/app_state.hpp"

namespace moelab_gui {
namespace {

charts::Heatmap build_heatmap(const demos::Result& r, const ViewState& vs) {
    charts::Heatmap h;
    h.id = "traffic";
    const int G = std::max(1, r.ranks);
    h.rows = h.cols = G;
    h.values.assign(static_cast<std::size_t>(G) * G, 0.0);
    for (std::size_t i = 0; i < h.values.size(); ++i) {
        if (vs.comm_show_rows && i < r.traffic_tokens.size()) h.values[i] = static_cast<double>(r.traffic_tokens[i]);
        if (!vs.comm_show_rows && i < r.traffic_bytes.size()) h.values[i] = r.traffic_bytes[i];
    }
    for (int g = 0; g < G; ++g) {
        h.row_labels.push_back("r" + std::to_string(g));
        h.col_labels.push_back("r" + std::to_string(g));
    }
    h.col_title = "to rank (hosting the experts) →";
    h.row_title = "from rank ↓";
    h.legend_title = vs.comm_show_rows ? "rows sent" : "bytes sent (dispatch)";
    h.format = vs.comm_show_rows ? charts::Format(charts::fmt_si) : charts::Format(charts::fmt_bytes);
    return h;
}

}  // namespace

static void draw_comm(const Session& ses, ViewState& vs, Commands& cmd) {
    const demos::Result* rp = ses.results().loads();
    if (!rp || rp->seed_bytes <= 0) {
        no_result_note(ses, "communication figures");
        return;
    }
    const demos::Result& r = *rp;
    const demos::Scenario& s = r.scenario;
    const Palette& pal = skin().pal;

    // The formula, then the same with numbers, then the total, big.
    ImGui::PushFont(skin().fonts.bold);
    ImGui::TextUnformatted("Bytes_comm ≈ 2 · T · k · d · b");
    ImGui::PopFont();
    help_marker(
        "Per MoE layer every token's activation (d elements of b bytes) goes to each of its k experts "
        "(dispatch) and the expert output comes back (combine): the factor 2. This counts every assignment "
        "as if its expert lived on another GPU.");
    ImGui::SameLine();
    provenance_badge(pal, demos::Provenance::Modeled);  // a formula, not a count
    // The substitution and the big total share a baseline.
    const float y0 = ImGui::GetCursorPosY();
    ImGui::SetCursorPosY(y0 + skin().fonts.big->Ascent - skin().fonts.body->Ascent);
    ImGui::Text("= 2 · %lld · %d · %d · %d B =", static_cast<long long>(s.tokens), s.top_k, s.hidden, r.bytes_per_elem);
    ImGui::SameLine();
    ImGui::SetCursorPosY(y0);
    ImGui::PushFont(skin().fonts.big);
    ImGui::TextUnformatted(charts::fmt_bytes(r.seed_bytes).c_str());
    ImGui::PopFont();
    anchor("comm_total");
    if (ImGui::IsItemHovered())
        wrapped_tooltip("per MoE layer: the dispatch to the experts plus the combine back, every assignment counted");

    const int G = std::max(1, r.ranks);
    if (G == 1) {
        ImGui::TextWrapped(
            "One rank: every expert is local, so nothing crosses a link. Raise ranks to spread the "
            "experts over GPUs and see the all-to-all traffic.");
        return;
    }
    if (ImGui::BeginTable("comm_figures", 3, ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_RowBg)) {
        auto row = [&](const char* what, double bytes, const char* help) {
            ImGui::TableNextRow();
            ImGui::TableNextColumn();
            ImGui::TextUnformatted(what);
            help_marker(help);
            ImGui::TableNextColumn();
            ImGui::TextUnformatted(charts::fmt_bytes(bytes).c_str());
            ImGui::TableNextColumn();
            if (r.seed_bytes > 0) ImGui::TextDisabled("%.0f%% of the formula", 100.0 * bytes / r.seed_bytes);
        };
        row("crosses links", r.routed_bytes,
            "Dispatch + combine bytes of the assignments whose expert lives on another rank. With E/G experts per "
            "rank and tokens spread evenly, about (G−1)/G of the formula.");
        row("deduplicated", r.dedup_bytes,
            "The same, when a token is sent once per destination rank even if k > 1 of its experts live there "
            "(DeepEP-style dedup).");
        ImGui::EndTable();
    }
    ImGui::TextDisabled("counted from the routing");
    ImGui::SameLine();
    provenance_badge(pal, r.comm_provenance);
    ImGui::SameLine();
    ImGui::Checkbox("rows", &vs.comm_show_rows);
    anchor("comm_rows");
    if (ImGui::IsItemHovered())
        wrapped_tooltip(
            "Heatmap in rows (tokens) instead of bytes. Each cell counts what source rank i sends to "
            "destination rank j in the dispatch; the combine sends the same back. The diagonal stays on "
            "the GPU and costs no link time.");
    if (r.comm_ms >= 0) {
        ImGui::Text("busiest rank's transfer: %s", charts::fmt_ms(r.comm_ms).c_str());
        ImGui::SameLine();
        provenance_badge(pal, r.comm_time_provenance);
        if (r.comm_time_provenance == demos::Provenance::Modeled && ImGui::IsItemHovered())
            wrapped_tooltip(("Not measured: the busiest rank's outgoing bytes ÷ " + charts::fmt_fixed(s.link_gbps, 0) +
                             " GB/s (the link bandwidth control). Ranks are emulated on one device here.")
                                .c_str());
    } else {
        ImGui::TextDisabled("no transfer time: not measured on this machine");
    }

    // Heatmap.
    charts::Heatmap h = build_heatmap(r, vs);
    ImVec2 avail = ImGui::GetContentRegionAvail();
    charts::Hover hv = charts::heatmap(h, ImVec2(avail.x, std::max(120.0f, avail.y)), pal, skin().fonts);
    anchor("comm_heatmap");
    if (hv.index >= 0 && hv.index2 >= 0) {
        std::size_t i = static_cast<std::size_t>(hv.index) * G + hv.index2;
        char buf[320];
        std::snprintf(
            buf, sizeof buf,
            "rank %d → rank %d%s\n%s rows, %s in the dispatch (the combine returns as "
            "much)",
            hv.index, hv.index2, hv.index == hv.index2 ? " (local: no link)" : "",
            charts::fmt_count(i < r.traffic_tokens.size() ? static_cast<double>(r.traffic_tokens[i]) : 0).c_str(),
            charts::fmt_bytes(i < r.traffic_bytes.size() ? r.traffic_bytes[i] : 0).c_str());
        wrapped_tooltip(buf);
    }
}

void show_comm(const Session& ses, ViewState& vs, Commands& cmd, bool* p_open) {
    if (begin_view(vs, ViewId::Comm, p_open)) draw_comm(ses, vs, cmd);
    ImGui::End();
}

}  // namespace moelab_gui
