// The desktop app's entry points for the CLI: open the window, or render one view to a PNG with no window.
// Only this header is seen by app/cli; everything else in app/gui is the app's own business.
#pragma once
#include <string>

#include "demos/scenario.hpp"

namespace moelab_gui {

struct WindowOptions {
    int frames = 0;              // render this many frames, then exit 0 (0 = until the window closes)
    std::string screenshot;      // PNG of the whole window after the last frame
    std::string script;          // scripted input: a file, or "builtin:NAME" (tour, invalid-topk, perf)
    bool presenter = false;      // start in presenter mode
    std::string scenario_path;   // TOML scenario to start from
    std::string preset;          // preset name to start from
    bool have_scenario = false;  // `scenario` below is set (from CLI flags)
    demos::Scenario scenario;
    bool report_frame_times = false;  // print frame-time statistics at exit
    std::string report_json;          // and write them as JSON here
    int width = 1280, height = 800;   // initial window size in screen coordinates
    std::string config_dir;           // where imgui.ini and prefs.toml live ("" = ~/.config/moelab)
    bool vsync = true;
    std::string roofline;  // a saved sweep (moelab bench experts --sweep --save) for the roofline panel
};

// True when a window can be opened here; otherwise `why` says what is missing (no DISPLAY, GLFW failed, ...).
bool display_available(std::string* why);

// Opens the window and runs the main loop. Returns the process exit code.
int run_window(const WindowOptions& opt);

struct SnapshotOptions {
    std::string view = "overview";   // loads | comm | dispatch | timeline | device | controls | overview
    std::string out;                 // PNG path
    int width = 1280, height = 800;  // pixels
    float scale = 1.0f;              // UI scale (fonts are rebuilt at this size)
    bool presenter = false;
    bool light = false;       // light theme instead of dark
    bool full_layer = false;  // also run the whole layer (expert FFNs) for measured stage times
    demos::Scenario scenario;
    bool quiet = false;
    std::string result;  // draw this saved Result (moelab run ... --json) instead of running the scenario
    std::string roofline;  // a saved sweep (moelab bench experts --sweep --save) for the roofline view
};

// Names accepted by SnapshotOptions::view.
const char* snapshot_view_names();

// Runs the scenario, renders the view through a windowless EGL context into a framebuffer, writes a PNG.
int run_snapshot(const SnapshotOptions& opt);

}  // namespace moelab_gui
