// The app's plain data: AppState (the scenario being edited, the results the views draw, run status) and
// ViewState (open flags, zoom, selection, look). Views read AppState and a Result; they write only ViewState.
#pragma once
#include <imgui.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "app/gui/charts.hpp"
#include "app/gui/runner.hpp"
#include "app/gui/theme.hpp"
#include "demos/engine.hpp"

namespace moelab_gui {

// One point of the dispatch sweep: the swept value and the dispatch demo's result there.
struct SweepPoint {
    double x = 0;
    demos::Result result;
};

// What the views draw: the newest result of each kind. Each came from one scenario (Result::scenario).
struct ResultSet {
    std::optional<demos::Result> routing;   // loads and communication (cheap, arrives first)
    std::optional<demos::Result> pipeline;  // MegaScale-Infer ping-pong model (and measurement where there is one)
    std::optional<demos::Result> dispatch;  // packing strategies side by side
    std::optional<demos::Result> layer;     // the whole layer: stage times and its measured timeline
    std::vector<SweepPoint> sweep;          // dispatch strategies over skew or tokens
    std::string sweep_axis;                 // "skew" | "tokens"
    std::uint64_t generation = 0;           // of the newest result in here
    bool layer_current = false;             // `layer` was computed for the same scenario as `routing`

    // The result to show loads and communication from: the layer run when it is current, else routing.
    const demos::Result* loads() const;
};

struct RunError {
    bool present = false;
    moe::ErrorKind kind = moe::ErrorKind::Runtime;
    std::string message;
    std::string job;    // which run failed (routing, layer, ...)
    std::string param;  // the control it belongs to ("backend", "tokens", ...), "" for the top of the panel
};

struct AppState {
    demos::Scenario scenario;          // as set in the controls
    std::vector<std::string> invalid;  // scenario.validate(): each message starts with the parameter name
    std::string preset;                // name of the preset last applied, "" once edited
    ResultSet results;
    RunError error;
    RunnerStatus status;
    bool stale = false;             // results are from an older scenario (a run is pending or it is invalid)
    std::string backend_resolved;   // cpu | cuda
    std::string backend_why;        // why auto fell back, when it did
    std::vector<std::string> gpus;  // names of usable GPUs
    std::string gpu_unavailable;    // why there are none
    std::string scenario_path;      // last saved or loaded TOML
    std::string toast;              // a short status line ("Saved …")
    double toast_until = 0;
};

// Rectangles of named widgets from the last frame, for scripted input and tests (1.86 has no test engine).
struct Probe {
    std::map<std::string, ImVec4> anchors;      // name → (x0, y0, x1, y1)
    std::map<std::string, std::string> errors;  // control → the error text drawn next to it this frame
    std::map<std::string, ImVec4> windows;      // view id → window rectangle
};

enum class ViewId { Controls, Device, Loads, Comm, Dispatch, Timeline, Help, Lesson, Count };

struct ViewState {
    // Open flags, one per view (imgui_demo's way).
    bool show_controls = true, show_device = true, show_loads = true, show_comm = true, show_dispatch = true,
         show_timeline = true, show_help = false, show_lesson = false;
    bool* open_flag(ViewId id);
    bool is_open(ViewId id) const { return *const_cast<ViewState*>(this)->open_flag(id); }

    // Look.
    Look look;
    Palette pal;
    Fonts fonts;
    bool presenter = false;
    bool fonts_dirty = true;  // rebuild the atlas before the next frame
    float dpi_scale = 1.0f;
    float user_scale = 1.0f;
    bool relayout = true;  // place the windows in the default tiling on the next frame
    std::string solo;      // a view key: that view alone fills the window

