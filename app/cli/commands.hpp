// The `moelab` subcommands. Each file in app/cli registers one command on the CLI11 app and stores the
// function that runs it in `*selected`; main() parses, runs the selected one and maps errors to exit codes.
#pragma once
#include <functional>

namespace CLI {
class App;
}

namespace moelab_cli {

using Handler = std::function<int()>;

void add_run_command(CLI::App& app, Handler* selected);       // run.cpp
void add_devices_command(CLI::App& app, Handler* selected);   // devices.cpp
void add_plan_command(CLI::App& app, Handler* selected);      // plan.cpp
void add_bench_command(CLI::App& app, Handler* selected);     // bench.cpp
void add_snapshot_command(CLI::App& app, Handler* selected);  // snapshot.cpp
void add_lesson_commands(CLI::App& app, Handler* selected);   // lesson.cpp: `lesson ID` and `lessons [check]`
// Options of the bare `moelab` (the desktop app): sets `*selected` to open the window. gui_command.cpp
void add_gui_options(CLI::App& app, Handler* selected);

}  // namespace moelab_cli
