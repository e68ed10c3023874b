// Summaries of the recorded frames: all frames, frames with a run in progress, and each scripted mark (one view
// alone, all views, idle). Frame 0 is left out: it compiles shaders and uploads the font atlas.
#include "app/gui/frame_stats.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "app/gui/prefs.hpp"

namespace moelab_gui {
namespace {

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    std::size_t i = static_cast<std::size_t>(q * (v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

struct Summary {
    std::string name;
    std::size_t n = 0, busy_n = 0;
    double median = 0, p95 = 0, busy_median = 0, busy_p95 = 0, ui = 0, gl = 0;
    int vertices = 0;
};

Summary summarize(const std::vector<const FrameSample*>& fr, const std::string& name) {
    Summary s;
    s.name = name;
    std::vector<double> all, busy, ui, gl, verts;
    for (const FrameSample* f : fr) {
        all.push_back(f->ms);
        ui.push_back(f->ui_ms);
        gl.push_back(f->gl_ms);
        verts.push_back(f->vertices);
        if (f->busy) busy.push_back(f->ms);
    }
    s.vertices = static_cast<int>(percentile(verts, 0.5));
    s.n = all.size();
    s.busy_n = busy.size();
    s.median = percentile(all, 0.5);
    s.p95 = percentile(all, 0.95);
    s.busy_median = percentile(busy, 0.5);
    s.busy_p95 = percentile(busy, 0.95);
    s.ui = percentile(ui, 0.5);
    s.gl = percentile(gl, 0.5);
    return s;
}

}  // namespace

double seconds_since_exec() {
    std::ifstream stat("/proc/self/stat"), up("/proc/uptime");
    std::string s;
    std::getline(stat, s);
    auto rp = s.rfind(')');
    if (rp == std::string::npos) return -1;
    std::istringstream in(s.substr(rp + 2));
    std::string field;
    unsigned long long start = 0;
    for (int i = 3; i <= 22 && in >> field; ++i)
        if (i == 22) start = std::strtoull(field.c_str(), nullptr, 10);
    double uptime = 0;
    if (!(up >> uptime) || start == 0) return -1;
    return uptime - static_cast<double>(start) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void FrameStats::report(const std::string& json_path) const {
    std::vector<Summary> rows;
    std::vector<const FrameSample*> all;
    std::vector<std::string> marks;
    for (std::size_t i = 1; i < frames.size(); ++i) {
        all.push_back(&frames[i]);
        if (!frames[i].mark.empty() && std::find(marks.begin(), marks.end(), frames[i].mark) == marks.end())
            marks.push_back(frames[i].mark);
    }
    rows.push_back(summarize(all, "all frames"));
    for (const std::string& m : marks) {
        std::vector<const FrameSample*> sel;
        for (const FrameSample* f : all)
            if (f->mark == m) sel.push_back(f);
        rows.push_back(summarize(sel, m));
    }
    std::fprintf(stderr, "moelab frame times at %d×%d, %s\n", width, height, renderer.c_str());
    std::fprintf(stderr, "  %-12s %7s %9s %8s | %6s %11s %9s | %8s %8s %9s\n", "frames", "n", "median", "p95", "busy",
                 "busy median", "busy p95", "ui", "render", "vertices");
    for (const Summary& s : rows)
        std::fprintf(stderr, "  %-12s %7zu %6.2f ms %5.2f ms | %6zu %8.2f ms %6.2f ms | %5.2f ms %5.2f ms %9d\n",
                     s.name.c_str(), s.n, s.median, s.p95, s.busy_n, s.busy_median, s.busy_p95, s.ui, s.gl, s.vertices);
    std::fprintf(stderr, "  startup to first frame: %.0f ms since exec, %.0f ms since the window code started\n",
                 startup_exec_ms, startup_enter_ms);
    const double e2r_median = percentile(edit_to_result_ms, 0.5), e2r_p95 = percentile(edit_to_result_ms, 0.95);
    if (edit_to_result_ms.empty())
        std::fprintf(stderr, "  edit to result: no edits\n");
    else
        std::fprintf(stderr, "  edit to result: median %.1f ms, p95 %.1f ms over %zu edits\n", e2r_median, e2r_p95,
                     edit_to_result_ms.size());
    if (json_path.empty()) return;
    std::ostringstream j;
    j << "{\n  \"width\": " << width << ", \"height\": " << height << ", \"renderer\": \"" << renderer << "\",\n"
      << "  \"startup_exec_ms\": " << startup_exec_ms << ", \"startup_enter_ms\": " << startup_enter_ms << ",\n"
      << "  \"median_ms\": " << rows[0].median << ", \"p95_ms\": " << rows[0].p95
      << ", \"busy_frames\": " << rows[0].busy_n << ", \"busy_median_ms\": " << rows[0].busy_median
      << ",\n  \"edit_to_result\": {\"count\": " << edit_to_result_ms.size()
      << ", \"median_ms\": " << (edit_to_result_ms.empty() ? -1 : e2r_median)
      << ", \"p95_ms\": " << (edit_to_result_ms.empty() ? -1 : e2r_p95) << "},\n  \"marks\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const Summary& s = rows[i];
        j << (i ? "," : "") << "\n    {\"name\": \"" << s.name << "\", \"frames\": " << s.n
          << ", \"median_ms\": " << s.median << ", \"p95_ms\": " << s.p95 << ", \"busy_frames\": " << s.busy_n
          << ", \"busy_median_ms\": " << s.busy_median << ", \"busy_p95_ms\": " << s.busy_p95 << ", \"ui_ms\": " << s.ui
          << ", \"render_ms\": " << s.gl << ", \"vertices\": " << s.vertices << "}";
    }
    j << "\n  ]\n}\n";
    std::string err;
    if (!write_file_atomic(json_path, j.str(), &err)) std::fprintf(stderr, "moelab: %s\n", err.c_str());
}

}  // namespace moelab_gui
