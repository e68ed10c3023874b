// Timeline lanes: spans on a shared time axis with wheel zoom, drag pan, double-click fit and hover.
// Tracy's way: spans are first turned into plain pixel rectangles (tiny ones merged), then drawn.
#include <algorithm>
#include <cmath>

#include "app/gui/charts.hpp"

namespace moelab_gui::charts {
namespace {

struct DrawRect {
    ImVec2 a, b;
    ImU32 color;
    bool ghost;
    bool merged;  // several spans too small to see: drawn as a zig-zag
    int id;
    const std::string* label;
};

float text_w(ImFont* f, const std::string& s) { return f->CalcTextSizeA(f->FontSize, 1e9f, 0, s.c_str()).x; }

void zigzag(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 col) {
    float ym = (a.y + b.y) * 0.5f, h = (b.y - a.y) * 0.25f;
    bool up = true;
    for (float x = a.x; x < b.x; x += 3) {
        float x1 = std::min(x + 3, b.x);
        dl->AddLine(ImVec2(x, up ? ym - h : ym + h), ImVec2(x1, up ? ym + h : ym - h), col, 1.2f);
        up = !up;
    }
}

}  // namespace

Hover lanes(const Lanes& l, LaneView* view, ImVec2 size, const Palette& pal, const Fonts& fonts) {
    Hover hover;
    ImGui::PushID(l.id);
    ImFont* sf = fonts.small;
    const float lh = sf->FontSize;
    const int nl = static_cast<int>(l.lane_names.size());
    ImVec2 a = ImGui::GetCursorScreenPos();
    size.x = std::max(size.x, 160.0f);
    size.y = std::max(size.y, lh * 4);
    float label_w = 0;
    for (const auto& s : l.lane_names) label_w = std::max(label_w, text_w(fonts.body, s));
    label_w += 14;
    const float axis_h = lh * 1.8f;
    const float lane_h = nl > 0 ? std::clamp((size.y - axis_h) / nl, lh * 1.4f, lh * 3.2f) : lh * 2;
    size.y = std::min(size.y, axis_h + lane_h * std::max(nl, 1) + 2);

    // Data extent and the view window.
    double dmin = 0, dmax = 0;
    for (const LaneSpan& s : l.spans) {
        dmin = std::min(dmin, s.t0);
        dmax = std::max(dmax, s.t1);
    }
    if (dmax <= dmin) dmax = dmin + 1;
    if (view->fit || !(view->t1 > view->t0)) {
        view->t0 = dmin;
        view->t1 = dmin + (dmax - dmin) * 1.03;
        view->fit = false;
    }

    ImGui::SetCursorScreenPos(ImVec2(a.x + label_w, a.y));
    ImVec2 pa(a.x + label_w, a.y + axis_h), pb(a.x + size.x - 4, a.y + size.y);
    const float pw = std::max(1.0f, pb.x - pa.x);
    ImGui::InvisibleButton("plot", ImVec2(pw, size.y));
    const bool hovered = ImGui::IsItemHovered();
    ImGuiIO& io = ImGui::GetIO();
    double span = view->t1 - view->t0;
    if (hovered && io.MouseWheel != 0) {
        double mt = view->t0 + (io.MousePos.x - pa.x) / pw * span;
        double f = std::pow(0.8, io.MouseWheel);
        double ns = std::clamp(span * f, (dmax - dmin) * 1e-5, (dmax - dmin) * 20);
        view->t0 = mt - (mt - view->t0) * ns / span;
        view->t1 = view->t0 + ns;
        span = ns;
    }
    if (ImGui::IsItemActive() && ImGui::IsMouseDragging(ImGuiMouseButton_Left, 1.0f)) {
        double dt = -io.MouseDelta.x / pw * span;
        view->t0 += dt;
        view->t1 += dt;
    }
    if (hovered && ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) view->fit = true;

    ImDrawList* dl = ImGui::GetWindowDrawList();
    auto xpix = [&](double t) { return pa.x + static_cast<float>((t - view->t0) / span) * pw; };

    // Lane bands and names.
    for (int i = 0; i < nl; ++i) {
        float y0 = pa.y + lane_h * i;
        if (i % 2 == 0) dl->AddRectFilled(ImVec2(a.x, y0), ImVec2(pb.x, y0 + lane_h), pal.band);
        bool ghost = i < static_cast<int>(l.lane_ghost.size()) && l.lane_ghost[i];
        dl->AddText(fonts.body, fonts.body->FontSize, ImVec2(a.x + 4, y0 + (lane_h - fonts.body->FontSize) * 0.5f),
                    ghost ? pal.text_dim : pal.text, l.lane_names[i].c_str());
    }
    // Time axis with grid.
    std::vector<double> ticks = nice_ticks(view->t0, view->t1, std::max(2, static_cast<int>(pw / 110)));
    for (double t : ticks) {
        float x = xpix(t);
        if (x < pa.x - 0.5f || x > pb.x + 0.5f) continue;
        dl->AddLine(ImVec2(x, pa.y - 4), ImVec2(x, pb.y), pal.grid);
        std::string s = l.unit == "ms" ? fmt_ms(t) : fmt_si(t) + " " + l.unit;
        float w = text_w(sf, s);
        dl->AddText(sf, lh, ImVec2(std::clamp(x - w * 0.5f, pa.x, pb.x - w), a.y + 2), pal.text_dim, s.c_str());
    }
    dl->AddLine(ImVec2(pa.x, pa.y), ImVec2(pb.x, pa.y), pal.axis);

    // 1) Layout: spans → pixel rectangles, merging runs of sub-2-pixel spans per lane and kind.
    std::vector<DrawRect> rects;
    rects.reserve(l.spans.size());
    std::vector<int> order(l.spans.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
        const LaneSpan &p = l.spans[x], &q = l.spans[y];
        if (p.ghost != q.ghost) return p.ghost;  // ghosts first: measured spans draw over them
        if (p.lane != q.lane) return p.lane < q.lane;
        return p.t0 < q.t0;
    });
    const float pad = std::max(1.0f, lane_h * 0.12f);
    for (int idx : order) {
        const LaneSpan& s = l.spans[idx];
        if (s.lane < 0 || s.lane >= nl) continue;
        float x0 = xpix(s.t0), x1 = xpix(s.t1);
        if (x1 < pa.x || x0 > pb.x) continue;
        x0 = std::max(x0, pa.x - 2);
        x1 = std::min(x1, pb.x + 2);
        float inset = s.ghost ? pad * 0.4f : pad;
        float y0 = pa.y + lane_h * s.lane + inset, y1 = pa.y + lane_h * (s.lane + 1) - inset;
        if (x1 - x0 < 2.0f && !rects.empty()) {
            DrawRect& last = rects.back();
            if (last.ghost == s.ghost && std::fabs(last.a.y - y0) < 0.5f && x0 - last.b.x < 2.0f &&
                (last.merged || last.b.x - last.a.x < 2.0f)) {
                last.b.x = std::max(last.b.x, x1);
                last.merged = true;
                continue;
            }
        }
        rects.push_back({ImVec2(x0, y0), ImVec2(std::max(x1, x0 + 1), y1), s.color, s.ghost, false, s.id, &s.label});
    }

