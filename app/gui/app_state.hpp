// The view contract. A view is show_x(const Session&, ViewState&, Commands&, bool* open): it reads the Session,
// keeps its toggles, zoom and selection in ViewState, and asks for changes by queuing Commands. Fonts and palette
// are the look resource (theme.hpp: skin()); anchors for scripts go to the test probe (testing/probe.hpp).
// One table of views drives the window, the View menu and `moelab snapshot`.
#pragma once
#include <imgui.h>

#include <cstdint>
#include <string>
#include <vector>

#include "app/gui/charts.hpp"
#include "app/gui/commands.hpp"
#include "app/gui/session.hpp"
#include "app/gui/testing/probe.hpp"
#include "app/gui/theme.hpp"
#include "demos/params.hpp"

namespace moelab_gui {

enum class ViewId { Controls, Device, Loads, Comm, Dispatch, Timeline, Help, Lesson, Roofline, Count };

// The lesson view's draft: the prediction being made, before it is committed.
struct LessonDraft {
    std::uint64_t round = ~std::uint64_t{0};  // the session's lesson round this draft belongs to
    demos::LessonAnswer answer;               // filled as the input becomes valid
    bool answer_valid = false;
    std::string answer_error;
    int choice = -1;
    float slider = 0;
    double marker = -1;  // timeline: the marked time, ms
    std::vector<float> bars;
    char text[512] = {};
    std::vector<int> votes;         // presenter mode: the class's first vote, typed in by the instructor
    char guesses[1024] = {};        // other kinds: the class's answers, comma-separated
    float class_confidence = 0;     // the class's confidence with the first vote, 1..5 (0: not given yet)
    std::vector<int> votes2;        // the second vote, after discussion
    char guesses2[1024] = {};
    bool presenter_layout = false;  // the layout last placed (presenter mode fills the screen)
    bool curtain = false;           // the last frame drew the curtain over the other views
};

struct ViewState {
    // Open flags, one per view (imgui_demo's way).
    bool show_controls = true, show_device = true, show_loads = true, show_comm = true, show_dispatch = true,
         show_timeline = true, show_help = false, show_lesson = false;
    bool show_roofline = false;  // the expert FFN's roofline (opened from the dispatch view)
    bool* open_flag(ViewId id);
    bool is_open(ViewId id) const { return *const_cast<ViewState*>(this)->open_flag(id); }

    // The look the user chose (the skin is built from it) and the layout.
    Look look;
    float user_scale = 1.0f;
    bool presenter = false;
    int presenter_page = 0;  // presenter mode shows one or two views at a time; PgUp/PgDn switch
    bool relayout = true;    // place the windows in the default tiling on the next frame
    std::string solo;        // a view key: that view alone fills the window

    // Loads.
    bool loads_show_demand = true;  // stack dropped tokens on the kept ones
    bool loads_expert_times = false;  // overlay each expert's FFN time alone (a background job times them)
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
    // Lessons.
    LessonDraft lesson;

    bool run_full_layer = true;  // re-run the whole layer (expert FFNs too) after every edit
    std::string focused;         // key of the view that had focus last ("loads", …) for "Save PNG"
    bool snapshot = false;       // drawing for `moelab snapshot`: no menus, no popups
};

// The runs the open views need.
RunPlan run_plan(const ViewState& vs);

// ---- the views, one file each --------------------------------------------------------------------------------
void show_controls(const Session& s, ViewState& vs, Commands& cmd, bool* p_open);
void show_device(const Session& s, ViewState& vs, Commands& cmd, bool* p_open);
void show_loads(const Session& s, ViewState& vs, Commands& cmd, bool* p_open);
void show_comm(const Session& s, ViewState& vs, Commands& cmd, bool* p_open);
void show_dispatch(const Session& s, ViewState& vs, Commands& cmd, bool* p_open);
void show_timeline(const Session& s, ViewState& vs, Commands& cmd, bool* p_open);
void show_help(const Session& s, ViewState& vs, Commands& cmd, bool* p_open);
void show_lesson(const Session& s, ViewState& vs, Commands& cmd, bool* p_open);  // view_lesson.cpp
void show_roofline(const Session& s, ViewState& vs, Commands& cmd, bool* p_open);  // view_roofline.cpp

// The range a control offers for a numeric parameter: the one validation enforces for this scenario (the table's
// range, narrowed where it depends on another field, as top-k's on the experts).
std::pair<double, double> control_range(const demos::ParamInfo& p, const demos::Scenario& s);

// The table of views: id, key, window title and how to show it.
enum class Placement { Tiled, Centered, Own };  // own: the view places itself (the lesson)
using ShowFn = void (*)(const Session&, ViewState&, Commands&, bool*);
struct ViewInfo {
    ViewId id;
    const char* key;    // "loads": for --view, Save PNG file names and scripts
    const char* title;  // window title (stable: imgui.ini keys on it)
    const char* shortcut;
    ShowFn show;
    Placement placement;
    bool snapshot;  // `moelab snapshot --view KEY` draws it
};
const std::vector<ViewInfo>& view_registry();
const ViewInfo* find_view(const std::string& key);
const ViewInfo& view_info(ViewId id);

// Begin() for a view's window with its title from the table; notes focus and its rectangle. End() as usual.
bool begin_view(ViewState& vs, ViewId id, bool* p_open, ImGuiWindowFlags flags = 0);

// Records the last item's rectangle under `name` for scripts and tests.
void anchor(const std::string& name);
// Draws the messages about `param` (if any) in the error colour under the last control and records them.
void error_under(const std::string& param, const std::vector<std::string>& msgs);
// Shared text for stale / missing results.
void no_result_note(const Session& s, const char* what);
// "T=…, E=…" line of what a result was computed for.
void result_header(const demos::Result& r);

}  // namespace moelab_gui
