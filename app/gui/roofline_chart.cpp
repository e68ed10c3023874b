// The roofline chart: lays out a log-log frame from the lines and points, then draws the floors, the roofline,
// the markers and the points with their labels. Plain data in (demos::ExpertRoofline), ImDrawList out.
#include "app/gui/roofline_chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "app/gui/app_state.hpp"
#include "demos/lesson_expr.hpp"

namespace moelab_gui::roofline {
namespace {

struct Axes {
    ImVec2 pa, pb;                              // plot area
    double lx0 = 0, lx1 = 1, ly0 = 0, ly1 = 1;  // log10 ranges
    float x(double v) const {
        return pa.x + float((std::log10(std::max(v, 1e-12)) - lx0) / (lx1 - lx0)) * (pb.x - pa.x);
    }
    float y(double ms) const {
        return pb.y - float((std::log10(std::max(ms, 1e-12)) - ly0) / (ly1 - ly0)) * (pb.y - pa.y);
    }
    double x_at(float px) const { return std::pow(10.0, lx0 + (px - pa.x) / (pb.x - pa.x) * (lx1 - lx0)); }
};

float text_w(ImFont* f, const std::string& s) { return f->CalcTextSizeA(f->FontSize, 1e9f, 0, s.c_str()).x; }

// A hollow diamond: a probe's mark (the same work without the FFN around it).
void diamond(ImDrawList* dl, ImVec2 c, float r, ImU32 col) {
    dl->AddQuad(ImVec2(c.x, c.y - r), ImVec2(c.x + r, c.y), ImVec2(c.x, c.y + r), ImVec2(c.x - r, c.y), col, 1.5f);
}
// A cross: the PyTorch peer's time on the same work.
void cross(ImDrawList* dl, ImVec2 c, float r, ImU32 col) {
    dl->AddLine(ImVec2(c.x - r, c.y - r), ImVec2(c.x + r, c.y + r), col, 1.5f);
    dl->AddLine(ImVec2(c.x - r, c.y + r), ImVec2(c.x + r, c.y - r), col, 1.5f);
}
// A hollow square: the balanced run's mark (the same FFN with every expert T·k/E rows).
void square(ImDrawList* dl, ImVec2 c, float r, ImU32 col) {
    dl->AddRect(ImVec2(c.x - r, c.y - r), ImVec2(c.x + r, c.y + r), col, 0, 0, 1.5f);
}

// The y range covers every line and point with a little room, in whole decades' fractions.
void ranges(const demos::ExpertRoofline& rl, Axes* ax) {
    double x0 = 1e300, x1 = 0, y0 = 1e300, y1 = 0;
    auto take = [&](double x, double y) {
        if (x <= 0 || y <= 0) return;
        x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    };
    for (const auto& f : rl.lines) {
        take(f.tokens_per_expert, f.weight_ms);
        take(f.tokens_per_expert, f.math_ms);
    }
    for (const auto& p : rl.points) take(p.tokens_per_expert, std::max(p.median_ms, p.p95_ms));
    for (const auto& p : rl.points) take(p.tokens_per_expert, p.median_ms);
    for (const auto& p : rl.points) take(p.tokens_per_expert, p.probe_ms), take(p.tokens_per_expert, p.balanced_ms);
    for (const auto& p : rl.points) take(p.tokens_per_expert, p.peer_ms);
    if (x1 <= 0) x0 = 1, x1 = 4096, y0 = 1e-3, y1 = 1;
    // The math floor at the smallest x can sit decades below everything else: the plot starts a decade under
    // the lowest roofline or point so that the weights' plateau keeps the room.
    double roof_lo = 1e300;
    for (const auto& f : rl.lines) roof_lo = std::min(roof_lo, f.roof_ms());
    for (const auto& p : rl.points) roof_lo = std::min(roof_lo, p.median_ms > 0 ? p.median_ms : 1e300);
    if (roof_lo < 1e300) y0 = std::max(y0, roof_lo / 10);
    // A little room either side, so the first and last points are drawn whole.
    const double pad = 0.04 * std::log10(std::max(x1, x0 * 2) / x0);
    ax->lx0 = std::log10(x0) - pad, ax->lx1 = std::log10(std::max(x1, x0 * 2)) + pad;
    ax->ly0 = std::log10(y0) - 0.05, ax->ly1 = std::log10(y1) + 0.25;
}

void grid(ImDrawList* dl, const Axes& ax, const Palette& pal, ImFont* sf) {
    for (int e = int(std::floor(ax.ly0)); e <= int(std::ceil(ax.ly1)); ++e)
        for (double m : {1.0, 2.0, 5.0}) {
            const double ms = m * std::pow(10.0, e);
            const float y = ax.y(ms);
            if (y < ax.pa.y - 0.5f || y > ax.pb.y + 0.5f) continue;
            dl->AddLine(ImVec2(ax.pa.x, y), ImVec2(ax.pb.x, y), m == 1 ? pal.grid : with_alpha(pal.grid, 0.4f));
            if (m == 5 && ax.ly1 - ax.ly0 > 3) continue;  // a tall range labels decades and twos only
            const std::string s = charts::fmt_ms(ms);
            dl->AddText(sf, sf->FontSize, ImVec2(ax.pa.x - 6 - text_w(sf, s), y - sf->FontSize * 0.5f), pal.text_dim,
                        s.c_str());
        }
    // x ticks at the powers of two, labelled where they fit.
    float last_right = -1e9f;
    for (int e = int(std::ceil(ax.lx0 / std::log10(2.0) - 1e-9)); std::pow(2.0, e) <= std::pow(10.0, ax.lx1) * 1.0001;
         ++e) {
        const double v = std::pow(2.0, e);
        const float px = ax.x(v);
        dl->AddLine(ImVec2(px, ax.pb.y), ImVec2(px, ax.pb.y + 3), pal.axis);
        const std::string s = charts::fmt_si(v);
        const float w = text_w(sf, s);
        if (px - w * 0.5f < last_right + 6) continue;
        dl->AddText(sf, sf->FontSize, ImVec2(px - w * 0.5f, ax.pb.y + 4), pal.text_dim, s.c_str());
        last_right = px + w * 0.5f;
    }
    dl->AddLine(ax.pa, ImVec2(ax.pa.x, ax.pb.y), pal.axis);
    dl->AddLine(ImVec2(ax.pa.x, ax.pb.y), ax.pb, pal.axis);
}

void polyline(ImDrawList* dl, const Axes& ax, const std::vector<demos::RooflineFloor>& lines, int which, ImU32 col,
              float thickness, bool dashed) {
    auto val = [&](const demos::RooflineFloor& f) {
        return which == 0 ? f.weight_ms : (which == 1 ? f.math_ms : f.roof_ms());
    };
    for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
        ImVec2 a(ax.x(lines[i].tokens_per_expert), ax.y(val(lines[i])));
        ImVec2 b(ax.x(lines[i + 1].tokens_per_expert), ax.y(val(lines[i + 1])));
        // Clip to the plot's bottom: the math floor dives under the range at small x.
        if (a.y > ax.pb.y && b.y > ax.pb.y) continue;
        if (a.y > ax.pb.y) a = ImVec2(a.x + (b.x - a.x) * (a.y - ax.pb.y) / (a.y - b.y), ax.pb.y);
        if (dashed)
            charts::dashed_line(dl, a, b, col, thickness, 6, 4);
        else
            dl->AddLine(a, b, col, thickness);
    }
}

// The legend's entries: a line or a marker in its colour, and what it stands for.
struct LegendItem {
    enum Glyph { Solid, Dashed, Dot, Diamond, Square, Cross } glyph;
    ImU32 col;
    std::string text;
    float width(ImFont* sf) const { return (glyph <= Dashed ? 26 : 14) + text_w(sf, text) + 16; }
};

std::vector<LegendItem> legend_items(const demos::ExpertRoofline& rl, const Palette& pal, ImU32 c_weight,
                                     ImU32 c_math) {
    const demos::RooflineCeilings& c = rl.ceilings;
    std::vector<LegendItem> v = {
        {LegendItem::Solid, pal.text, "roofline"},
        {LegendItem::Dashed, c_weight,
         "weights / " + demos::lesson::format_number(c.read_gbps) + " GB/s " + c.bandwidth},
        {LegendItem::Dashed, c_math, "FLOPs / " + demos::lesson::format_number(c.gemm_tflops) + " TFLOP/s"}};
    if (!rl.points.empty())
        v.push_back({LegendItem::Dot, pal.series_at(2),
                     std::string("timed (") + demos::lesson::source_name(rl.points.front().source) + ")"});
    if (std::any_of(rl.points.begin(), rl.points.end(), [](const auto& p) { return p.probe_ms > 0; }))
        v.push_back({LegendItem::Diamond, pal.text_dim, "the same work alone (probe)"});
    if (std::any_of(rl.points.begin(), rl.points.end(), [](const auto& p) { return p.balanced_ms > 0; }))
        v.push_back({LegendItem::Square, pal.series_at(2), "every expert the same tokens"});
    const auto peer = std::find_if(rl.points.begin(), rl.points.end(), [](const auto& p) { return p.peer_ms > 0; });
    if (peer != rl.points.end()) v.push_back({LegendItem::Cross, pal.series_at(6), "PyTorch (" + peer->peer + ")"});
    return v;
}

// Where each entry goes in `width` from `at`: left to right, on as many lines as it takes. Returns the lines.
int legend_layout(const std::vector<LegendItem>& items, ImFont* sf, ImVec2 at, float width, std::vector<ImVec2>* pos) {
    float x = at.x, y = at.y;
    int lines = 1;
    for (const LegendItem& it : items) {
        const float w = it.width(sf);
        if (x > at.x && x + w - 16 > at.x + width) x = at.x, y += sf->FontSize * 1.15f, ++lines;
        if (pos) pos->push_back(ImVec2(x, y));
        x += w;
    }
    return lines;
}

void legend(ImDrawList* dl, const std::vector<LegendItem>& items, const std::vector<ImVec2>& pos, const Palette& pal,
            ImFont* sf) {
    for (std::size_t i = 0; i < items.size() && i < pos.size(); ++i) {
        const LegendItem& it = items[i];
        const float x = pos[i].x, y = pos[i].y + sf->FontSize * 0.5f;
        switch (it.glyph) {
            case LegendItem::Solid:
                dl->AddLine(ImVec2(x, y), ImVec2(x + 22, y), it.col, 3);
                break;
            case LegendItem::Dashed:
                charts::dashed_line(dl, ImVec2(x, y), ImVec2(x + 22, y), it.col, 2, 5, 3);
                break;
            case LegendItem::Dot:
                dl->AddCircleFilled(ImVec2(x + 6, y), 4, it.col);
                break;
            case LegendItem::Diamond:
                diamond(dl, ImVec2(x + 6, y), 4.5f, it.col);
                break;
            case LegendItem::Square:
                square(dl, ImVec2(x + 6, y), 3.5f, it.col);
                break;
            case LegendItem::Cross:
                cross(dl, ImVec2(x + 6, y), 3.5f, it.col);
                break;
        }
        const float tx = x + (it.glyph <= LegendItem::Dashed ? 26 : 14);
        dl->AddText(sf, sf->FontSize, ImVec2(tx, pos[i].y), pal.text, it.text.c_str());
    }
}

}  // namespace

