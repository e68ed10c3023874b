// The lesson view's charts: bars to drag, measured bars with the prediction as a ghost, a number line with the
// tolerance band, and the pipeline lanes on a fixed axis where a click marks a time.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "app/gui/view_lesson.hpp"

namespace moelab_gui::lesson_draw {
namespace {

struct Frame {
    ImVec2 a, b;  // plot area
    ImDrawList* dl;
};

// Reserves `height` of the remaining width with a left margin for y labels and a bottom margin for x labels.
Frame plot_area(float height, const char* id, bool* hovered, bool* active) {
    ImVec2 p = ImGui::GetCursorScreenPos();
    float w = ImGui::GetContentRegionAvail().x;
    ImGui::InvisibleButton(id, ImVec2(std::max(w, 50.0f), height));
    if (hovered) *hovered = ImGui::IsItemHovered();
    if (active) *active = ImGui::IsItemActive();
    const float left = skin().fonts.small_px * 3.6f, bottom = skin().fonts.small_px * 1.6f;
    Frame f{ImVec2(p.x + left, p.y + 4), ImVec2(p.x + w - 6, p.y + height - bottom), ImGui::GetWindowDrawList()};
    f.dl->AddRectFilled(f.a, f.b, skin().pal.panel);
    return f;
}

void y_axis(const Frame& f, double y_max) {
    ImFont* font = skin().fonts.small ? skin().fonts.small : ImGui::GetFont();
    for (double t : charts::nice_ticks(0, y_max, 4)) {
        float y = f.b.y - float(t / y_max) * (f.b.y - f.a.y);
        if (y < f.a.y - 1) continue;
        f.dl->AddLine(ImVec2(f.a.x, y), ImVec2(f.b.x, y), skin().pal.grid);
        std::string s = charts::fmt_si(t);
        ImVec2 ts = font->CalcTextSizeA(skin().fonts.small_px, 1e9f, 0, s.c_str());
        f.dl->AddText(font, skin().fonts.small_px, ImVec2(f.a.x - ts.x - 4, y - ts.y * 0.5f), skin().pal.text_dim,
                      s.c_str());
    }
    f.dl->AddLine(ImVec2(f.a.x, f.b.y), ImVec2(f.b.x, f.b.y), skin().pal.axis);
}

void x_labels(const Frame& f, int n) {
    ImFont* font = skin().fonts.small ? skin().fonts.small : ImGui::GetFont();
    const float bw = (f.b.x - f.a.x) / std::max(1, n);
    int every = std::max(1, int(std::ceil(skin().fonts.small_px * 2.2f / std::max(bw, 1.0f))));
    for (int i = 0; i < n; i += every) {
        std::string s = std::to_string(i);
        ImVec2 ts = font->CalcTextSizeA(skin().fonts.small_px, 1e9f, 0, s.c_str());
        f.dl->AddText(font, skin().fonts.small_px, ImVec2(f.a.x + bw * (i + 0.5f) - ts.x * 0.5f, f.b.y + 2),
                      skin().pal.text_dim, s.c_str());
    }
}

double sum(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s;
}

}  // namespace

bool edit_bars(std::vector<float>* bars, float y_max, float height) {
    bool hovered = false, active = false;
    Frame f = plot_area(height, "##lesson_bars", &hovered, &active);
    anchor("lesson:bars");
    const int n = static_cast<int>(bars->size());
    bool changed = false;
    if (active && n > 0) {
        // Dragging across the chart sets each bar it passes to the mouse's height.
        ImVec2 m = ImGui::GetIO().MousePos;
        int i = std::clamp(int((m.x - f.a.x) / (f.b.x - f.a.x) * n), 0, n - 1);
        float v = std::clamp((f.b.y - m.y) / (f.b.y - f.a.y), 0.0f, 1.0f) * y_max;
        if ((*bars)[std::size_t(i)] != v) {
            (*bars)[std::size_t(i)] = v;
            changed = true;
        }
    }
    y_axis(f, y_max);
    const float bw = (f.b.x - f.a.x) / std::max(1, n);
    for (int i = 0; i < n; ++i) {
        float h = std::clamp((*bars)[std::size_t(i)] / y_max, 0.0f, 1.0f) * (f.b.y - f.a.y);
        ImVec2 a(f.a.x + bw * i + bw * 0.15f, f.b.y - h), b(f.a.x + bw * (i + 1) - bw * 0.15f, f.b.y);
        f.dl->AddRectFilled(a, b, with_alpha(skin().pal.series_at(1), 0.55f));
        f.dl->AddLine(ImVec2(a.x, a.y), ImVec2(b.x, a.y), skin().pal.series_at(1), 3);  // the handle to drag
    }
    x_labels(f, n);
    if (hovered) ImGui::SetMouseCursor(ImGuiMouseCursor_Hand);
    return changed;
}

void ghost_bars(const std::vector<double>& measured, const std::vector<double>& guess, float height) {
    Frame f = plot_area(height, "##lesson_ghost_bars", nullptr, nullptr);
    anchor("lesson:ghost_bars");
    const double tm = sum(measured), tg = sum(guess);
    std::vector<double> g(guess.size());
    for (std::size_t i = 0; i < guess.size(); ++i) g[i] = tg > 0 ? guess[i] * tm / tg : 0;
    double y_max = 1;
    for (double v : measured) y_max = std::max(y_max, v);
    for (double v : g) y_max = std::max(y_max, v);
    y_max *= 1.08;
    y_axis(f, y_max);
    const int n = static_cast<int>(measured.size());
    const float bw = (f.b.x - f.a.x) / std::max(1, n);
    auto y_of = [&](double v) { return f.b.y - float(v / y_max) * (f.b.y - f.a.y); };
    for (int i = 0; i < n; ++i) {
        ImVec2 a(f.a.x + bw * i + bw * 0.15f, y_of(measured[std::size_t(i)])),
            b(f.a.x + bw * (i + 1) - bw * 0.15f, f.b.y);
        f.dl->AddRectFilled(a, b, skin().pal.bar);
        if (std::size_t(i) < g.size()) {
            ImVec2 ga(f.a.x + bw * i + bw * 0.08f, y_of(g[std::size_t(i)])),
                gb(f.a.x + bw * (i + 1) - bw * 0.08f, f.b.y);
            f.dl->AddRectFilled(ga, gb, with_alpha(skin().pal.series_at(1), 0.18f));
            charts::dashed_rect(f.dl, ga, gb, skin().pal.series_at(1), 2);
        }
    }
    x_labels(f, n);
}

void ghost_number(double lo, double hi, double truth, double tol, double guess, const std::string& unit, float height) {
    double a0 = std::min({lo, truth - tol, guess}), a1 = std::max({hi, truth + tol, guess});
    if (!(a1 > a0)) a1 = a0 + 1;
    ImVec2 p = ImGui::GetCursorScreenPos();
    float w = ImGui::GetContentRegionAvail().x;
    ImGui::Dummy(ImVec2(w, height));
    anchor("lesson:ghost_number");
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const float x0 = p.x + 12, x1 = p.x + w - 12, y = p.y + height * 0.45f;
    auto x_of = [&](double v) { return x0 + float((v - a0) / (a1 - a0)) * (x1 - x0); };
    dl->AddRectFilled(ImVec2(x_of(truth - tol), y - height * 0.22f), ImVec2(x_of(truth + tol), y + height * 0.22f),
                      with_alpha(skin().pal.ok, 0.25f));
    dl->AddLine(ImVec2(x0, y), ImVec2(x1, y), skin().pal.axis, 2);
    ImFont* font = skin().fonts.small ? skin().fonts.small : ImGui::GetFont();
    for (double t : charts::nice_ticks(a0, a1, 6)) {
        if (t < a0 || t > a1) continue;
        dl->AddLine(ImVec2(x_of(t), y - 4), ImVec2(x_of(t), y + 4), skin().pal.axis);
        std::string s = charts::fmt_fixed(t, std::fabs(t) < 10 && t != std::floor(t) ? 1 : 0);
        dl->AddText(font, skin().fonts.small_px, ImVec2(x_of(t) - 6, y + 6), skin().pal.text_dim, s.c_str());
    }
    dl->AddLine(ImVec2(x_of(truth), y - height * 0.35f), ImVec2(x_of(truth), y + height * 0.2f), skin().pal.ok, 3);
    std::string tl = "engine " + charts::fmt_fixed(truth, 2) + unit;
    dl->AddText(ImVec2(x_of(truth) + 4, p.y), skin().pal.ok, tl.c_str());
    charts::dashed_line(dl, ImVec2(x_of(guess), y - height * 0.2f), ImVec2(x_of(guess), y + height * 0.35f),
                        skin().pal.series_at(1), 3, 5, 3);
    std::string gl = "you " + charts::fmt_fixed(guess, 2) + unit;
    dl->AddText(ImVec2(x_of(guess) + 4, y + height * 0.2f), skin().pal.series_at(1), gl.c_str());
}

void vote_bars(const std::vector<std::string>& labels, const std::vector<int>& first, const std::vector<int>& second,
               int right, float height) {
    Frame f = plot_area(height, "##lesson_vote_bars", nullptr, nullptr);
    anchor("lesson:vote_bars");
    const int n = static_cast<int>(labels.size());
    double y_max = 1;
    for (int v : first) y_max = std::max(y_max, double(v));
    for (int v : second) y_max = std::max(y_max, double(v));
    y_max *= 1.15;
    y_axis(f, y_max);
    ImFont* font = skin().fonts.small ? skin().fonts.small : ImGui::GetFont();
    const float px = skin().fonts.small_px;
    const float slot = (f.b.x - f.a.x) / std::max(1, n);
    const float bw = std::min(slot * 0.32f, skin().fonts.body_px * 3);
    auto y_of = [&](double v) { return f.b.y - float(v / y_max) * (f.b.y - f.a.y); };
    auto count = [&](float x, float y, int v) {
        std::string s = std::to_string(v);
        ImVec2 ts = font->CalcTextSizeA(px, 1e9f, 0, s.c_str());
        f.dl->AddText(font, px, ImVec2(x - ts.x * 0.5f, y - ts.y - 1), skin().pal.text, s.c_str());
    };
    const ImU32 c1 = skin().pal.series_at(0), c2 = skin().pal.series_at(1);
    for (int i = 0; i < n; ++i) {
        const float xm = f.a.x + slot * (i + 0.5f);
        const int a = i < int(first.size()) ? first[std::size_t(i)] : 0;
        const int b = i < int(second.size()) ? second[std::size_t(i)] : 0;
        // The first vote outlined (what the class thought), the second filled (where discussion took it).
        ImVec2 a0(xm - bw - 2, y_of(a)), a1(xm - 2, f.b.y), b0(xm + 2, y_of(b)), b1(xm + bw + 2, f.b.y);
        f.dl->AddRectFilled(a0, a1, with_alpha(c1, 0.2f));
        f.dl->AddRect(a0, a1, c1, 0, 0, 2);
        f.dl->AddRectFilled(b0, b1, c2);
        count((a0.x + a1.x) * 0.5f, a0.y, a);
        count((b0.x + b1.x) * 0.5f, b0.y, b);
        const ImU32 lc = i == right ? skin().pal.ok : skin().pal.text_dim;
        const std::string label = labels[std::size_t(i)] + (i == right ? " (right)" : "");
        ImVec2 ts = font->CalcTextSizeA(px, 1e9f, 0, label.c_str());
        f.dl->AddText(font, px, ImVec2(xm - ts.x * 0.5f, f.b.y + 2), lc, label.c_str());
    }
}

bool timeline(const demos::Result* r, double t0, double t1, double* marker, double truth, float height, bool editable) {
    static const char* lanes[] = {"attention", "a2e", "experts", "e2a"};
    static const char* names[] = {"attention", "A2E", "experts", "E2A"};
    ImVec2 p = ImGui::GetCursorScreenPos();
    float w = ImGui::GetContentRegionAvail().x;
    ImGui::InvisibleButton("##lesson_timeline", ImVec2(std::max(w, 80.0f), height));
    const bool clicked = editable && ImGui::IsItemActive();
    if (ImGui::IsItemHovered() && editable) ImGui::SetMouseCursor(ImGuiMouseCursor_Hand);
    anchor("lesson:timeline");
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const float label_w = ImGui::CalcTextSize("attention ").x + 8;
    const float x0 = p.x + label_w, x1 = p.x + w - 8, y0 = p.y + 4, y1 = p.y + height - skin().fonts.small_px * 1.8f;
    const float lh = (y1 - y0) / 4;
    auto x_of = [&](double t) { return x0 + float((t - t0) / (t1 - t0)) * (x1 - x0); };
    for (int i = 0; i < 4; ++i) {
        dl->AddRectFilled(ImVec2(x0, y0 + lh * i + 2), ImVec2(x1, y0 + lh * (i + 1) - 2), skin().pal.panel);
        dl->AddText(ImVec2(p.x, y0 + lh * i + lh * 0.5f - ImGui::GetFontSize() * 0.5f), skin().pal.text_dim, names[i]);
    }
    if (r)
        for (const demos::Span& s : r->model_timeline)
            for (int i = 0; i < 4; ++i)
                if (s.lane == lanes[i] && s.end_ms > t0 && s.start_ms < t1) {
                    ImVec2 a(std::max(x0, x_of(s.start_ms)), y0 + lh * i + 3);
                    ImVec2 b(std::min(x1, x_of(s.end_ms)), y0 + lh * (i + 1) - 3);
                    dl->AddRectFilled(a, b, with_alpha(skin().pal.series_at(s.micro_batch), 0.75f));
                    charts::hatch_rect(dl, a, b, with_alpha(skin().pal.text, 0.25f), 7, 1);  // modelled, not measured
                    dl->AddRect(a, b, skin().pal.series_at(s.micro_batch));
                }
    ImFont* font = skin().fonts.small ? skin().fonts.small : ImGui::GetFont();
    dl->AddLine(ImVec2(x0, y1), ImVec2(x1, y1), skin().pal.axis);
    for (double t : charts::nice_ticks(t0, t1, 8)) {
        if (t < t0 || t > t1) continue;
        dl->AddLine(ImVec2(x_of(t), y1), ImVec2(x_of(t), y1 + 4), skin().pal.axis);
        std::string s = charts::fmt_ms(t);
        dl->AddText(font, skin().fonts.small_px, ImVec2(x_of(t) - 8, y1 + 4), skin().pal.text_dim, s.c_str());
    }
    bool changed = false;
    if (clicked) {
        double t = t0 + (ImGui::GetIO().MousePos.x - x0) / (x1 - x0) * (t1 - t0);
        t = std::clamp(t, t0, t1);
        if (*marker != t) {
            *marker = t;
            changed = true;
        }
    }
    if (truth >= t0 && truth <= t1) dl->AddLine(ImVec2(x_of(truth), y0), ImVec2(x_of(truth), y1), skin().pal.ok, 3);
    if (*marker >= t0 && *marker <= t1)
        charts::dashed_line(dl, ImVec2(x_of(*marker), y0), ImVec2(x_of(*marker), y1), skin().pal.series_at(1), 3, 6, 4);
    return changed;
}

}  // namespace moelab_gui::lesson_draw
