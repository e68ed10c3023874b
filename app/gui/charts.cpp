// Chart primitives drawn with ImDrawList: axes with readable ticks, bars, lines, a heatmap with legend, lanes.
// Each chart first lays out plain rectangles and labels, then draws them, so hover tests and drawing agree.
#include "app/gui/charts.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace moelab_gui::charts {
namespace {

std::string printf_str(const char* fmt, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, v);
    return buf;
}

// The plot area inside `frame` once room is left for tick labels and axis titles.
struct Frame {
    ImVec2 a, b;    // whole widget
    ImVec2 pa, pb;  // plot area
};

float text_w(ImFont* f, const std::string& s) { return f->CalcTextSizeA(f->FontSize, 1e9f, 0, s.c_str()).x; }

void draw_text(ImDrawList* dl, ImFont* f, ImVec2 p, ImU32 col, const std::string& s) {
    dl->AddText(f, f->FontSize, p, col, s.c_str());
}

// Draws the y grid lines and their labels at `ticks`.
void y_axis(ImDrawList* dl, const Frame& fr, double y_max, const std::vector<double>& ticks, const Format& fmt,
            const Palette& pal, const Fonts& fonts) {
    ImFont* f = fonts.small;
    for (double t : ticks) {
        float y = fr.pb.y - static_cast<float>(t / y_max) * (fr.pb.y - fr.pa.y);
        dl->AddLine(ImVec2(fr.pa.x, y), ImVec2(fr.pb.x, y), pal.grid);
        std::string s = fmt ? fmt(t) : fmt_si(t);
        float w = text_w(f, s);
        draw_text(dl, f, ImVec2(fr.pa.x - 6 - w, y - f->FontSize * 0.5f), pal.text_dim, s);
    }
    dl->AddLine(ImVec2(fr.pa.x, fr.pa.y), ImVec2(fr.pa.x, fr.pb.y), pal.axis);
    dl->AddLine(ImVec2(fr.pa.x, fr.pb.y), ImVec2(fr.pb.x, fr.pb.y), pal.axis);
}

float widest_tick(const std::vector<double>& ticks, const Format& fmt, ImFont* f) {
    float w = 0;
    for (double t : ticks) w = std::max(w, text_w(f, fmt ? fmt(t) : fmt_si(t)));
    return w;
}

void y_title(ImDrawList* dl, const Frame& fr, const std::string& title, const Palette& pal, const Fonts& fonts) {
    if (title.empty()) return;
    draw_text(dl, fonts.small, ImVec2(fr.a.x, fr.a.y), pal.text_dim, title);
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
    std::vector<double> out;
    if (!(hi > lo) || target < 1) {
        out.push_back(lo);
        return out;
    }
    double raw = (hi - lo) / target;
    double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
        step = m * mag;
        if (step >= raw) break;
    }
    double first = std::ceil(lo / step - 1e-9) * step;
    for (double t = first; t <= hi + step * 1e-6; t += step) out.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
    return out;
}

std::string fmt_si(double v) {
    double a = std::fabs(v);
    if (a >= 1e9) return printf_str(a >= 1e10 ? "%.0fG" : "%.3gG", v / 1e9);
    if (a >= 1e6) return printf_str(a >= 1e7 ? "%.0fM" : "%.3gM", v / 1e6);
    if (a >= 1e4) return printf_str("%.3gk", v / 1e3);
    if (a >= 100 || v == std::floor(v)) return printf_str("%.0f", v);
    return printf_str("%.3g", v);
}

std::string fmt_count(double v) {
    char buf[48];
    long long n = std::llround(v);
    std::snprintf(buf, sizeof buf, "%lld", n < 0 ? -n : n);
    std::string s = buf, out;
    int c = 0;
    for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
        out.insert(out.begin(), s[i]);
        if (++c % 3 == 0 && i > 0) out.insert(out.begin(), ',');
    }
    return n < 0 ? "-" + out : out;
}

std::string fmt_bytes(double b) {
    double a = std::fabs(b);
    if (a >= 1e9) return printf_str("%.3g GB", b / 1e9);
    if (a >= 1e6) return printf_str("%.3g MB", b / 1e6);
    if (a >= 1e3) return printf_str("%.3g kB", b / 1e3);
    return printf_str("%.0f B", b);
}