std::string point_text(const demos::RooflinePoint& p, const demos::ExpertRoofline& rl) {
    char buf[600];
    const demos::RooflineFloor f = demos::roofline_floor(rl.shape, rl.ceilings, p.tokens_per_expert);
    std::snprintf(buf, sizeof buf,
                  "%s tokens per expert%s%s\nmedian %s · p95 %s [%s]\nroofline %s (%s-bound): %.0f%% of the roofline",
                  demos::lesson::format_number(p.tokens_per_expert).c_str(), p.impl.empty() ? "" : ": auto ran ",
                  p.impl.c_str(), charts::fmt_ms(p.median_ms).c_str(), charts::fmt_ms(p.p95_ms).c_str(),
                  demos::lesson::source_name(p.source), charts::fmt_ms(p.floor_ms).c_str(),
                  f.weight_bound() ? "weight" : "math", p.pct_of_roofline());
    std::string s = buf;
    // Below the roofline at a math-bound size, the clock is often why: the lines use the top clock's GEMM rate.
    if (!p.clocks.empty()) s += "\nwhile timed: " + p.clocks;
    if (p.probe_ms > 0) {
        const double pct = p.floor_ms > 0 ? 100.0 * p.floor_ms / p.probe_ms : 0;
        std::snprintf(buf, sizeof buf, "\nprobe, the same work alone: %s (%.0f%% of the roofline), %s",
                      charts::fmt_ms(p.probe_ms).c_str(), pct,
                      p.probe == "stream" ? "the weights read as the FFN reads them, no arithmetic"
                                          : "cuBLAS over all rows as one expert's, no grouping");
        s += buf;
    }
    if (p.balanced_ms > 0) {
        const double pct = p.floor_ms > 0 ? 100.0 * p.floor_ms / p.balanced_ms : 0;
        std::snprintf(buf, sizeof buf,
                      "\nevery expert the same tokens: %s (%.0f%% of the roofline), the same FFN routed round-robin; "
                      "random routing's uneven counts leave some experts a last token tile of a few tokens, which "
                      "streams the weights all the same",
                      charts::fmt_ms(p.balanced_ms).c_str(), pct);
        s += buf;
    }
    if (p.peer_ms > 0) {
        std::snprintf(buf, sizeof buf, "\nPyTorch (%s) on the same FFN and tokens, same run: %s; auto is %.2f× %s",
                      p.peer.c_str(), charts::fmt_ms(p.peer_ms).c_str(),
                      p.median_ms > 0 ? std::max(p.peer_ms / p.median_ms, p.median_ms / p.peer_ms) : 0.0,
                      p.median_ms <= p.peer_ms ? "faster" : "slower");
        s += buf;
    }
    if (p.wrong > 0)
        s += "\n" + std::to_string(p.wrong) + " elements outside tolerance against the CPU reference: do not trust it";
    else if (p.wrong == 0)
        s += "\nchecked against the CPU reference: right";
    return s;
}

