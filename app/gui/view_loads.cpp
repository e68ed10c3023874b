// Expert loads: one bar per expert with the mean and capacity lines, dropped tokens stacked and hatched,
// the hottest expert marked, bars grouped by rank, and the straggler factor as a headline number.
#include <algorithm>
#include <cstdio>
#include <string>

#include "app/gui/app_state.hpp"

namespace moelab_gui {
namespace {

// Plain draw data for the chart, computed before anything is drawn.
charts::BarChart build_chart(const demos::Result& r, const ViewState& vs) {
    const Palette& pal = skin().pal;
    charts::BarChart c;
    c.id = "loads";
    const int E = static_cast<int>(r.expert_loads.size());
    c.values.resize(E);
    c.colors.resize(E);
    c.labels.resize(E);
    for (int e = 0; e < E; ++e) {
        c.values[e] = static_cast<double>(r.expert_loads[e]);
        c.colors[e] = e == r.hottest_expert ? pal.bar_hot : pal.bar;
        c.labels[e] = std::to_string(e);
    }
    if (vs.loads_show_demand && r.demand.size() == r.expert_loads.size()) {
        c.overflow.resize(E);
        for (int e = 0; e < E; ++e)
            c.overflow[e] = static_cast<double>(std::max<std::int64_t>(0, r.demand[e] - r.expert_loads[e]));
    }
    c.hlines.push_back(
        {r.mean_load, pal.mean, "mean " + charts::fmt_fixed(r.mean_load, r.mean_load < 100 ? 1 : 0), true, 2});
    if (r.capacity > 0)
        c.hlines.push_back({static_cast<double>(r.capacity), pal.capacity,
                            "capacity C = " + charts::fmt_count(static_cast<double>(r.capacity)), false, 2});
    const int G = r.ranks > 0 ? r.ranks : r.scenario.ranks;
    if (G > 1 && E % G == 0) {
        for (int g = 0; g < G; ++g) c.groups.push_back({g * (E / G), E / G, "rank " + std::to_string(g)});
    }
    c.highlight = r.hottest_expert;
    c.highlight_label = "hottest: e" + std::to_string(r.hottest_expert);
    c.x_title = G > 1 ? "expert (grouped by the rank that hosts it)" : "expert";
    c.y_title = "tokens routed to the expert";
    c.y_format = charts::fmt_si;
    c.overflow_color = pal.dropped;
    return c;
}

// The overlay's chart: each expert's FFN time alone, in µs, with min..p95 whiskers where it was measured.
charts::BarChart build_times_chart(const ExpertTimes& t, const demos::Result& r) {
    const Palette& pal = skin().pal;
    charts::BarChart c;
    c.id = "expert_times";
    const bool modeled = t.source == demos::lesson::Source::Modeled;
    const int E = static_cast<int>(t.per_expert.size());
    for (int e = 0; e < E; ++e) {
        const demos::TimedFigure& f = t.per_expert[std::size_t(e)];
        c.values.push_back(f.median_ms * 1e3);
        c.colors.push_back(e == t.hottest ? pal.bar_hot : pal.bar);
        c.hatched.push_back(modeled);  // a modelled time never looks measured
        c.labels.push_back(std::to_string(e));
        if (!modeled && f.repeats > 0) {
            c.whisker_lo.push_back(f.min_ms * 1e3);
            c.whisker_hi.push_back(f.p95_ms * 1e3);
        }
    }
    const double mean_us = t.mean_ms() * 1e3;
    c.hlines.push_back({mean_us, pal.mean, "mean " + charts::fmt_fixed(mean_us, mean_us < 100 ? 1 : 0) + " µs", true, 2});
    const int G = r.ranks > 0 ? r.ranks : r.scenario.ranks;
    if (G > 1 && E % G == 0)
        for (int g = 0; g < G; ++g) c.groups.push_back({g * (E / G), E / G, "rank " + std::to_string(g)});
    c.x_title = "expert";
    c.y_title = std::string("µs, each expert's FFN alone (") + demos::lesson::source_name(t.source) + ")";
    c.y_format = charts::fmt_si;
    return c;
}

// The tooltip of expert e: its tokens and, when timed, its FFN time with the run-to-run noise.
std::string expert_tip(const demos::Result& r, const ExpertTimes* t, int e) {
    const demos::Scenario& s = r.scenario;
    const int G = std::max(1, r.ranks);
    const int rank = (G > 1 && s.experts % G == 0) ? e / (s.experts / G) : 0;
    char buf[400];
    std::int64_t dem = e < static_cast<int>(r.demand.size()) ? r.demand[e] : r.expert_loads[e];
    std::snprintf(buf, sizeof buf, "expert %d%s\nrouted %lld, kept %lld, dropped %lld\n%.2f× the mean load%s", e,
                  G > 1 ? (" on rank " + std::to_string(rank)).c_str() : "", static_cast<long long>(dem),
                  static_cast<long long>(r.expert_loads[e]), static_cast<long long>(dem - r.expert_loads[e]),
                  r.mean_load > 0 ? r.expert_loads[e] / r.mean_load : 0.0,
                  e == r.hottest_expert ? "\nthe hottest expert: the layer waits for it" : "");
    std::string tip = buf;
    if (t && e < static_cast<int>(t->per_expert.size())) {
        const demos::TimedFigure& f = t->per_expert[std::size_t(e)];
        const char* src = demos::lesson::source_name(t->source);
        if (t->source == demos::lesson::Source::Modeled)
            std::snprintf(buf, sizeof buf, "\nFFN alone: %.1f µs [%s: no run-to-run noise]", f.median_ms * 1e3, src);
        else
            std::snprintf(buf, sizeof buf, "\nFFN alone: min %.1f · median %.1f · p95 %.1f µs over %d repeats [%s]",
                          f.min_ms * 1e3, f.median_ms * 1e3, f.p95_ms * 1e3, f.repeats, src);
        tip += buf;
        const double m = t->mean_ms();
        if (m > 0) {
            std::snprintf(buf, sizeof buf, "\n%.2f× the mean expert time", f.median_ms / m);
            tip += buf;
        }
    }
    return tip;
}

void legend_item(const ViewState& vs, ImU32 col, const char* text, int kind) {
    ImDrawList* dl = ImGui::GetWindowDrawList();
    ImVec2 p = ImGui::GetCursorScreenPos();
    const float h = ImGui::GetTextLineHeight();
    ImVec2 a(p.x, p.y + h * 0.15f), b(p.x + h * 1.3f, p.y + h * 0.85f);
    if (kind == 0) dl->AddRectFilled(a, b, col);
    if (kind == 1) {
        dl->AddRectFilled(a, b, with_alpha(col, 0.35f));
        charts::hatch_rect(dl, a, b, col, 4, 1.0f);
    }
    if (kind == 2) charts::dashed_line(dl, ImVec2(a.x, p.y + h * 0.5f), ImVec2(b.x, p.y + h * 0.5f), col, 2, 4, 3);
    if (kind == 3) dl->AddLine(ImVec2(a.x, p.y + h * 0.5f), ImVec2(b.x, p.y + h * 0.5f), col, 2);
    ImGui::Dummy(ImVec2(h * 1.4f, h));
    ImGui::SameLine();
    ImGui::TextUnformatted(text);
    ImGui::SameLine(0, ImGui::GetFontSize() * 0.9f);
}

}  // namespace

// The overlay's line above the charts: where the times came from (on screen, always), the straggler in time against
// the straggler in tokens; or the job's progress, or why it failed.
static void expert_times_header(const Session& ses, const demos::Result& r, const ExpertTimes* t) {
    const Palette& pal = skin().pal;
    if (t) {
        ImGui::TextUnformatted("expert FFN times");
        ImGui::SameLine();
        source_badge(pal, t->source);
        anchor(std::string("loads:expert_times:") + demos::lesson::source_name(t->source));
        ImGui::SameLine();
        ImGui::Text("hottest / mean in time %.2f× (in tokens %.2f×)", t->time_ratio(), r.straggler_factor);
        anchor("loads:expert_times");
        if (ImGui::IsItemHovered()) {
            std::string tip =
                "The straggler factor in microseconds: the hottest expert's FFN time over the mean expert's. It "
                "differs from the one in tokens because an expert with few tokens runs its GEMMs less efficiently "
                "(its weights are read whatever the load).";
            for (const std::string& n : t->notes) tip += "\n\n" + n;
            wrapped_tooltip(tip.c_str());
        }
        return;
    }
    const RunnerStatus& st = ses.status();
    if (ses.error().present && ses.error().job == slot_name(Slot::ExpertTimes)) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(pal.bad));
        ImGui::TextWrapped("expert times failed: %s", ses.error().message.c_str());
        ImGui::PopStyleColor();
        anchor("loads:expert_times:error");
    } else if (ses.busy()) {
        const bool timing = st.what.rfind(slot_name(Slot::ExpertTimes), 0) == 0;
        ImGui::TextDisabled("%s", timing ? st.what.c_str() : "expert times: waiting for the runs before them…");
        anchor("loads:expert_times:running");
        ImGui::SameLine();
        ImGui::ProgressBar(st.fraction, ImVec2(std::min(ImGui::GetContentRegionAvail().x, 200.0f), 0), "");
    } else {
        ImGui::TextDisabled("expert times: not timed for this scenario yet");
    }
}

