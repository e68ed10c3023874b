// The built-in scripts: tour (every view by mouse and keyboard), invalid-topk (errors shown under their controls,
// the app survives), perf (frame times per view while runs are in progress). Data, not code.
#include "app/gui/script.hpp"

namespace moelab_gui {
namespace {

const char* kTour = R"(# Drives every view with the mouse and keyboard.
full_layer off
wait_idle 3000
expect_result routing
expect_anchor loads_chart
key G
wait_idle 3000
expect_scenario ranks 2
expect_anchor comm_heatmap
move loads_chart@0.12,0.6
wait 2
move loads_chart@0.55,0.7
wait 2
move straggler
wait 2
click loads_show_demand
wait 2
click loads_show_demand
move comm_heatmap@0.35,0.55
wait 2
click comm_rows
wait 2
click comm_rows
move timeline_lanes@0.4,0.5
wait 2
wheel timeline_lanes@0.5,0.5 3
wait 2
drag timeline_lanes@0.5,0.5 -120 0
wait 2
move timeline_lanes@0.3,0.45
wait 2
dblclick timeline_lanes@0.5,0.5
wait 2
click timeline_model
wait 2
click timeline_model
wait_idle 3000
expect_result dispatch
move dispatch_bars@0.3,0.7
wait 2
click sweep_tokens
wait_idle 3000
expect_result sweep
move dispatch_sweep@0.5,0.5
wait 2
click sweep_skew
drag top_k@0.1,0.5 40 0
wait_idle 3000
key S
wait 2
key S shift
key M
wait_idle 3000
expect_scenario micro_batches 5
click menu:View
wait 2
click menu:View/comm
wait 2
expect_no_anchor comm_heatmap
key 2 alt
wait 2
expect_anchor comm_heatmap
click menu:Options
wait 2
click menu:Options/high-contrast
wait 3
click menu:Options
wait 2
click menu:Options/dark
wait 2
key F5
wait 3
expect_anchor loads_chart
key F5
wait 3
key F1
wait 2
key F1
save_png loads ${out}/tour-loads.png
export ${out}/tour-result
save_scenario ${out}/tour-scenario.toml
key 1
wait_idle 3000
load_scenario ${out}/tour-scenario.toml
wait_idle 3000
expect_scenario ranks 2
full_layer on
rerun
wait 4
expect_busy
wait_idle 6000
expect_result layer
)";

const char* kInvalidTopk =
    R"(# Types an invalid top-k into the slider and checks the message under it; the app keeps running.
full_layer off
wait_idle 3000
expect_result routing
ctrlclick top_k
type 20
key ENTER
wait 3
expect_scenario top_k 20
expect_error --top-k at most the number of experts
wait 5
expect_anchor loads_chart
ctrlclick top_k
type 2
key ENTER
wait_idle 3000
expect_no_error --top-k
expect_result routing
# A backend this machine lacks: the error goes under the backend control (none on a GPU machine).
wheel win:controls -40
wait 3
click backend
wait 2
click combo:backend/cuda
wait 2
wait_idle 3000
expect_error_or_gpu --backend no usable GPU
click backend
wait 2
click combo:backend/auto
wait_idle 3000
expect_no_error --backend
wheel win:controls 40
wait 3
# Too big for memory: the run refuses before allocating, and says so under tokens.
ctrlclick hidden
type 32768
key ENTER
ctrlclick tokens
type 1048576
key ENTER
wait 2
wait_idle 3000
expect_error --tokens memory
wait 5
expect_anchor loads_chart
)";

// Frame times with a run in progress: every view alone at the window's size, then all of them tiled, while the
// whole layer (expert FFNs included) re-runs in the background.
const char* kPerf = R"(# Frames while runs are in progress, per view (see --report-frame-times).
# A busy scene first: 4 ranks, zipf skew 1.0, capacity factor 1.25 (drops), every view open.
full_layer on
set_view dispatch on
key G
key G
key S
key S
key S
key S
key C
key C
key C
key C
key C
wait_idle 6000
solo loads
wait 3
rerun
mark loads
move loads_chart@0.3,0.6
wait 150
solo comm
wait 3
rerun
mark comm
move comm_heatmap@0.4,0.6
wait 150
solo dispatch
wait 3
rerun
mark dispatch
move dispatch_bars@0.3,0.6
wait 150
solo timeline
wait 3
rerun
mark timeline
move timeline_lanes@0.5,0.5
wheel timeline_lanes@0.5,0.5 1
wait 150
solo controls
wait 3
rerun
mark controls
wait 150
solo off
set_view controls on
set_view device on
set_view loads on
set_view comm on
set_view dispatch on
set_view timeline on
wait 3
rerun
mark all-views
move timeline_lanes@0.5,0.5
wait 150
mark idle
wait_idle 6000
wait 100
)";

}  // namespace

const char* Script::builtin(const std::string& name) {
    if (name == "tour") return kTour;
    if (name == "invalid-topk") return kInvalidTopk;
    if (name == "perf") return kPerf;
    return nullptr;
}

}  // namespace moelab_gui
