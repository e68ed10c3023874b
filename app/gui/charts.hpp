// The chart primitives every view draws with: bars with axes, lines, a heatmap with a legend, and timeline lanes
// with zoom, pan and hover. Plain data in, ImDrawList out; each returns what the mouse is over, and the caller
// writes the tooltip. ImGui 1.86 has no plotting widget for any of these.
#pragma once
#include <imgui.h>

#include <functional>
#include <string>
#include <vector>

#include "app/gui/theme.hpp"

namespace moelab_gui::charts {

using Format = std::function<std::string(double)>;

// Ticks at 1, 2, 5 × 10^n covering [lo, hi], about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target);
std::string fmt_si(double v);         // 950, 1.2k, 3.4M, 1.1G
std::string fmt_count(double v);      // 12,345
std::string fmt_bytes(double bytes);  // 512 B, 33.6 MB, 1.07 GB (decimal units, like GB/s)
std::string fmt_ms(double ms);        // 812 µs, 12.3 ms, 1.20 s
std::string fmt_fixed(double v, int digits);

struct HLine {
    double y = 0;
    ImU32 color = 0;
    std::string label;
    bool dashed = false;
    float thickness = 1.5f;
};

struct BarGroup {
    int first = 0, count = 0;
    std::string label;
};

struct BarChart {
    const char* id = "bars";
    std::vector<double> values;
    std::vector<double> overflow;                // stacked above the bar, hatched (dropped tokens); optional
    std::vector<ImU32> colors;                   // per bar; optional (pal.bar)
    std::vector<bool> hatched;                   // per bar: a modelled value, drawn hatched with a dashed outline
    std::vector<double> whisker_lo, whisker_hi;  // min .. p95 per bar; optional
    std::vector<std::string> labels;             // x tick label per bar; thinned to fit
    std::vector<std::string> value_labels;       // text above each bar; optional
    std::vector<HLine> hlines;
    std::vector<BarGroup> groups;  // shaded bands with a title, e.g. one per rank
    std::string x_title, y_title;
    Format y_format;     // tick labels (fmt_si by default)
    double y_max = 0;    // 0: from the data
    int highlight = -1;  // outlined and labelled
    std::string highlight_label;
    ImU32 overflow_color = 0;
};

struct Hover {
    int index = -1;   // bar, series point, span or cell row
    int index2 = -1;  // series, or cell column
    bool overflow = false;
};

Hover bar_chart(const BarChart& c, ImVec2 size, const Palette& pal, const Fonts& fonts);

struct Series {
    std::string name;
    ImU32 color = 0;
    std::vector<double> x, y;
    bool dashed = false;
};

struct LineChart {
    const char* id = "lines";
    std::vector<Series> series;
    std::string x_title, y_title;
    bool log2_x = false;
    Format x_format, y_format;
    double marker_x = 0;  // a vertical marker (the current scenario), when has_marker
    bool has_marker = false;
};

Hover line_chart(const LineChart& c, ImVec2 size, const Palette& pal, const Fonts& fonts);

struct Heatmap {
    const char* id = "heat";
    int rows = 0, cols = 0;
    std::vector<double> values;  // row-major [rows, cols]
    std::vector<std::string> row_labels, col_labels;
    std::string row_title, col_title, legend_title;
    Format format;  // cell and legend labels
};

// Viridis-like ramp: perceptually even and readable with colour-blindness.
ImU32 ramp(float t);
Hover heatmap(const Heatmap& h, ImVec2 size, const Palette& pal, const Fonts& fonts);

struct LaneSpan {
    int lane = 0;
    double t0 = 0, t1 = 0;
    ImU32 color = 0;
    bool ghost = false;  // modelled: translucent, hatched, dashed outline
    int id = -1;         // the caller's index, returned on hover
    std::string label;   // drawn inside when it fits
};

struct Lanes {
    const char* id = "lanes";
    std::vector<std::string> lane_names;
    std::vector<bool> lane_ghost;  // lane holds only modelled spans: its name is drawn in italics-like dim colour
    std::vector<LaneSpan> spans;
    std::string unit = "ms";
};

struct LaneView {
    double t0 = 0, t1 = 1;
    bool fit = true;  // refit to the data on the next draw
};

// Wheel zooms around the mouse, drag pans, double-click fits. Spans under two pixels merge into a zig-zag.
Hover lanes(const Lanes& l, LaneView* view, ImVec2 size, const Palette& pal, const Fonts& fonts);

// Small drawing helpers shared by the views.
void dashed_line(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 col, float thickness, float dash = 6, float gap = 4);
void hatch_rect(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 col, float spacing = 6, float thickness = 1);
void dashed_rect(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 col, float thickness = 1);

}  // namespace moelab_gui::charts
