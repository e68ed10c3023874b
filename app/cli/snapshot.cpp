// `moelab snapshot --view loads|comm|dispatch|timeline|overview --out FILE.png [scenario flags]`: runs the
// scenario and renders the app's view to a PNG through EGL, with no window and no X server.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "app/cli/commands.hpp"
#include "app/cli/scenario_flags.hpp"
#include "kernels/common/error.hpp"
#ifdef MOELAB_HAVE_GUI
#include "app/gui/gui.hpp"
#endif

namespace moelab_cli {

demos::Scenario resolve_scenario_with_preset(const ScenarioFlags& f, const std::string& preset);  // gui_command.cpp

namespace {
struct SnapArgs {
    ScenarioFlags flags;
    std::string view = "overview", out, preset;
    int width = 1280, height = 800;
    float scale = 1.0f;
    bool presenter = false, light = false, full_layer = false, quiet = false;
    std::string result, roofline;
};
}  // namespace

void add_snapshot_command(CLI::App& app, Handler* selected) {
    auto a = std::make_shared<SnapArgs>();
    auto* cmd = app.add_subcommand("snapshot", "Render a view of the desktop app to a PNG, with no window or X server");
    cmd->add_option("--view", a->view,
                    "loads, comm, dispatch, timeline, device, controls, help, roofline (the expert FFN's) or overview "
                    "(the whole app)")
        ->check(CLI::IsMember(
            {"loads", "comm", "dispatch", "timeline", "device", "controls", "help", "roofline", "overview"}));
    cmd->add_option("--out,-o", a->out, "PNG file to write")->required();
    cmd->add_option("--width", a->width, "Image width in pixels (64..8192, default 1280)");
    cmd->add_option("--height", a->height, "Image height in pixels (64..8192, default 800)");
    cmd->add_option("--scale", a->scale, "Interface scale: fonts are rasterised at this size (default 1)")
        ->check(CLI::Range(0.5f, 4.0f));
    cmd->add_flag("--presenter", a->presenter, "Presenter mode: larger fonts, high contrast, Okabe–Ito colours");
    cmd->add_flag("--light", a->light, "Light theme");
    cmd->add_flag("--full-layer", a->full_layer,
                  "Also run the expert FFNs for measured stage times (seconds on the CPU reference)");
    cmd->add_option("--preset", a->preset, "Start from a model preset; other flags override it");
    cmd->add_flag("--quiet,-q", a->quiet, "No progress on stderr");
    cmd->add_option("--result", a->result,
                    "Draw a saved Result (JSON from moelab run ... --json), e.g. a pipeline measured on a GPU "
                    "machine, instead of running the scenario here");
    cmd->add_option("--roofline", a->roofline,
                    "--view roofline draws this saved sweep (JSON from `moelab bench experts --sweep --save` on a GPU "
                    "machine) for the scenario's d, F, E, k; default: measured here on a GPU, else the H200 run of "
                    "record where it has the shape, else modeled");
    add_scenario_flags(cmd, a->flags);
    cmd->footer(
        "Example: moelab snapshot --view overview --out assets/readme-overview.png\n"
        "         moelab snapshot --view roofline --out roofline.png --preset classroom\n"
        "Uses Mesa's surfaceless EGL or the GPU driver's EGL device; no DISPLAY is needed.");
    cmd->callback([a, selected] {
        *selected = [a] {
#ifdef MOELAB_HAVE_GUI
            moelab_gui::SnapshotOptions o;
            o.view = a->view;
            o.out = a->out;
            o.width = a->width;
            o.height = a->height;
            if (!(a->scale >= 0.5f && a->scale <= 4.0f))  // NaN passes CLI::Range; ImGui would assert on it
                MOE_BAD_INPUT("--scale " << a->scale << ": the interface scale must be between 0.5 and 4");
            o.scale = a->scale;
            o.presenter = a->presenter;
            o.light = a->light;
            o.full_layer = a->full_layer;
            o.quiet = a->quiet;
            o.result = a->result;
            o.roofline = a->roofline;
            o.scenario = resolve_scenario_with_preset(a->flags, a->preset);
            return moelab_gui::run_snapshot(o);
#else
            std::fprintf(stderr,
                         "moelab snapshot: this build has no GUI (MOELAB_GUI=OFF); rebuild with "
                         "libimgui-dev, libglfw3-dev and libegl-dev (scripts/setup)\n");
            return 1;
#endif
        };
    });
}

}  // namespace moelab_cli
