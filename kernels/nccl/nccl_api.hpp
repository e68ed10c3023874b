// Entry points of the nccl backend: an expert-parallel MoE layer over G local GPUs and the all-to-all benchmark.
// Plain C++ (no CUDA or NCCL header), so the engine, the CLI and the tests include it in every build.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/api.hpp"

namespace moe::nccl {

bool built();           // compiled with NCCL (false: every other call throws NoDevice)
int usable_gpus();      // CUDA devices this process can see; 0 without CUDA/NCCL
std::string version();  // "2.28.3" of the linked library, "" when not built

// Every wait on NCCL or on a GPU stream of this backend gives up after this long: the communicator is aborted
// and a Runtime error names what was waited for. Default 30 s, or MOELAB_NCCL_TIMEOUT_S.
double timeout_s();
void set_timeout_s(double seconds);  // BadInput unless in (0, 3600]

// One expert-parallel layer over `ranks` GPUs: rank g owns the global tokens [ceil(g·T/G), ceil((g+1)·T/G))
// (comm::rank_of_token) and the experts [g·E/G, (g+1)·E/G) (comm::rank_of_expert). Each rank generates its own
// slice of x, logits and weights from the counter-based RNG over global indices, so the concatenated outputs
// equal the CPU reference's moe::cpu::run_layer on the same LayerSpec.
//
// Stages per rank, timed with CUDA events on that rank's stream:
//   route        popularity logits (or x·Wg) + softmax + top-k of the rank's tokens
//   dispatch     pack rows expert-major over all E experts, so each destination rank's rows are contiguous
//   a2a dispatch counts all-to-all, copy to host, host sync of every rank, then the rows all-to-all
//   experts      regroup received rows (source-major → local-expert-major), the E/G expert FFNs, and back
//   a2a combine  expert outputs return to the ranks that own the tokens
//   combine      weighted sum of each token's k outputs
// Dropless only: a capacity factor > 0 is refused (BadInput), since capacity is per expert over all ranks.
struct EpRun {
    int ranks = 0;
    std::string device;  // "2x NVIDIA H200"
    std::string nccl_version;
    std::vector<std::string> stage_names;                // the six above, in order
    std::vector<std::vector<StageSamples>> rank_stages;  // [rank][stage]: ms of each timed repeat
    std::vector<std::int64_t> rank_tokens;               // [G] tokens each rank owns
    std::vector<std::int64_t> counts;         // [E] rows each expert received, over all ranks (== demand: dropless)
    std::vector<std::int64_t> traffic;        // [G·G] rows src → dst in the dispatch all-to-all, diagonal included
    std::vector<std::int64_t> rows_received;  // [G] rows each rank's experts computed
    std::vector<double> bytes_sent;           // [G] bytes each rank sends to other ranks per layer (dispatch + combine)
    std::vector<bf16_t> out;                  // [T, d] concatenated outputs (keep_tensors)
    std::vector<std::int32_t> topk_ids;       // [T, k] (keep_tensors or keep_routing)
    std::vector<float> topk_w;                // [T, k]
};

// Throws BadInput for a spec this backend refuses (naming the flag and the allowed range), NoDevice when fewer
// than `ranks` GPUs exist, OutOfMemory naming the bytes, Runtime on NCCL/CUDA errors and timeouts.
void run_ep_layer(const LayerSpec& spec, int ranks, const LayerRunOptions& opt, EpRun& run);

// The all-to-all benchmark (nccl-tests style): each rank sends bytes_per_rank / G to every rank (itself
// included) with ncclSend/ncclRecv in one group. Data carries a pattern of (src, dst, index) and is checked
// before and after the timed iterations. time is per iteration, the slowest rank's CUDA-event span; a spin kernel
// holds each stream while the host queues every iteration, so the spans hold the exchanges, not host latency.
struct A2aPoint {
    std::size_t bytes_per_rank = 0;  // after rounding down to whole 4-byte words per peer
    std::size_t count = 0;           // 32-bit words per rank
    double time_ms_median = 0, p95 = 0, min_ms = 0;
    double algbw = 0;        // GB/s: bytes_per_rank / time
    double busbw = 0;        // GB/s: algbw·(G−1)/G
    std::int64_t wrong = 0;  // words that did not carry the expected pattern
    int iters = 0;
};
std::vector<A2aPoint> bench_alltoall(int ranks, const std::vector<std::size_t>& sizes, int iters, double timeout_s,
                                     int warmup = 10);

}  // namespace moe::nccl
