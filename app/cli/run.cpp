// `moelab run routing|dispatch|layer|pipeline [flags] [--json|--csv] [--dump DIR]`: one engine run,
// printed as a readable table, JSON or CSV, with per-stage times and provenance.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <unistd.h>

#include "app/cli/commands.hpp"
#include "app/cli/scenario_flags.hpp"
#include "app/cli/dump_staging.hpp"
#include "demos/atomic_file.hpp"
#include "demos/engine.hpp"
#include "demos/result_io.hpp"
#include "demos/trace.hpp"
#include "kernels/common/error.hpp"

namespace moelab_cli {

namespace {
struct RunArgs {
    std::string demo;
    ScenarioFlags flags;
    bool json = false, csv = false, quiet = false;
    std::string dump, save, trace;
};
}  // namespace

void add_run_command(CLI::App& app, Handler* selected) {
    auto args = std::make_shared<RunArgs>();
    auto* cmd = app.add_subcommand("run", "Run one demo of an MoE layer and print its numbers");
    cmd->add_option("demo", args->demo,
                    "routing: route + capacity (loads, straggler, bytes)\n"
                    "dispatch: plus packing, every strategy timed\n"
                    "layer: route → capacity → dispatch → experts → combine\n"
                    "pipeline: the ping-pong pipeline, measured on GPU pools with --backend cuda, else modelled")
        ->required()
        ->check(CLI::IsMember({"routing", "dispatch", "layer", "pipeline"}));
    add_scenario_flags(cmd, args->flags);
    auto* j = cmd->add_flag("--json", args->json, "Print the Result as JSON");
    auto* c = cmd->add_flag("--csv", args->csv, "Print the Result as CSV (section,key,index,value,unit,provenance)");
    j->excludes(c);
    cmd->add_option("--dump", args->dump, "Write inputs and outputs as .npy files into DIR");
    cmd->add_option("--save-scenario", args->save, "Also save the resolved scenario as TOML");
    cmd->add_option("--trace", args->trace,
                    "Write the timelines (measured and modelled) as Chrome trace JSON for Perfetto / chrome://tracing");
    cmd->add_flag("--quiet,-q", args->quiet, "No progress on stderr");
    cmd->callback([args, selected] {
        *selected = [args] {
            demos::Scenario s = resolve_scenario(args->flags);
            if (!args->save.empty()) s.save(args->save);
            demos::RunControl ctl;
            DumpStaging dump(args->dump);
            ctl.dump_dir = dump.dir();
            bool tty = isatty(fileno(stderr)) && !args->quiet;
            if (tty)
                ctl.progress = [](float f, const std::string& what) {
                    std::fprintf(stderr, "\r  %3.0f%% %-24s", 100 * f, what.c_str());
                    std::fflush(stderr);
                };
            demos::Result r = demos::run(s, demos::parse_demo(args->demo), ctl);
            if (tty) std::fprintf(stderr, "\r%40s\r", "");
            dump.commit(s);
            if (args->json)
                std::cout << demos::to_json(r).dump(2) << "\n";
            else if (args->csv)
                std::cout << demos::to_csv(r);
            else
                std::cout << demos::to_table(r);
            if (!args->trace.empty()) {
                demos::write_chrome_trace(r, args->trace);
                if (!args->json && !args->csv)
                    std::cout << "\nwrote the timeline as Chrome trace JSON to " << args->trace
                              << " (open it at ui.perfetto.dev)\n";
            }
            if (!args->dump.empty() && !args->json && !args->csv)
                std::cout << "\nwrote .npy files to " << args->dump << "\n";
            return 0;
        };
    });
}

}  // namespace moelab_cli