    // 2) Hit test on the laid-out rectangles (measured over ghosts).
    const DrawRect* hit = nullptr;
    if (hovered) {
        for (const DrawRect& r : rects) {
            if (io.MousePos.x >= r.a.x && io.MousePos.x <= r.b.x && io.MousePos.y >= r.a.y && io.MousePos.y <= r.b.y &&
                !r.merged)
                hit = &r;
        }
    }

    // 3) Draw.
    dl->PushClipRect(ImVec2(pa.x, pa.y), ImVec2(pb.x, pb.y), true);
    for (const DrawRect& r : rects) {
        if (r.merged) {
            dl->AddRectFilled(r.a, r.b, with_alpha(pal.text_dim, 0.25f));
            zigzag(dl, r.a, r.b, pal.text_dim);
            continue;
        }
        // Square corners and solid outlines: each span stays a handful of triangles (software GL is triangle-bound).
        if (r.ghost) {
            dl->AddRectFilled(r.a, r.b, with_alpha(r.color, 0.20f));
            hatch_rect(dl, r.a, r.b, with_alpha(r.color, 0.5f), 9, 1);
            dl->AddRect(r.a, r.b, with_alpha(r.color, 0.95f));
        } else {
            dl->AddRectFilled(r.a, r.b, r.color);
            dl->AddRect(r.a, r.b, with_alpha(IM_COL32(0, 0, 0, 255), 0.45f));
        }
        if (r.label && !r.label->empty() && r.b.x - r.a.x > text_w(sf, *r.label) + 6 && r.b.y - r.a.y > lh) {
            float w = text_w(sf, *r.label);
            ImVec4 c = ImGui::ColorConvertU32ToFloat4(r.color);
            float lum = 0.299f * c.x + 0.587f * c.y + 0.114f * c.z;
            ImU32 tc = r.ghost ? pal.text : (lum > 0.55f ? IM_COL32(0, 0, 0, 255) : IM_COL32(255, 255, 255, 255));
            dl->AddText(sf, lh, ImVec2((r.a.x + r.b.x - w) * 0.5f, (r.a.y + r.b.y - lh) * 0.5f), tc, r.label->c_str());
        }
    }
    if (hit) {
        dl->AddRect(ImVec2(hit->a.x - 1, hit->a.y - 1), ImVec2(hit->b.x + 1, hit->b.y + 1), pal.text, 0, 0, 2);
        hover.index = hit->id;
    }
    if (hovered) dl->AddLine(ImVec2(io.MousePos.x, pa.y), ImVec2(io.MousePos.x, pb.y), with_alpha(pal.text, 0.35f));
    dl->PopClipRect();
    ImGui::PopID();
    return hover;
}

}  // namespace moelab_gui::charts
