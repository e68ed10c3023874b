// The list of extra `moelab bench` subcommands (bench_hooks.hpp). To add one: declare its add_options and run
// functions here and add a line to the list.
#include "app/cli/bench_hooks.hpp"

namespace moelab_cli {

void add_pipeline_bench_options(CLI::App& cmd);  // bench_pipeline.cpp
int run_pipeline_bench(const BenchCommon& c);

const std::vector<BenchExtension>& bench_extensions() {
    static const std::vector<BenchExtension> list = {
        {"pipeline", add_pipeline_bench_options, run_pipeline_bench},
    };
    return list;
}

}  // namespace moelab_cli
