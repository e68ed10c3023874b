// `moelab bench alltoall` and `moelab bench ep-layer`: the nccl backend's benchmarks, registered by bench.cpp.
// In every build: without NCCL they exit with a NoDevice error that says why.
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "app/cli/bench_hooks.hpp"

namespace moelab_cli {

struct NcclBenchArgs {
    std::string what;  // alltoall | ep-layer
    int ranks = 0;     // 0: every visible GPU
    std::string min_bytes = "256K", max_bytes = "256M";
    double timeout = 30;  // seconds any NCCL wait may take
    // Shared with the other bench stages (copied from bench.cpp's flags).
    std::int64_t tokens = 0;
    int hidden = 0, experts = 0, top_k = 0, ffn = 0;
    std::string skew = "uniform";
    int warmup = 10, repeats = 50;
    std::uint64_t seed = 1;
    bool no_check = false, json = false;
    std::string save, peer;
};

int run_nccl_bench(const NcclBenchArgs& a);

// The PyTorch peer's JSON file (--peer) of every bench: only a regular file of bounded size is read; otherwise
// BadInput naming the flag, the file and the reason.
nlohmann::json read_peer_json(const std::string& path);

// Flags of the nccl benches beyond bench.cpp's, registered through bench_extensions.cpp (add_nccl_bench_options).
struct NcclBenchExtra {
    bool latency = false;        // alltoall: latency by message size (2 KB .. 8 MB per peer), p99, Util(msg)
    int chunks = 0;              // ep-layer: chunks of the overlapped run, 0: min(4, E/G)
    int comm_sms = -1;           // ep-layer: SMs the overlapped run's experts leave to the exchanges, -1: the default
    std::string transport = "auto";  // ep-layer: the overlapped runs' exchanges: auto | nccl | ce (copy engines)
    double capacity_factor = 0;  // ep-layer: 0 = dropless
    std::string drop_policy = "token";
};
NcclBenchExtra& nccl_bench_extra();

}  // namespace moelab_cli