    // Loads.
    bool loads_show_demand = true;  // stack dropped tokens on the kept ones
    // Communication.
    bool comm_show_rows = false;  // heatmap in rows instead of bytes
    bool comm_dedup = false;      // heatmap of the deduplicated traffic
    // Dispatch sweep.
    int sweep_axis = 0;  // 0 skew strength, 1 tokens
    bool sweep_on = true;
    // Timeline.
    charts::LaneView timeline_view;
    charts::LaneView stages_view;
    bool timeline_show_model = true, timeline_show_measured = true, timeline_per_rank = false;
    int timeline_source = 0;  // 0 pipeline (model + measurement), 1 measured layer stages

    bool run_full_layer = true;  // re-run the whole layer (expert FFNs too) after every edit
    bool request_rerun = false;  // intents from buttons, carried out by the app after the frame
    bool request_cancel = false;
    bool request_full_layer = false;  // run the whole layer now, even where it is too slow to re-run on edits
    bool request_save_png = false;    // of the focused view
    bool request_export = false;      // the current Result as JSON and CSV
    bool request_save_scenario = false;
    bool request_open_scenario = false;
    bool request_quit = false;
    std::string focused;    // id of the view that had focus last ("loads", …) for "Save PNG"
    mutable Probe probe;    // instrumentation: views that only read ViewState still record anchors
    bool snapshot = false;  // drawing for `moelab snapshot`: no menus, no popups
};

// Called right after a view's Begin(): notes focus (for Save PNG) and the window rectangle (for scripts).
void view_begun(ViewState& vs, const char* key);
// Expert FLOPs of one layer, 2·T·k·(2F·d + d·F), and the most the CPU reference re-runs on every edit (a few
// seconds on two cores); bigger layers run when asked.
double layer_flops(const demos::Scenario& s);
constexpr double kCpuLayerFlops = 3e11;

// Records the last item's rectangle under `name` for scripts and tests.
void anchor(const ViewState& vs, const std::string& name);
// Draws `msg` (if any) in the error colour under the last control and records it for tests.
void error_under(ViewState& vs, const std::string& param, const std::vector<std::string>& msgs);

// ---- the views, one file each --------------------------------------------------------------------------------
// Controls edit a copy of the scenario; the app compares it after the frame and submits a run when it changed.
// Both return true when the user changed something in `edit` this frame.
bool show_controls(const AppState& app, ViewState& vs, demos::Scenario* edit, std::string* preset_applied,
                   bool* p_open);
void show_device(const AppState& app, ViewState& vs, bool* p_open);
void show_loads(const AppState& app, ViewState& vs, bool* p_open);
void show_comm(const AppState& app, ViewState& vs, bool* p_open);
void show_dispatch(const AppState& app, ViewState& vs, bool* p_open);
void show_timeline(const AppState& app, ViewState& vs, bool* p_open);
void show_help(const AppState& app, ViewState& vs, bool* p_open);
void draw_help(const AppState& app, ViewState& vs);

// The bodies, drawn inside an already-begun window (snapshots draw them full-screen).
bool draw_controls(const AppState& app, ViewState& vs, demos::Scenario* edit, std::string* preset_applied);
void draw_device(const AppState& app, ViewState& vs);
void draw_loads(const AppState& app, ViewState& vs);
void draw_comm(const AppState& app, ViewState& vs);
void draw_dispatch(const AppState& app, ViewState& vs);
void draw_timeline(const AppState& app, ViewState& vs);

// Registry: id, window title, and how to show it. The lesson player registers itself here when it lands.
struct ViewInfo {
    ViewId id;
    const char* key;    // "loads": for --view, Save PNG file names and scripts
    const char* title;  // window title (stable: imgui.ini keys on it)
    const char* shortcut;
};
const std::vector<ViewInfo>& view_registry();
const ViewInfo* find_view(const std::string& key);

// Shared text for stale / missing results.
void no_result_note(const AppState& app, const ViewState& vs, const char* what);
// "Computed for T=…, E=…" line with provenance badge(s).
void result_header(const demos::Result& r, const ViewState& vs);

}  // namespace moelab_gui
