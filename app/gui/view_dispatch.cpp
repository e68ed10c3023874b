// Dispatch strategies: the packing time of sort, atomic, scan and no-pack side by side (min–p95 whiskers),
// their achieved bandwidth against the floor where one was measured, and a sweep over skew or tokens as lines.
#include <algorithm>
#include <cstdio>
#include <string>

#include "app/gui/app_state.hpp"

namespace moelab_gui {
namespace {

const char* strategy_help(const std::string& s) {
    if (s == "sort")
        return "sort: radix-sort the (expert, token) pairs by expert id, then gather rows. Several passes "
               "over the ids, but every write is coalesced.";
    if (s == "atomic")
        return "atomic: each assignment bumps its expert's cursor with an atomic add and writes its row "
               "there. One pass, but hot experts serialise on one counter and rows land out of order.";
    if (s == "scan")
        return "scan: per-block histograms, an exclusive scan for offsets, then a stable scatter with "
               "16-byte copies. The counting sort the dispatch seed found fastest.";
    if (s == "nopack")
        return "nopack: no copy at all; the expert GEMM gathers its rows by index. Saves the pack's "
               "bytes, costs gather loads inside the GEMM.";
    return "";
}

// A measured device copy bandwidth, when the run had one: the floor is bytes / that bandwidth.
double copy_gbps(const demos::Result& r) { return r.copy_gbps; }

}  // namespace

static void draw_dispatch(const Session& ses, ViewState& vs, Commands& cmd) {
    const Palette& pal = skin().pal;
    const auto& opt = ses.results().dispatch;
    if (!opt || opt->strategies.empty()) {
        no_result_note(ses, "strategy timings");
        return;
    }
    const demos::Result& r = *opt;
    const double gbps = copy_gbps(r);
    // On the CPU reference every strategy runs the same plan and pack: their times differ by noise only. What
    // differs there, and is exact, is the bytes each one moves; times need a GPU.
    const bool noise = r.has(demos::Result::Caveat::NoisyStrategies);

    charts::BarChart c;
    c.id = "strategies";
    for (std::size_t i = 0; i < r.strategies.size(); ++i) {
        const auto& st = r.strategies[i];
        c.values.push_back(noise ? st.bytes : st.time.median_ms);
        if (!noise) {
            c.whisker_lo.push_back(st.time.min_ms);
            c.whisker_hi.push_back(st.time.p95_ms);
        }
        c.colors.push_back(pal.series_at(static_cast<int>(i)));
        c.hatched.push_back(st.time.provenance == demos::Provenance::Modeled);
        const bool selected = st.strategy == r.scenario.strategy;
        c.labels.push_back(selected ? st.strategy + " ✓" : st.strategy);
        if (selected) c.highlight = static_cast<int>(i);
        c.value_labels.push_back(noise ? (st.bytes > 0 ? charts::fmt_bytes(st.bytes) : std::string("0: no copy"))
                                       : charts::fmt_ms(st.time.median_ms));
    }
    c.y_title = noise ? "bytes moved per pack (T·d·b + rows·d·b)" : "pack time per layer (median; whiskers min … p95)";
    c.y_format = noise ? charts::Format(charts::fmt_bytes) : charts::Format(charts::fmt_ms);
    c.x_title = "strategy";

    ImGui::TextUnformatted("Packing tokens expert-major before the expert GEMMs");
    ImGui::SameLine();
    provenance_badge(pal, noise ? r.loads_provenance : r.strategies.front().time.provenance);
    ImGui::SameLine();
    if (noise) {
        ImGui::TextDisabled("bytes, not times");
    } else if (gbps > 0) {
        ImGui::TextDisabled("floor: %.0f GB/s copy", gbps);
        if (ImGui::IsItemHovered())
            wrapped_tooltip(
                "The floor of a pack is the bytes it must move (read each token once, write each row) "
                "divided by the device's measured copy bandwidth. Hover a bar for its % of the floor.");
    } else {
        ImGui::TextDisabled("floor: n/a");
        if (ImGui::IsItemHovered())
            wrapped_tooltip(
                "% of the bandwidth floor needs a measured device copy bandwidth, which this run did not "
                "have (GPU runs measure it). Hover a bar for the bytes moved and the bandwidth achieved.");
    }
    result_header(r);
    if (noise) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(pal.warn));
        ImGui::PushTextWrapPos(0);
        ImGui::TextUnformatted(
            "⚠ CPU reference: every strategy runs the same plain pack here, so their times differ only by noise. "
            "Shown: the bytes each one moves. Run on a GPU (--backend cuda) to compare their times.");
        ImGui::PopTextWrapPos();
        ImGui::PopStyleColor();
        anchor("dispatch_cpu_note");
    }

    ImVec2 avail = ImGui::GetContentRegionAvail();
    const bool sweep = vs.sweep_on && ses.results().sweep.size() >= 2;
    float bars_h = sweep ? std::max(140.0f, avail.y * 0.42f)
                         : std::max(140.0f, avail.y - ImGui::GetFrameHeightWithSpacing() * 1.5f);
    charts::Hover h = charts::bar_chart(c, ImVec2(avail.x, bars_h), pal, skin().fonts);
    anchor("dispatch_bars");
    if (h.index >= 0) {
        const auto& st = r.strategies[h.index];
        char buf[900];
        double achieved = st.time.median_ms > 0 ? st.bytes / (st.time.median_ms * 1e-3) / 1e9 : 0;
        std::string floor_line = "no floor: this run measured no copy bandwidth";
        if (gbps > 0 && st.bytes > 0 && st.time.median_ms > 0) {
            double floor_ms = st.bytes / (gbps * 1e9) * 1e3;
            floor_line = "floor " + charts::fmt_ms(floor_ms) + ": " +
                         charts::fmt_fixed(100 * floor_ms / st.time.median_ms, 0) + "% of the bandwidth floor";
        }
        if (noise)
            std::snprintf(buf, sizeof buf,
                          "%s\n\nbytes moved (T·d·b + rows·d·b): %s\nIts time here (median %s) is the CPU "
                          "reference's plain pack, the same for every strategy.",
                          strategy_help(st.strategy), charts::fmt_bytes(st.bytes).c_str(),
                          charts::fmt_ms(st.time.median_ms).c_str());
        else
            std::snprintf(buf, sizeof buf,
                          "%s\n\nmin %s · median %s · p95 %s over %d repeats (%s)\nbytes moved (T·d·b + rows·d·b): %s\n"
                          "achieved %.1f GB/s · %s",
                          strategy_help(st.strategy), charts::fmt_ms(st.time.min_ms).c_str(),
                          charts::fmt_ms(st.time.median_ms).c_str(), charts::fmt_ms(st.time.p95_ms).c_str(),
                          st.time.repeats, demos::provenance_name(st.time.provenance),
                          charts::fmt_bytes(st.bytes).c_str(), achieved, floor_line.c_str());
        wrapped_tooltip(buf);
    }

    // The sweep.
    ImGui::Checkbox("sweep", &vs.sweep_on);
    anchor("sweep_on");
    ImGui::SameLine();
    ImGui::RadioButton("over skew", &vs.sweep_axis, 0);
    anchor("sweep_skew");
    ImGui::SameLine();
    ImGui::RadioButton("over tokens T", &vs.sweep_axis, 1);
    anchor("sweep_tokens");
    help_marker(
        "Runs the dispatch demo at several skews (or token counts) in the background and draws each "
        "strategy's median time as a line. The dashed marker is the current scenario.");
    ImGui::SameLine(0, ImGui::GetFontSize() * 1.5f);
    if (ImGui::SmallButton("expert FFN roofline")) vs.show_roofline = true;  // what the packed rows feed (its panel)
    anchor("dispatch:roofline");
    if (!vs.sweep_on) return;
    if (ses.results().sweep.size() < 2) {
        ImGui::TextDisabled("sweep running…");
        return;
    }
    charts::LineChart lc;
    lc.id = "sweep";
    const auto& pts = ses.results().sweep;
    const auto& names = pts.front().result.strategies;
    for (std::size_t si = 0; si < names.size(); ++si) {
        charts::Series s;
        s.name = names[si].strategy;
        s.color = pal.series_at(static_cast<int>(si));
        s.dashed = names[si].time.provenance == demos::Provenance::Modeled;
        for (const SweepPoint& p : pts) {
            if (si >= p.result.strategies.size()) continue;
            s.x.push_back(p.x);
            s.y.push_back(noise ? p.result.strategies[si].bytes : p.result.strategies[si].time.median_ms);
        }
        lc.series.push_back(std::move(s));
    }
    const bool tokens = ses.results().sweep_axis == "tokens";
    lc.log2_x = tokens;
    lc.x_title = tokens ? "tokens T"
                        : (r.scenario.skew.rfind("hot", 0) == 0 ? "hot ratio r (hot:r)"
                                                                : "zipf exponent s (zipf:s; 0 = uniform)");
    lc.y_title = noise ? "bytes moved per pack" : "median pack time";
    lc.y_format = noise ? charts::Format(charts::fmt_bytes) : charts::Format(charts::fmt_ms);
    lc.x_format =
        tokens ? charts::Format(charts::fmt_si) : charts::Format([](double v) { return charts::fmt_fixed(v, 2); });
    const demos::Scenario& cur = r.scenario;
    lc.has_marker = true;
    if (tokens) {
        lc.marker_x = static_cast<double>(cur.tokens);
    } else {
        auto colon = cur.skew.find(':');
        lc.marker_x = colon == std::string::npos ? 0.0 : std::atof(cur.skew.c_str() + colon + 1);
    }
    avail = ImGui::GetContentRegionAvail();
    charts::Hover lh = charts::line_chart(lc, ImVec2(avail.x, std::max(120.0f, avail.y)), pal, skin().fonts);
    anchor("dispatch_sweep");
    if (lh.index >= 0 && lh.index2 >= 0) {
        const charts::Series& s = lc.series[lh.index2];
        char buf[200];
        std::snprintf(buf, sizeof buf, "%s at %s = %s: %s", s.name.c_str(), tokens ? "T" : "skew",
                      tokens ? charts::fmt_count(s.x[lh.index]).c_str() : charts::fmt_fixed(s.x[lh.index], 2).c_str(),
                      noise ? charts::fmt_bytes(s.y[lh.index]).c_str() : charts::fmt_ms(s.y[lh.index]).c_str());
        ImGui::SetTooltip("%s", buf);
    }
}

void show_dispatch(const Session& ses, ViewState& vs, Commands& cmd, bool* p_open) {
    if (begin_view(vs, ViewId::Dispatch, p_open)) draw_dispatch(ses, vs, cmd);
    ImGui::End();
}

}  // namespace moelab_gui
