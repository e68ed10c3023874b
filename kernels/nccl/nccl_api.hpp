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

// One process per GPU: true when this build has MPI (mpirun -np G moelab ... --ranks G then runs one rank per
// process, the NCCL unique id broadcast over MPI). world_rank/world_size: this process's rank and the number of
// processes when started by an MPI launcher, else 0 and 1.
bool mpi_built();
int world_rank();
int world_size();

// One expert-parallel layer over `ranks` GPUs: rank g owns the global tokens [ceil(g·T/G), ceil((g+1)·T/G))
// (comm::rank_of_token) and the experts [g·E/G, (g+1)·E/G) (comm::rank_of_expert). Each rank generates its own
// slice of x, logits and weights from the counter-based RNG over global indices, so the concatenated outputs
// equal the CPU reference's moe::cpu::run_layer on the same LayerSpec.
//
// Spans per rank and repeat, timed with CUDA events on that rank's compute and comm streams (kernels/nccl/README.md):
//   route        popularity logits (or x·Wg) + softmax + top-k of the rank's tokens
//   capacity     (cf > 0) every rank's ids and weights all-gathered, the reference's drops over all T tokens
//   counts       rows per expert, exchanged on the device (all-to-all of ints) and copied to the host
//   dispatch     pack rows expert-major over all E experts, so each destination rank's rows are contiguous
//   host         the one host sync (NCCL's message sizes are host arguments), the plan, and the host queuing the
//                first exchange; before the combine, the host queuing it (a gate holds the stream meanwhile)
//   wait         a barrier before the first chunk of an exchange: the time this rank waits for the slowest one
//   a2a dispatch rows to the experts' ranks, in `chunks` groups of local experts
//   experts      regroup received rows by expert, the FFNs of the chunk's experts, regroup back
//   a2a combine  expert outputs return to the ranks that own the tokens, chunk by chunk
//   combine      weighted sum of each token's k outputs
// With overlap, route/dispatch/experts/combine run on a compute stream and the exchanges on the comm stream, so
// chunk i+1 moves while chunk i's experts compute; without, everything runs in order on one stream.
struct EpOptions {
    int chunks = 1;           // groups of local experts the exchanges are split into, 1..E/G
    bool overlap = false;     // compute and comm on separate streams (chunks overlap the expert GEMMs)
    bool wait_spans = true;   // a barrier before each exchange, so waiting for a slower rank is its own span
    bool pair_probe = false;  // after the layer, time each pair's dispatch bytes alone (EpRun::pair_ms)
    // With overlap and 2 or more chunks: SMs left to the exchanges, the experts take the rest (a persistent expert
    // kernel on every SM would hold the NCCL kernels back until its tail). -1: MOELAB_EP_COMM_SMS, else 16.
    int comm_sms = -1;
    // How the overlapped run's rows move. nccl: ncclSend/ncclRecv. copy_engines: peer copies (cudaMemcpyPeerAsync
    // over NVLink), which take no SMs, so an exchange runs beside an expert kernel that holds every SM (an NCCL kernel
    // waits for SMs to free up); one process driving every rank, with peer access between every pair. auto: copy
    // engines where they work, else nccl. The plain run always uses NCCL.
    enum class Transport { Auto, Nccl, CopyEngines };
    Transport transport = Transport::Auto;
};

struct EpSpan {
    int rank = 0;
    std::string lane;                 // compute | comm
    std::string label;                // one of the span names above
    int chunk = -1;                   // chunk index of a2a/experts/wait spans, else −1
    double start_ms = 0, end_ms = 0;  // medians over the timed repeats, from the rank's start (after a barrier)
};

struct EpRun {
    int ranks = 0;
    bool blocking = false;  // blocking NCCL communicators (MOELAB_NCCL_BLOCKING=1)
    int processes = 1;      // 1: one process drove every rank; G: one process per GPU (mpirun)
    std::string device;     // "2x NVIDIA H200"
    std::string nccl_version;
    int chunks = 1;
    bool overlap = false;
    int comm_sms = 0;                                    // SMs the experts left to the exchanges (0: none held back)
    std::string transport = "nccl";                      // how the rows moved: nccl | copy engines
    std::vector<std::string> stage_names;                // span labels present, in order
    std::vector<std::vector<StageSamples>> rank_stages;  // [rank][stage]: ms of each timed repeat (chunks summed)
    std::vector<std::vector<double>> rank_layer_ms;      // [rank][repeat]: the rank's whole layer, first to last span
    std::vector<EpSpan> spans;                           // every rank's timeline (medians), lanes compute and comm
    std::vector<std::int64_t> rank_tokens;               // [G] tokens each rank owns
    std::int64_t capacity = 0;                           // per expert over all ranks; 0 = dropless
    std::int64_t dropped = 0;
    std::vector<std::int64_t> demand;         // [E] routed assignments before drops
    std::vector<std::int64_t> counts;         // [E] rows each expert received, over all ranks (kept)
    std::vector<std::int64_t> traffic;        // [G·G] rows src → dst in the dispatch all-to-all, diagonal included
    std::vector<std::int64_t> rows_received;  // [G] rows each rank's experts computed
    std::vector<double> bytes_sent;           // [G] bytes each rank sends to other ranks per layer (dispatch + combine)
    std::vector<double> pair_ms;              // [G·G] (pair_probe) src → dst dispatch bytes sent alone, median ms
    std::vector<bf16_t> out;                  // [T, d] concatenated outputs (keep_tensors)
    std::vector<std::int32_t> topk_ids;       // [T, k] after drops (keep_tensors or keep_routing)
    std::vector<float> topk_w;                // [T, k]
};

// Throws BadInput for a spec this backend refuses (naming the flag and the allowed range), NoDevice when fewer
// than `ranks` GPUs exist, OutOfMemory naming the bytes, Runtime on NCCL/CUDA errors and timeouts.
void run_ep_layer(const LayerSpec& spec, int ranks, const LayerRunOptions& opt, EpRun& run);
void run_ep_layer(const LayerSpec& spec, int ranks, const LayerRunOptions& opt, const EpOptions& ep, EpRun& run);

// The all-to-all benchmark (nccl-tests style): each rank sends bytes_per_rank / G to every rank (itself
// included) with ncclSend/ncclRecv in one group. Data carries a pattern of (src, dst, index) and is checked
// before and after the timed iterations. time is per iteration, the slowest rank's CUDA-event span; a spin kernel
// holds each stream while the host queues every iteration, so the spans hold the exchanges, not host latency.
struct A2aPoint {
    std::size_t bytes_per_rank = 0;  // after rounding down to whole 4-byte words per peer
    std::size_t count = 0;           // 32-bit words per rank
    double time_ms_median = 0, p95 = 0, p99 = 0, min_ms = 0;
    double algbw = 0;        // GB/s: bytes_per_rank / time
    double busbw = 0;        // GB/s: algbw·(G−1)/G
    std::int64_t wrong = 0;  // words that did not carry the expected pattern
    int iters = 0;
};
std::vector<A2aPoint> bench_alltoall(int ranks, const std::vector<std::size_t>& sizes, int iters, double timeout_s,
                                     int warmup = 10);

}  // namespace moe::nccl
