// moelab's entry point: parse the command line, run the chosen subcommand, and turn errors into exit codes
// (0 ok, 2 bad input, 1 runtime failure). A bare `moelab` opens the desktop app.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "app/cli/commands.hpp"
#include "kernels/common/error.hpp"

int main(int argc, char** argv) {
    CLI::App app{"moelab: an interactive lab for serving Mixture-of-Experts models.\n"
                 "Runs routing, packing, expert FFNs and combine on the GPU (CUDA) or the CPU reference.",
                 "moelab"};
    app.set_version_flag("--version", std::string("moelab ") + MOELAB_VERSION);
    app.require_subcommand(0, 1);
    app.footer("Exit codes: 0 ok, 2 bad input, 1 runtime failure.\n"
               "Examples:\n"
               "  moelab run routing --experts 16 --tokens 4096 --top-k 1 --skew hot:6.667 --json\n"
               "  moelab run layer --backend auto\n"
               "  moelab devices\n"
               "  moelab lessons");

    moelab_cli::Handler selected;
    moelab_cli::add_run_command(app, &selected);
    moelab_cli::add_devices_command(app, &selected);
    moelab_cli::add_plan_command(app, &selected);
    moelab_cli::add_bench_command(app, &selected);
    moelab_cli::add_snapshot_command(app, &selected);
    moelab_cli::add_lesson_commands(app, &selected);
    moelab_cli::add_gui_options(app, &selected);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;  // every parse error is bad input
    }
    if (!selected) {
        std::fprintf(stderr, "moelab: nothing to do; see moelab --help\n");
        return 2;
    }
    try {
        return selected();
    } catch (const moe::Error& e) {
        std::fprintf(stderr, "moelab: error: %s\n", e.what());
        return e.kind() == moe::ErrorKind::BadInput ? 2 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "moelab: error: %s\n", e.what());
        return 1;
    }
}