static void draw_loads(const Session& ses, ViewState& vs, Commands& cmd) {
    const demos::Result* rp = ses.results().loads();
    if (!rp || rp->expert_loads.empty()) {
        no_result_note(ses, "expert loads");
        return;
    }
    const demos::Result& r = *rp;
    const Palette& pal = skin().pal;
    const demos::Scenario& s = r.scenario;
    const double total = static_cast<double>(s.tokens) * s.top_k;
    const std::int64_t max_load = r.expert_loads.empty() ? 0 : r.expert_loads[r.hottest_expert];

    // Headline: the straggler factor, big, with its formula on hover.
    ImGui::BeginGroup();
    ImGui::PushFont(skin().fonts.big);
    ImU32 sc = r.straggler_factor >= 1.5 ? pal.bar_hot : (r.straggler_factor >= 1.15 ? pal.warn : pal.ok);
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(sc));
    ImGui::Text("%.2f×", r.straggler_factor);
    ImGui::PopStyleColor();
    ImGui::PopFont();
    anchor("straggler");
    if (ImGui::IsItemHovered()) {
        char buf[640];
        std::snprintf(buf, sizeof buf,
                      "straggler factor = max_e n_e / mean_e n_e = %lld / %.1f = %.3f\n\n"
                      "If each expert's time is proportional to its tokens, the layer waits for the busiest one: "
                      "t_layer ≈ max_e t_e. This layer runs %.2f× longer than it would with perfectly balanced "
                      "routing, although the total work (T·k = %.0f assignments) is the same.",
                      static_cast<long long>(max_load), r.mean_load, r.straggler_factor, r.straggler_factor, total);
        wrapped_tooltip(buf);
    }
    ImGui::TextDisabled("straggler (max / mean)");
    provenance_badge(pal, r.loads_provenance);
    ImGui::EndGroup();

    ImGui::SameLine(0, ImGui::GetFontSize() * 1.5f);
    ImGui::BeginGroup();
    ImGui::Text("mean  %.1f tokens", r.mean_load);
    if (ImGui::IsItemHovered())
        wrapped_tooltip(("mean load = T·k/E = " + std::to_string(s.tokens) + "·" + std::to_string(s.top_k) + "/" +
                         std::to_string(s.experts) + " (kept assignments / experts)")
                            .c_str());
    ImGui::Text("hottest  e%d: %s", r.hottest_expert, charts::fmt_count(static_cast<double>(max_load)).c_str());
    if (r.capacity > 0) {
        ImGui::Text("capacity  C = %s", charts::fmt_count(static_cast<double>(r.capacity)).c_str());
        if (ImGui::IsItemHovered()) {
            char buf[200];
            std::snprintf(buf, sizeof buf, "C = ⌈cf·T·k/E⌉ = ⌈%.2f·%lld·%d/%d⌉ = %lld", s.capacity_factor,
                          static_cast<long long>(s.tokens), s.top_k, s.experts, static_cast<long long>(r.capacity));
            wrapped_tooltip(buf);
        }
    } else {
        ImGui::TextUnformatted("capacity  none (dropless)");
    }
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(r.dropped > 0 ? pal.dropped : pal.text));
    ImGui::Text("dropped  %s (%.2f%%)", charts::fmt_count(static_cast<double>(r.dropped)).c_str(),
                total > 0 ? 100.0 * r.dropped / total : 0.0);
    ImGui::PopStyleColor();
    anchor("dropped");
    if (ImGui::IsItemHovered())
        wrapped_tooltip(("assignments dropped over capacity, of T·k = " + charts::fmt_count(total) +
                         ". A dropped assignment skips its expert: the token keeps only its residual.")
                            .c_str());
    ImGui::EndGroup();
    ImGui::SameLine(0, ImGui::GetFontSize() * 1.5f);
    ImGui::BeginGroup();
    if (r.ranks > 1 && !r.rank_loads.empty()) {
        ImGui::Text("per rank  %.2f×", r.rank_straggler);
        if (ImGui::IsItemHovered()) {
            std::string t = "max / mean of the rows each rank's experts process:\n";
            for (std::size_t g = 0; g < r.rank_loads.size(); ++g)
                t += "  rank " + std::to_string(g) + ": " + charts::fmt_count(static_cast<double>(r.rank_loads[g])) +
                     "\n";
            t += "A rank's GPU is as slow as its busiest expert group.";
            wrapped_tooltip(t.c_str());
        }
    }
    ImGui::Checkbox("expert times", &vs.loads_expert_times);
    anchor("loads_expert_times");
    if (ImGui::IsItemHovered())
        wrapped_tooltip(
            "Time each expert's FFN alone at its load, in the background: on the GPU, measured there (min, median, "
            "p95 over the repeats); without one, the roofline model of the recorded H100 measurements, labelled "
            "modeled. Shows the straggler in microseconds beside the straggler in tokens.");
    ImGui::SameLine();
    ImGui::Checkbox("show drops", &vs.loads_show_demand);
    anchor("loads_show_demand");
    if (ImGui::IsItemHovered())
        wrapped_tooltip(
            "Draw the tokens each expert was sent but could not keep (over capacity) as a hatched block on top of "
            "its bar.");
    ImGui::EndGroup();

    // The chart (and the expert times under it, when asked), then its legend.
    const ExpertTimes* times = nullptr;
    if (vs.loads_expert_times && ses.results().expert_times_current) times = &*ses.results().expert_times;
    if (vs.loads_expert_times) expert_times_header(ses, r, times);
    charts::BarChart chart = build_chart(r, vs);
    ImVec2 avail = ImGui::GetContentRegionAvail();
    float legend_h = ImGui::GetTextLineHeightWithSpacing() + 4;
    const float chart_h = std::max(120.0f, avail.y - legend_h);
    const float loads_h = times ? std::max(120.0f, chart_h * 0.58f) : chart_h;
    charts::Hover h = charts::bar_chart(chart, ImVec2(avail.x, loads_h), pal, skin().fonts);
    anchor("loads_chart");
    int hovered = h.index;
    if (times) {
        charts::BarChart tc = build_times_chart(*times, r);
        charts::Hover th = charts::bar_chart(tc, ImVec2(avail.x, std::max(100.0f, chart_h - loads_h)), pal, skin().fonts);
        anchor("loads:expert_times_chart");
        if (th.index >= 0) hovered = th.index;
    }
    if (hovered >= 0 && hovered < static_cast<int>(r.expert_loads.size()))
        wrapped_tooltip(expert_tip(r, times, hovered).c_str());
    legend_item(vs, pal.bar, "kept", 0);
    legend_item(vs, pal.bar_hot, "hottest", 0);
    if (vs.loads_show_demand && r.dropped > 0) legend_item(vs, pal.dropped, "dropped", 1);
    legend_item(vs, pal.mean, "mean", 2);
    if (r.capacity > 0) legend_item(vs, pal.capacity, "capacity", 3);
    ImGui::NewLine();
}

void show_loads(const Session& ses, ViewState& vs, Commands& cmd, bool* p_open) {
    if (begin_view(vs, ViewId::Loads, p_open)) draw_loads(ses, vs, cmd);
    ImGui::End();
}

}  // namespace moelab_gui
