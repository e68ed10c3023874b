// The list of extra `moelab bench` subcommands (bench_hooks.hpp). To add one: declare its add_options and run
// functions here and add a line to the list.
#include "app/cli/bench_hooks.hpp"

namespace moelab_cli {

void add_pipeline_bench_options(CLI::App& cmd);  // bench_pipeline.cpp
int run_pipeline_bench(const BenchCommon& c);
void add_nccl_bench_options(CLI::App& cmd);  // bench_nccl.cpp: --latency, --chunks, --capacity-factor, --drop-policy
int run_alltoall_latency_bench(const BenchCommon& c);

const std::vector<BenchExtension>& bench_extensions() {
    static const std::vector<BenchExtension> list = {
        {"pipeline", add_pipeline_bench_options, run_pipeline_bench},
        {"alltoall-latency", add_nccl_bench_options, run_alltoall_latency_bench},
    };
    return list;
}

}  // namespace moelab_cli