std::string fmt_ms(double ms) {
    double a = std::fabs(ms);
    if (a >= 1000) return printf_str("%.3g s", ms / 1000);
    if (a >= 1) return printf_str(a >= 100 ? "%.0f ms" : "%.3g ms", ms);
    if (a >= 1e-3) return printf_str("%.3g µs", ms * 1e3);
    if (a == 0) return "0";
    return printf_str("%.3g ns", ms * 1e6);
}

std::string fmt_fixed(double v, int digits) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

void dashed_line(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 col, float thickness, float dash, float gap) {
    float dx = b.x - a.x, dy = b.y - a.y;
    float len = std::sqrt(dx * dx + dy * dy);
    if (len < 1e-3f) return;
    dx /= len;
    dy /= len;
    for (float s = 0; s < len; s += dash + gap) {
        float e = std::min(s + dash, len);
        dl->AddLine(ImVec2(a.x + dx * s, a.y + dy * s), ImVec2(a.x + dx * e, a.y + dy * e), col, thickness);
    }
}

void dashed_rect(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 col, float thickness) {
    dashed_line(dl, a, ImVec2(b.x, a.y), col, thickness, 4, 3);
    dashed_line(dl, ImVec2(b.x, a.y), b, col, thickness, 4, 3);
    dashed_line(dl, b, ImVec2(a.x, b.y), col, thickness, 4, 3);
    dashed_line(dl, ImVec2(a.x, b.y), a, col, thickness, 4, 3);
}

void hatch_rect(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 col, float spacing, float thickness) {
    if (b.x - a.x < 1 || b.y - a.y < 1) return;
    // 45° lines x + y = c, each cut to the rectangle here rather than by a clip rect: no wasted vertices and no
    // extra draw command (both cost real time on software GL).
    const float c0 = a.x + a.y, c1 = b.x + b.y;
    for (float c = c0 + spacing * 0.5f; c < c1; c += spacing) {
        const float x_lo = std::max(a.x, c - b.y), x_hi = std::min(b.x, c - a.y);
        if (x_hi - x_lo < 0.5f) continue;
        dl->AddLine(ImVec2(x_lo, c - x_lo), ImVec2(x_hi, c - x_hi), col, thickness);
    }
}

