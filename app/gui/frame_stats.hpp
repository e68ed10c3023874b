// Frame-time bookkeeping for --report-frame-times: every frame's wall time split into building the UI and
// rendering, whether a run was in progress, and the script's current mark; medians and p95 per mark at exit,
// and the edit-to-result times (from an edit to the frame that first shows its loads).
#pragma once
#include <string>
#include <vector>

namespace moelab_gui {

struct FrameSample {
    double ms = 0, ui_ms = 0, gl_ms = 0;
    bool busy = false;  // a background run was in progress
    int vertices = 0;
    std::string mark;  // the script's last `mark`, "" before any
};

struct FrameStats {
    std::vector<FrameSample> frames;
    double startup_exec_ms = -1, startup_enter_ms = -1;
    std::string renderer;
    int width = 0, height = 0;
    std::vector<double> edit_to_result_ms;  // each edit until the frame that first showed its loads

    // Prints the summary to stderr, and writes it as JSON when `json_path` is set.
    void report(const std::string& json_path) const;
};

// Seconds since this process was started, from /proc (10 ms resolution); < 0 when unknown.
double seconds_since_exec();

}  // namespace moelab_gui