void chart(const demos::ExpertRoofline& rl, const std::vector<Mark>& marks, ImVec2 size, const char* id,
           const std::string& anchor_name) {
    const Palette& pal = skin().pal;
    ImFont* sf = skin().fonts.small ? skin().fonts.small : ImGui::GetFont();
    const float lh = sf->FontSize;
    ImGui::PushID(id);
    const ImVec2 a = ImGui::GetCursorScreenPos();
    size.x = std::max(size.x, 160.0f), size.y = std::max(size.y, 120.0f);
    ImGui::InvisibleButton("roofline", size);
    anchor(anchor_name);
    const bool hovered = ImGui::IsItemHovered();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    Axes ax;
    ranges(rl, &ax);
    const ImU32 c_weight = pal.series_at(0), c_math = pal.series_at(1), c_pts = pal.series_at(2);
    // The legend on top, on as many lines as the width takes; the plot below it.
    const std::vector<LegendItem> items = legend_items(rl, pal, c_weight, c_math);
    std::vector<ImVec2> at;
    const float extra = lh * 1.15f * float(legend_layout(items, sf, a, size.x, &at) - 1);
    ax.pa = ImVec2(a.x + text_w(sf, "999 µs") + 10, a.y + extra + lh * 2.2f);
    ax.pb = ImVec2(a.x + size.x - 12, a.y + size.y - lh * 2.8f);
    dl->AddRectFilled(ax.pa, ax.pb, pal.panel);
    dl->AddText(sf, lh, ImVec2(a.x, a.y + extra + lh * 0.9f), pal.text_dim, "time per FFN");
    const char* xt = "tokens per expert (T·k/E), log scale";
    dl->AddText(sf, lh, ImVec2((ax.pa.x + ax.pb.x - text_w(sf, xt)) * 0.5f, ax.pb.y + lh * 1.5f), pal.text_dim, xt);
    grid(dl, ax, pal, sf);
    legend(dl, items, at, pal, sf);
    dl->PushClipRect(ax.pa, ax.pb, true);
    polyline(dl, ax, rl.lines, 0, c_weight, 2, true);
    polyline(dl, ax, rl.lines, 1, c_math, 2, true);
    polyline(dl, ax, rl.lines, 2, with_alpha(pal.text, 0.85f), 3, false);
    // The ridge: where the floors meet once every expert is active.
    const double ridge = demos::ridge_tokens_per_expert(rl.ceilings);
    if (ridge > 0 && ax.x(ridge) > ax.pa.x && ax.x(ridge) < ax.pb.x) {
        const float px = ax.x(ridge);
        charts::dashed_line(dl, ImVec2(px, ax.pa.y), ImVec2(px, ax.pb.y), with_alpha(pal.text_dim, 0.6f), 1, 3, 4);
        const std::string s = "ridge ≈ " + demos::lesson::format_number(std::round(ridge));
        dl->AddText(sf, lh, ImVec2(px + 3, ax.pb.y - lh * 1.2f), pal.text_dim, s.c_str());
    }
    for (std::size_t i = 0; i < marks.size(); ++i) {
        const float px = ax.x(marks[i].tokens_per_expert);
        if (px < ax.pa.x || px > ax.pb.x) continue;
        charts::dashed_line(dl, ImVec2(px, ax.pa.y), ImVec2(px, ax.pb.y), pal.warn, 2, 6, 4);
        dl->AddText(sf, lh, ImVec2(px + 3, ax.pa.y + 2 + lh * 1.1f * float(i)), pal.warn, marks[i].label.c_str());
    }
    // The points: filled when measured, hollow when modelled; red when the check found wrong elements.
    int hover = -1;
    float best = 12.0f * 12.0f;
    const ImVec2 m = ImGui::GetIO().MousePos;
    for (std::size_t i = 0; i < rl.points.size(); ++i) {
        const demos::RooflinePoint& p = rl.points[i];
        if (p.median_ms <= 0) continue;
        const ImVec2 c(ax.x(p.tokens_per_expert), ax.y(p.median_ms));
        const ImU32 col = p.wrong > 0 ? pal.bad : c_pts;
        if (p.probe_ms > 0) diamond(dl, ImVec2(c.x, ax.y(p.probe_ms)), 5.0f, pal.text_dim);
        if (p.balanced_ms > 0) square(dl, ImVec2(c.x, ax.y(p.balanced_ms)), 4.0f, c_pts);
        if (p.peer_ms > 0) cross(dl, ImVec2(c.x, ax.y(p.peer_ms)), 4.0f, pal.series_at(6));
        if (p.p95_ms > p.median_ms) dl->AddLine(c, ImVec2(c.x, ax.y(p.p95_ms)), col, 1.5f);
        if (p.source == demos::lesson::Source::Modeled)
            dl->AddCircle(c, 4.5f, col, 0, 2);
        else
            dl->AddCircleFilled(c, 4.5f, col);
        if (!p.impl.empty() || p.wrong > 0) {
            char buf[96];
            std::snprintf(buf, sizeof buf, "%s %.0f%%%s", p.impl.c_str(), p.pct_of_roofline(),
                          p.wrong > 0 ? " (wrong)" : "");
            // Right of the point, or left of it near the plot's right edge.
            const float w = text_w(sf, buf);
            const float tx = c.x + 6 + w > ax.pb.x ? c.x - 6 - w : c.x + 6;
            dl->AddText(sf, lh, ImVec2(tx, c.y - lh - 2), col, buf);
        }
        const float d2 = (m.x - c.x) * (m.x - c.x) + (m.y - c.y) * (m.y - c.y);
        if (hovered && d2 < best) best = d2, hover = int(i);
    }
    dl->PopClipRect();
    if (hover >= 0) {
        wrapped_tooltip(point_text(rl.points[std::size_t(hover)], rl).c_str());
    } else if (hovered && m.x >= ax.pa.x && m.x <= ax.pb.x) {
        const double x = ax.x_at(m.x);
        const demos::RooflineFloor f = demos::roofline_floor(rl.shape, rl.ceilings, x);
        char buf[400];
        std::snprintf(buf, sizeof buf,
                      "%.1f tokens per expert (%.1f of %d experts active)\nweights read once: %s\nFLOPs at the GEMM "
                      "rate: %s\nroofline: %s, %s-bound [%s]",
                      x, f.active_experts, rl.shape.experts, charts::fmt_ms(f.weight_ms).c_str(),
                      charts::fmt_ms(f.math_ms).c_str(), charts::fmt_ms(f.roof_ms()).c_str(),
                      f.weight_bound() ? "weight" : "math", demos::lesson::source_name(rl.ceilings.source));
        wrapped_tooltip(buf);
    }
    ImGui::PopID();
}

}  // namespace moelab_gui::roofline