// ---------------------------------------------------------------------------------------------- bars
Hover bar_chart(const BarChart& c, ImVec2 size, const Palette& pal, const Fonts& fonts) {
    Hover hover;
    ImGui::PushID(c.id);
    ImVec2 a = ImGui::GetCursorScreenPos();
    size.x = std::max(size.x, 80.0f);
    size.y = std::max(size.y, 60.0f);
    ImGui::InvisibleButton("plot", size);
    const bool hovered = ImGui::IsItemHovered();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const int n = static_cast<int>(c.values.size());

    double vmax = 0;
    for (int i = 0; i < n; ++i) {
        double v = c.values[i] + (i < static_cast<int>(c.overflow.size()) ? c.overflow[i] : 0.0);
        if (i < static_cast<int>(c.whisker_hi.size())) v = std::max(v, c.whisker_hi[i]);
        vmax = std::max(vmax, v);
    }
    for (const HLine& h : c.hlines) vmax = std::max(vmax, h.y);
    if (c.y_max > 0) vmax = c.y_max;
    if (vmax <= 0) vmax = 1;
    ImFont* sf = fonts.small;
    const float lh = sf->FontSize;
    const int target = std::max(2, static_cast<int>(size.y / (lh * 3.0f)));
    std::vector<double> ticks = nice_ticks(0, vmax * 1.08, target);
    double ymax = std::max(ticks.back(), vmax * 1.08);

    Frame fr;
    fr.a = a;
    fr.b = ImVec2(a.x + size.x, a.y + size.y);
    const float top_pad = (c.y_title.empty() ? 0.5f : 1.4f) * lh + (c.groups.empty() ? 0 : lh * 1.2f);
    fr.pa = ImVec2(a.x + widest_tick(ticks, c.y_format, sf) + 10, a.y + top_pad);
    fr.pb = ImVec2(fr.b.x - 8, fr.b.y - lh * (c.x_title.empty() ? 1.6f : 2.9f));
    if (fr.pb.y - fr.pa.y < 10 || fr.pb.x - fr.pa.x < 10 || n == 0) {
        ImGui::PopID();
        return hover;
    }
    const float pw = fr.pb.x - fr.pa.x, ph = fr.pb.y - fr.pa.y;
    auto ypix = [&](double v) { return fr.pb.y - static_cast<float>(v / ymax) * ph; };
    const float slot = pw / n;
    // Few bars in a wide chart: cap their width so they read as bars, not as blocks.
    const float max_bar = fonts.body->FontSize * 7.0f;
    const float gap = slot >= 6 ? std::max(std::min(slot * 0.22f, 14.0f), slot - max_bar) : 0.0f;

    // Group bands (ranks) behind everything.
    for (std::size_t g = 0; g < c.groups.size(); ++g) {
        const BarGroup& grp = c.groups[g];
        float x0 = fr.pa.x + slot * grp.first, x1 = fr.pa.x + slot * (grp.first + grp.count);
        if (g % 2 == 0) dl->AddRectFilled(ImVec2(x0, fr.pa.y - lh * 1.2f), ImVec2(x1, fr.pb.y), pal.band);
        if (g > 0) dl->AddLine(ImVec2(x0, fr.pa.y - lh * 1.2f), ImVec2(x0, fr.pb.y), pal.grid);
        float w = text_w(sf, grp.label);
        if (w < x1 - x0 - 4)
            draw_text(dl, sf, ImVec2((x0 + x1 - w) * 0.5f, fr.pa.y - lh * 1.1f), pal.text_dim, grp.label);
    }
    y_axis(dl, fr, ymax, ticks, c.y_format, pal, fonts);
    y_title(dl, fr, c.y_title, pal, fonts);

    int hov = -1;
    ImVec2 mouse = ImGui::GetIO().MousePos;
    if (hovered && mouse.x >= fr.pa.x && mouse.x < fr.pb.x)
        hov = std::clamp(static_cast<int>((mouse.x - fr.pa.x) / slot), 0, n - 1);

    for (int i = 0; i < n; ++i) {
        float x0 = fr.pa.x + slot * i + gap * 0.5f, x1 = fr.pa.x + slot * (i + 1) - gap * 0.5f;
        if (x1 - x0 < 1) x1 = x0 + 1;
        ImU32 col = i < static_cast<int>(c.colors.size()) ? c.colors[i] : pal.bar;
        float y0 = ypix(c.values[i]);
        bool hatched = i < static_cast<int>(c.hatched.size()) && c.hatched[i];
        if (hatched) {
            dl->AddRectFilled(ImVec2(x0, y0), ImVec2(x1, fr.pb.y), with_alpha(col, 0.22f));
            hatch_rect(dl, ImVec2(x0, y0), ImVec2(x1, fr.pb.y), with_alpha(col, 0.7f), 7, 1.0f);
            dashed_rect(dl, ImVec2(x0, y0), ImVec2(x1, fr.pb.y), col);
        } else {
            dl->AddRectFilled(ImVec2(x0, y0), ImVec2(x1, fr.pb.y), i == hov ? mix(col, pal.text, 0.25f) : col);
        }
        if (i < static_cast<int>(c.overflow.size()) && c.overflow[i] > 0) {
            float y1 = ypix(c.values[i] + c.overflow[i]);
            ImU32 oc = c.overflow_color ? c.overflow_color : pal.dropped;
            dl->AddRectFilled(ImVec2(x0, y1), ImVec2(x1, y0), with_alpha(oc, 0.35f));
            hatch_rect(dl, ImVec2(x0, y1), ImVec2(x1, y0), oc, 7, 1.0f);
            dl->AddRect(ImVec2(x0, y1), ImVec2(x1, y0), oc);
            if (hov == i && mouse.y < y0) hover.overflow = true;
        }
        if (i < static_cast<int>(c.whisker_lo.size()) && i < static_cast<int>(c.whisker_hi.size())) {
            float xm = (x0 + x1) * 0.5f, cap = std::min(6.0f, (x1 - x0) * 0.3f);
            float ylo = ypix(c.whisker_lo[i]), yhi = ypix(c.whisker_hi[i]);
            dl->AddLine(ImVec2(xm, ylo), ImVec2(xm, yhi), pal.text, 1.5f);
            dl->AddLine(ImVec2(xm - cap, ylo), ImVec2(xm + cap, ylo), pal.text, 1.5f);
            dl->AddLine(ImVec2(xm - cap, yhi), ImVec2(xm + cap, yhi), pal.text, 1.5f);
        }
        if (i < static_cast<int>(c.value_labels.size()) && !c.value_labels[i].empty()) {
            float w = text_w(sf, c.value_labels[i]);
            float top = y0;
            if (i < static_cast<int>(c.whisker_hi.size())) top = std::min(top, ypix(c.whisker_hi[i]));
            if (w < slot + gap)
                draw_text(dl, sf, ImVec2((x0 + x1 - w) * 0.5f, top - lh - 2), pal.text, c.value_labels[i]);
        }
        if (i == c.highlight) {
            dl->AddRect(ImVec2(x0 - 1, y0 - 1), ImVec2(x1 + 1, fr.pb.y + 1), pal.text, 0, 0, 2);
            if (!c.highlight_label.empty()) {
                float w = text_w(sf, c.highlight_label);
                float tx = std::clamp((x0 + x1 - w) * 0.5f, fr.pa.x, fr.pb.x - w);
                float ty = std::max(fr.pa.y, y0 - lh - 3);
                if (i < static_cast<int>(c.overflow.size()) && c.overflow[i] > 0)
                    ty = std::max(fr.pa.y, ypix(c.values[i] + c.overflow[i]) - lh - 3);
                dl->AddRectFilled(ImVec2(tx - 2, ty), ImVec2(tx + w + 2, ty + lh), with_alpha(pal.panel, 0.8f));
                draw_text(dl, sf, ImVec2(tx, ty), pal.text, c.highlight_label);
            }
        }
    }
    if (hov >= 0) {
        float x0 = fr.pa.x + slot * hov, x1 = x0 + slot;
        dl->AddRectFilled(ImVec2(x0, fr.pa.y), ImVec2(x1, fr.pb.y), with_alpha(pal.text, 0.06f));
    }
    // Reference lines last, with their labels at the right end; a label that would overlap the one before it
    // moves left of it.
    float prev_label_y = -1e9f, prev_label_x = fr.pb.x;
    for (const HLine& h : c.hlines) {
        float y = ypix(h.y);
        if (h.dashed) {
            dashed_line(dl, ImVec2(fr.pa.x, y), ImVec2(fr.pb.x, y), h.color, h.thickness);
        } else {
            dl->AddLine(ImVec2(fr.pa.x, y), ImVec2(fr.pb.x, y), h.color, h.thickness);
        }
        if (!h.label.empty()) {
            float w = text_w(sf, h.label);
            float right = std::fabs(y - prev_label_y) < lh + 2 ? prev_label_x - 12 : fr.pb.x - 4;
            ImVec2 p(right - w, y - lh - 1);
            prev_label_y = y;
            prev_label_x = p.x;
            dl->AddRectFilled(ImVec2(p.x - 2, p.y), ImVec2(p.x + w + 2, p.y + lh), with_alpha(pal.panel, 0.75f));
            draw_text(dl, sf, p, h.color, h.label);
        }
    }
    // X labels, thinned so they never overlap.
    if (!c.labels.empty()) {
        float widest = 0;
        for (const auto& s : c.labels) widest = std::max(widest, text_w(sf, s));
        int every = std::max(1, static_cast<int>(std::ceil((widest + 8) / slot)));
        for (int e : {1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 50, 64, 100, 128, 256, 512, 1000}) {
            if (e >= every) {
                every = e;
                break;
            }
        }
        for (int i = 0; i < n && i < static_cast<int>(c.labels.size()); i += every) {
            float xm = fr.pa.x + slot * (i + 0.5f);
            float w = text_w(sf, c.labels[i]);
            dl->AddLine(ImVec2(xm, fr.pb.y), ImVec2(xm, fr.pb.y + 3), pal.axis);
            draw_text(dl, sf, ImVec2(xm - w * 0.5f, fr.pb.y + 4), pal.text_dim, c.labels[i]);
        }
    }
    if (!c.x_title.empty()) {
        float w = text_w(sf, c.x_title);
        draw_text(dl, sf, ImVec2((fr.pa.x + fr.pb.x - w) * 0.5f, fr.b.y - lh - 2), pal.text_dim, c.x_title);
    }
    hover.index = hov;
    ImGui::PopID();
    return hover;
}

