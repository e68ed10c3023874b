// The bare `moelab`: opens the desktop app. Its options (--frames, --script, --screenshot, --presenter, scenario
// flags, …) live on the top-level command and only take effect when no subcommand is given.
#include <unistd.h>

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

namespace {
struct GuiArgs {
    ScenarioFlags flags;
    bool flags_ok = false;
    std::string preset;
    int frames = 0;
    std::string screenshot, script, config_dir, report_json, roofline;
    bool presenter = false, report = false, no_vsync = false;
    int width = 1280, height = 800;
};

// --preset NAME as the base that --scenario and the other flags then override.
demos::Scenario resolve_with_preset(ScenarioFlags f, const std::string& preset) {
    if (preset.empty() || !f.scenario_file.empty()) return resolve_scenario(f);
    for (const demos::Preset& p : demos::presets()) {
        if (p.name != preset) continue;
        std::string tmp = "/tmp/moelab-preset-" + std::to_string(::getpid()) + ".toml";
        p.scenario.save(tmp);
        f.scenario_file = tmp;
        try {
            demos::Scenario s = resolve_scenario(f);
            std::remove(tmp.c_str());
            return s;
        } catch (...) {
            std::remove(tmp.c_str());
            throw;
        }
    }
    std::string names;
    for (const demos::Preset& p : demos::presets()) names += (names.empty() ? "" : ", ") + p.name;
    MOE_BAD_INPUT("--preset " << preset << ": unknown preset; allowed: " << names);
}
}  // namespace

demos::Scenario resolve_scenario_with_preset(const ScenarioFlags& f, const std::string& preset) {
    return resolve_with_preset(f, preset);
}

void add_gui_options(CLI::App& app, Handler* selected) {
    auto a = std::make_shared<GuiArgs>();
    const char* g = "Desktop app (a bare `moelab` opens the window)";
    app.add_option("--frames", a->frames, "Render N frames, then exit (0 = until the window closes)")
        ->check(CLI::Range(0, 100000000))
        ->group(g);
    app.add_option("--screenshot", a->screenshot, "Save the window as PNG after the last frame")->group(g);
    app.add_option("--script", a->script,
                   "Scripted input: a file, or builtin:NAME (tour, invalid-topk, perf, drag, ranges, "
                   "presenter-pages), for tests and measurements")
        ->group(g);
    app.add_flag("--presenter", a->presenter, "Start in presenter mode: large fonts, high contrast, Okabe–Ito colours")
        ->group(g);
    app.add_option("--preset", a->preset,
                   "Start from a model preset (classroom, Mixtral-8x22B, DBRX, DeepSeek-V3, "
                   "Qwen3-30B-A3B)")
        ->group(g);
    app.add_option("--config-dir", a->config_dir, "Where imgui.ini and prefs.toml live (default ~/.config/moelab)")
        ->group(g);
    app.add_flag("--report-frame-times", a->report, "Print frame-time statistics and startup time at exit")->group(g);
    app.add_option("--report-json", a->report_json, "Also write them as JSON to FILE")->group(g);
    app.add_option("--width", a->width, "Window width (64..8192, default 1280)")->check(CLI::Range(64, 8192))->group(g);
    app.add_option("--height", a->height, "Window height (64..8192, default 800)")
        ->check(CLI::Range(64, 8192))
        ->group(g);
    app.add_flag("--no-vsync", a->no_vsync, "Do not wait for the display's refresh")->group(g);
    app.add_option("--roofline", a->roofline,
                   "The roofline panel shows this saved sweep (JSON from `moelab bench experts --sweep --save` on a "
                   "GPU machine) where this machine has not measured the shape; default: the H200 run of record")
        ->group(g);
    try {
        add_scenario_flags(&app, a->flags);
        a->flags_ok = true;
    } catch (const CLI::Error&) {
        // Another command registered scenario flags on the top level already; the app starts from defaults.
    }
    CLI::App* top = &app;
    app.final_callback([a, top, selected] {
        if (!top->get_subcommands().empty()) return;
        *selected = [a] {
#ifdef MOELAB_HAVE_GUI
            moelab_gui::WindowOptions w;
            w.frames = a->frames;
            w.screenshot = a->screenshot;
            w.script = a->script;
            w.presenter = a->presenter;
            w.config_dir = a->config_dir;
            w.report_frame_times = a->report || !a->report_json.empty();
            w.report_json = a->report_json;
            w.width = a->width;
            w.height = a->height;
            w.vsync = !a->no_vsync;
            w.preset = a->preset;
            w.roofline = a->roofline;
            w.scenario = a->flags_ok ? resolve_with_preset(a->flags, a->preset) : demos::Scenario{};
            return moelab_gui::run_window(w);
#else
            std::fprintf(stderr,
                         "moelab: this build has no desktop app (configured with MOELAB_GUI=OFF or without "
                         "libimgui-dev/libglfw3-dev/libegl-dev).\n"
                         "Use the terminal: `moelab run layer`, `moelab lessons`; see `moelab --help`.\n");
            return 1;
#endif
        };
    });
}

}  // namespace moelab_cli