// ---------------------------------------------------------------------------------------------- lines
Hover line_chart(const LineChart& c, ImVec2 size, const Palette& pal, const Fonts& fonts) {
    Hover hover;
    ImGui::PushID(c.id);
    ImVec2 a = ImGui::GetCursorScreenPos();
    size.x = std::max(size.x, 80.0f);
    size.y = std::max(size.y, 60.0f);
    ImGui::InvisibleButton("plot", size);
    const bool hovered = ImGui::IsItemHovered();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    ImFont* sf = fonts.small;
    const float lh = sf->FontSize;

    double xmin = 1e300, xmax = -1e300, ymax = 0;
    for (const Series& s : c.series)
        for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
            double x = c.log2_x ? std::log2(std::max(s.x[i], 1e-300)) : s.x[i];
            xmin = std::min(xmin, x);
            xmax = std::max(xmax, x);
            ymax = std::max(ymax, s.y[i]);
        }
    if (xmin > xmax) {
        ImGui::PopID();
        return hover;
    }
    if (xmax == xmin) {
        xmin -= 0.5;
        xmax += 0.5;
    }
    if (ymax <= 0) ymax = 1;
    const int target = std::max(2, static_cast<int>(size.y / (lh * 3.0f)));
    std::vector<double> yt = nice_ticks(0, ymax * 1.1, target);
    double ytop = std::max(yt.back(), ymax * 1.1);

    // Legend height: one row of entries.
    Frame fr;
    fr.a = a;
    fr.b = ImVec2(a.x + size.x, a.y + size.y);
    fr.pa = ImVec2(a.x + widest_tick(yt, c.y_format, sf) + 10, a.y + lh * 2.8f);
    fr.pb = ImVec2(fr.b.x - 12, fr.b.y - lh * (c.x_title.empty() ? 1.6f : 2.9f));
    if (fr.pb.y - fr.pa.y < 10 || fr.pb.x - fr.pa.x < 10) {
        ImGui::PopID();
        return hover;
    }
    const float pw = fr.pb.x - fr.pa.x, ph = fr.pb.y - fr.pa.y;
    auto xpix = [&](double x) {
        double v = c.log2_x ? std::log2(std::max(x, 1e-300)) : x;
        return fr.pa.x + static_cast<float>((v - xmin) / (xmax - xmin)) * pw;
    };
    auto ypix = [&](double y) { return fr.pb.y - static_cast<float>(y / ytop) * ph; };
    y_axis(dl, fr, ytop, yt, c.y_format, pal, fonts);
    y_title(dl, fr, c.y_title, pal, fonts);

    // X ticks: at the data points of the first series when few, else nice ticks.
    std::vector<double> xt;
    if (!c.series.empty() && c.series[0].x.size() <= 12) {
        xt = c.series[0].x;
    } else if (!c.log2_x) {
        xt = nice_ticks(xmin, xmax, std::max(2, static_cast<int>(pw / 90)));
    } else {
        for (double e = std::ceil(xmin); e <= xmax; e += 1) xt.push_back(std::pow(2.0, e));
    }
    float last_right = -1e9f;
    for (double x : xt) {
        float px = xpix(x);
        std::string s = c.x_format ? c.x_format(x) : fmt_si(x);
        float w = text_w(sf, s);
        if (px - w * 0.5f < last_right + 6) continue;
        dl->AddLine(ImVec2(px, fr.pb.y), ImVec2(px, fr.pb.y + 3), pal.axis);
        draw_text(dl, sf, ImVec2(px - w * 0.5f, fr.pb.y + 4), pal.text_dim, s);
        last_right = px + w * 0.5f;
    }
    if (c.has_marker) {
        float px = xpix(c.marker_x);
        dashed_line(dl, ImVec2(px, fr.pa.y), ImVec2(px, fr.pb.y), pal.text_dim, 1.0f);
    }

    ImVec2 mouse = ImGui::GetIO().MousePos;
    float best = 14.0f * 14.0f;
    for (std::size_t si = 0; si < c.series.size(); ++si) {
        const Series& s = c.series[si];
        const std::size_t n = std::min(s.x.size(), s.y.size());
        for (std::size_t i = 0; i + 1 < n; ++i) {
            ImVec2 p0(xpix(s.x[i]), ypix(s.y[i])), p1(xpix(s.x[i + 1]), ypix(s.y[i + 1]));
            if (s.dashed) {
                dashed_line(dl, p0, p1, s.color, 2.0f);
            } else {
                dl->AddLine(p0, p1, s.color, 2.0f);
            }
        }
        for (std::size_t i = 0; i < n; ++i) {
            ImVec2 p(xpix(s.x[i]), ypix(s.y[i]));
            dl->AddCircleFilled(p, 3.5f, s.color);
            float dx = p.x - mouse.x, dy = p.y - mouse.y;
            if (hovered && dx * dx + dy * dy < best) {
                best = dx * dx + dy * dy;
                hover.index = static_cast<int>(i);
                hover.index2 = static_cast<int>(si);
            }
        }
    }
    if (hover.index >= 0) {
        const Series& s = c.series[hover.index2];
        dl->AddCircle(ImVec2(xpix(s.x[hover.index]), ypix(s.y[hover.index])), 7, pal.text, 0, 2);
    }
    // Legend along the top.
    float lx = fr.pa.x;
    const float ly = a.y + lh * 1.3f;
    for (const Series& s : c.series) {
        float w = text_w(sf, s.name);
        if (lx + w + 24 > fr.b.x) break;
        dl->AddLine(ImVec2(lx, ly + lh * 0.5f), ImVec2(lx + 14, ly + lh * 0.5f), s.color, 3);
        draw_text(dl, sf, ImVec2(lx + 18, ly), pal.text, s.name);
        lx += w + 34;
    }
    if (!c.x_title.empty()) {
        float w = text_w(sf, c.x_title);
        draw_text(dl, sf, ImVec2((fr.pa.x + fr.pb.x - w) * 0.5f, fr.b.y - lh - 2), pal.text_dim, c.x_title);
    }
    ImGui::PopID();
    return hover;
}

// ---------------------------------------------------------------------------------------------- heatmap
ImU32 ramp(float t) {
    // Viridis at nine stops.
    static const float k[9][3] = {{0.267f, 0.005f, 0.329f}, {0.283f, 0.141f, 0.458f}, {0.254f, 0.265f, 0.530f},
                                  {0.207f, 0.372f, 0.553f}, {0.164f, 0.471f, 0.558f}, {0.128f, 0.567f, 0.551f},
                                  {0.135f, 0.659f, 0.518f}, {0.478f, 0.821f, 0.318f}, {0.993f, 0.906f, 0.144f}};
    t = std::clamp(t, 0.0f, 1.0f) * 8.0f;
    int i = std::min(7, static_cast<int>(t));
    float f = t - i;
    float r = k[i][0] + (k[i + 1][0] - k[i][0]) * f, g = k[i][1] + (k[i + 1][1] - k[i][1]) * f,
          b = k[i][2] + (k[i + 1][2] - k[i][2]) * f;
    return IM_COL32(static_cast<int>(r * 255), static_cast<int>(g * 255), static_cast<int>(b * 255), 255);
}

Hover heatmap(const Heatmap& h, ImVec2 size, const Palette& pal, const Fonts& fonts) {
    Hover hover;
    ImGui::PushID(h.id);
    ImVec2 a = ImGui::GetCursorScreenPos();
    size.x = std::max(size.x, 120.0f);
    size.y = std::max(size.y, 80.0f);
    ImGui::InvisibleButton("plot", size);
    const bool hovered = ImGui::IsItemHovered();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    ImFont* sf = fonts.small;
    const float lh = sf->FontSize;
    if (h.rows <= 0 || h.cols <= 0 || static_cast<int>(h.values.size()) < h.rows * h.cols) {
        ImGui::PopID();
        return hover;
    }
    double vmax = 0;
    for (double v : h.values) vmax = std::max(vmax, v);
    if (vmax <= 0) vmax = 1;
    Format fmt = h.format ? h.format : Format(fmt_si);

    float label_w = 0;
    for (const auto& s : h.row_labels) label_w = std::max(label_w, text_w(sf, s));
    const float legend_w = 18 + 8 + text_w(sf, fmt(vmax)) + 10;
    // Rows of text above the grid: the titles, then the column labels.
    ImVec2 pa(a.x + label_w + 10, a.y + lh * 2.4f);
    ImVec2 pb(a.x + size.x - legend_w - 10, a.y + size.y - 4);
    float cell = std::min((pb.x - pa.x) / h.cols, (pb.y - pa.y) / h.rows);
    if (cell < 2) {
        ImGui::PopID();
        return hover;
    }
    pb = ImVec2(pa.x + cell * h.cols, pa.y + cell * h.rows);

    ImVec2 mouse = ImGui::GetIO().MousePos;
    if (hovered && mouse.x >= pa.x && mouse.x < pb.x && mouse.y >= pa.y && mouse.y < pb.y) {
        hover.index = static_cast<int>((mouse.y - pa.y) / cell);
        hover.index2 = static_cast<int>((mouse.x - pa.x) / cell);
    }
    const bool labels = cell > text_w(sf, fmt(vmax)) + 6 && cell > lh * 1.5f;
    for (int r = 0; r < h.rows; ++r)
        for (int c = 0; c < h.cols; ++c) {
            double v = h.values[static_cast<std::size_t>(r) * h.cols + c];
            float t = static_cast<float>(v / vmax);
            ImVec2 p0(pa.x + c * cell, pa.y + r * cell), p1(p0.x + cell, p0.y + cell);
            dl->AddRectFilled(p0, p1, v > 0 ? ramp(t) : pal.band);
            dl->AddRect(p0, p1, pal.panel);
            if (labels) {
                std::string s = fmt(v);
                ImVec2 ts(text_w(sf, s), lh);
                draw_text(dl, sf, ImVec2(p0.x + (cell - ts.x) * 0.5f, p0.y + (cell - ts.y) * 0.5f),
                          t > 0.6f ? IM_COL32(0, 0, 0, 255) : IM_COL32(255, 255, 255, 255), s);
            }
        }
    if (hover.index >= 0) {
        ImVec2 p0(pa.x + hover.index2 * cell, pa.y + hover.index * cell);
        dl->AddRect(p0, ImVec2(p0.x + cell, p0.y + cell), pal.text, 0, 0, 2.5f);
    }
    // Row labels on the left, column labels on top, titles.
    int every_r = std::max(1, static_cast<int>(std::ceil(lh * 1.1f / cell)));
    for (int r = 0; r < h.rows && r < static_cast<int>(h.row_labels.size()); r += every_r) {
        float w = text_w(sf, h.row_labels[r]);
        draw_text(dl, sf, ImVec2(pa.x - w - 6, pa.y + r * cell + (cell - lh) * 0.5f), pal.text_dim, h.row_labels[r]);
    }
    float col_w = 0;
    for (const auto& s : h.col_labels) col_w = std::max(col_w, text_w(sf, s));
    int every_c = std::max(1, static_cast<int>(std::ceil((col_w + 6) / cell)));
    for (int c = 0; c < h.cols && c < static_cast<int>(h.col_labels.size()); c += every_c) {
        float w = text_w(sf, h.col_labels[c]);
        draw_text(dl, sf, ImVec2(pa.x + c * cell + (cell - w) * 0.5f, pa.y - lh - 3), pal.text_dim, h.col_labels[c]);
    }
    // Row 0: "row title · column title" on the left, the legend title on the right.
    std::string titles = h.row_title;
    if (!h.col_title.empty()) titles += (titles.empty() ? "" : "   ") + h.col_title;
    if (!titles.empty()) draw_text(dl, sf, ImVec2(a.x, a.y), pal.text_dim, titles);
    // Legend: a vertical ramp with ticks.
    ImVec2 la(pb.x + 14, pa.y), lb(pb.x + 32, pb.y);
    const int steps = 32;
    for (int i = 0; i < steps; ++i) {
        float y0 = lb.y - (lb.y - la.y) * i / steps, y1 = lb.y - (lb.y - la.y) * (i + 1) / steps;
        dl->AddRectFilled(ImVec2(la.x, y1), ImVec2(lb.x, y0), ramp((i + 0.5f) / steps));
    }
    dl->AddRect(la, lb, pal.axis);
    for (double t : nice_ticks(0, vmax, std::max(2, static_cast<int>((lb.y - la.y) / (lh * 2.2f))))) {
        float y = lb.y - static_cast<float>(t / vmax) * (lb.y - la.y);
        dl->AddLine(ImVec2(lb.x, y), ImVec2(lb.x + 4, y), pal.axis);
        draw_text(dl, sf, ImVec2(lb.x + 6, y - lh * 0.5f), pal.text_dim, fmt(t));
    }
    if (!h.legend_title.empty()) {
        float w = text_w(sf, h.legend_title);
        // Under the titles when they leave no room beside them.
        const float titles_w = text_w(sf, titles) + 12;
        const float x = std::min(la.x, a.x + size.x - w);
        draw_text(dl, sf, ImVec2(x, x > a.x + titles_w ? a.y : a.y + lh * 1.1f), pal.text_dim, h.legend_title);
    }
    ImGui::PopID();
    return hover;
}

}  // namespace moelab_gui::charts
