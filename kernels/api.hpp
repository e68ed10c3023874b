// Entry points of every MoE stage, one namespace per stage (moe::route, moe::dispatch, moe::experts, moe::combine,
// moe::comm), each holding its CPU reference, and the whole-layer runners (moe::cpu, moe::gpu). Two routing
// launchers sit in moe::route::gpu; every other CUDA launcher is declared in kernels/cuda/launchers.hpp (moe::gpu).
// The attention stage and the measured pipeline have their own headers: kernels/attention.hpp, kernels/pipeline.hpp.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/bf16.hpp"

namespace moe {

using Stream = void*;  // a cudaStream_t, opaque here so that host-only code can include this header

// ---------------------------------------------------------------------------------------------
// The parameters of one MoE layer as the kernels see them (demos::Scenario converts to this).
enum class SkewFamily { Uniform, Zipf, Hot };
struct Skew {
    SkewFamily family = SkewFamily::Uniform;
    double param = 0.0;  // zipf exponent s, or hot ratio R
};
enum class Router { Popularity, Gate };          // log p + Gumbel noise, or x·Wg + log p
enum class DropPolicy { TokenOrder, Probability };
enum class Strategy { Sort, Atomic, Scan, NoPack };

struct LayerSpec {
    std::int64_t tokens = 4096;  // T
    int experts = 16;            // E
    int top_k = 2;               // k
    int hidden = 1024;           // d
    int ffn = 2816;              // F
    Skew skew{};
    Router router = Router::Popularity;
    bool renormalize = true;
    double capacity_factor = 0.0;  // 0 = dropless
    DropPolicy drop_policy = DropPolicy::TokenOrder;
    int align = 1;  // pad each expert's segment to a multiple of this many rows
    Strategy strategy = Strategy::Scan;  // the fastest packing; rows in sort's order (demos/scenario.hpp)
    std::uint64_t seed = 0;
};

// Scales of the generated inputs: values are uniform in [-scale, scale) and rounded to bf16.
float x_scale();
float gate_scale(int hidden);
float w1_scale(int hidden);
float w2_scale(int ffn);

// Tensors of one layer run, on the host. Filled only when a caller asks (dump, tests).
struct LayerTensors {
    std::vector<bf16_t> x;                // [T, d]
    std::vector<float> logits;            // [T, E]
    std::vector<std::int32_t> topk_ids;   // [T, k], -1 where the assignment was dropped
    std::vector<float> topk_w;            // [T, k]
    std::vector<std::int32_t> counts;     // [E] kept rows per expert
    std::vector<std::int32_t> offsets;    // [E+1] start of each expert's (padded) segment
    std::vector<std::int32_t> row_token;  // [rows] source token of each packed row, -1 for padding
    std::vector<std::int32_t> inv;        // [T, k] packed row of each assignment, -1 where dropped
    std::vector<bf16_t> y_packed;         // [rows, d] expert outputs in packed order
    std::vector<bf16_t> out;              // [T, d] combine output
};

// Per-stage wall times of the repeats, in milliseconds.
struct StageSamples {
    std::string stage;  // route | capacity | dispatch | experts | combine
    std::vector<double> ms;
};

struct LayerRunOptions {
    int warmup = 0;
    int repeats = 1;
    bool run_experts = true;  // routing/dispatch demos skip the FFN
    bool keep_tensors = false;  // every tensor of LayerTensors (dump, tests)
    bool keep_routing = true;   // only topk_ids (after drops) and topk_w, for the traffic bookkeeping
    int threads = 0;                                // CPU worker threads, 0 = hardware concurrency
    std::function<void(float, const char*)> progress;  // fraction done, current stage
    const std::atomic<bool>* cancel = nullptr;         // checked between stages
};

struct LayerRun {
    std::string backend;  // cpu | cuda
    std::string device;   // CPU model or GPU name
    // cuda: the expert FFN implementation that ran (auto's pick); cpu: "reference"; "" without the FFN.
    std::string experts_impl;
    std::int64_t capacity = 0;  // per expert; 0 = dropless
    std::int64_t dropped = 0;   // assignments dropped by capacity
    std::int64_t rows = 0;      // packed rows, padding included
    std::vector<std::int64_t> demand;  // [E] routed assignments before drops
    std::vector<std::int64_t> counts;  // [E] kept assignments
    std::vector<StageSamples> stages;
    LayerTensors tensors;  // filled when keep_tensors
};

// ---------------------------------------------------------------------------------------------
namespace route {
// "uniform", "zipf:S" (S > 0), "hot:R" (R > 0); throws BadInput naming the allowed forms.
Skew parse_skew(const std::string& text);
std::string format_skew(const Skew& s);
// Normalised popularity p_e of each expert and its log, computed in double.
std::vector<double> popularity(const Skew& s, int experts);
std::vector<float> log_popularity(const Skew& s, int experts);
// Under the popularity router (Gumbel top-k, sampling without replacement): the probability that each expert is
// among a token's k choices (they sum to k), by quadrature over the expert's own Gumbel draw.
std::vector<double> topk_inclusion(const Skew& s, int experts, int k);
// The busiest expert's count over `tokens` tokens, two standard deviations above its mean, at most tokens and at most
// cap (> 0: the capacity). A kernel choice reads it where the counts are still on the device; no figure does.
std::int64_t busiest_estimate(const Skew& s, int experts, int k, std::int64_t tokens, std::int64_t cap);

void make_x(std::uint64_t seed, std::int64_t tokens, int hidden, bf16_t* x);
void make_gate(std::uint64_t seed, int experts, int hidden, bf16_t* wg);  // [E, d]
// logits[t, e] = log p_e + Gumbel(seed, t·E + e)
void popularity_logits(std::uint64_t seed, const float* logp, std::int64_t tokens, int experts, float* logits);
// logits[t, e] = Σ_i x[t, i]·wg[e, i] + log p_e, fp32 accumulate
void gate_logits(const bf16_t* x, const bf16_t* wg, const float* logp, std::int64_t tokens, int hidden, int experts,
                 float* logits);
// Softmax over E then the k largest, ties to the lower expert id; weights renormalised to sum 1 if asked.
void softmax_topk(const float* logits, std::int64_t tokens, int experts, int k, bool renormalize, std::int32_t* ids,
                  float* weights);
// C = ceil(cf·T·k/E); 0 when cf == 0 (dropless).
std::int64_t capacity(double cf, std::int64_t tokens, int k, int experts);
// Drops assignments past capacity (ids set to -1). Token order keeps the first C by (t, j);
// probability keeps the C largest weights, ties to the lower (t, j). Returns the number dropped.
std::int64_t apply_capacity(std::int32_t* ids, const float* weights, std::int64_t tokens, int k, int experts,
                            std::int64_t cap, DropPolicy policy);

namespace gpu {
void popularity_logits(std::uint64_t seed, const float* logp_dev, std::int64_t tokens, int experts, float* logits,
                       Stream s);
void softmax_topk(const float* logits, std::int64_t tokens, int experts, int k, bool renormalize, std::int32_t* ids,
                  float* weights, Stream s);
}  // namespace gpu
}  // namespace route

// ---------------------------------------------------------------------------------------------
namespace dispatch {
Strategy parse_strategy(const std::string& text);  // sort | atomic | scan | nopack
const char* strategy_name(Strategy s);
// Upper bound on packed rows: T·k + E·(align−1).
std::int64_t max_rows(std::int64_t tokens, int k, int experts, int align);
// Stable expert-major plan: tokens ascending inside each expert, segments padded to `align` rows.
// counts [E], offsets [E+1], row_token [max_rows] (-1 for padding), inv [T·k] (-1 where dropped).
// Returns the number of packed rows (offsets[E]).
std::int64_t plan(const std::int32_t* ids, std::int64_t tokens, int k, int experts, int align, std::int32_t* counts,
                  std::int32_t* offsets, std::int32_t* row_token, std::int32_t* inv);
// xp[r] = x[row_token[r]], zero rows for padding.
void pack(const bf16_t* x, const std::int32_t* row_token, std::int64_t rows, int hidden, bf16_t* xp);
}  // namespace dispatch

// ---------------------------------------------------------------------------------------------
namespace experts {
void make_w1(std::uint64_t seed, int experts, int ffn, int hidden, bf16_t* w1);  // [E, 2F, d]: gate rows, then up rows
void make_w2(std::uint64_t seed, int experts, int hidden, int ffn, bf16_t* w2);  // [E, d, F]
// For every expert e and row r in [offsets[e], offsets[e] + counts[e]):
//   h1 = bf16(xr · w1[e]^T) [2F];  h = bf16(silu(h1[:F]) · h1[F:]);  y[r] = bf16(h · w2[e]^T).
// Padding rows get zeros. `xp` may be null with `row_token` and `x` given: the no-pack path gathers.
void ffn(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
         const std::int32_t* offsets, int experts, int hidden, int ffn, const bf16_t* w1, const bf16_t* w2, bf16_t* y,
         int threads);
}  // namespace experts

// ---------------------------------------------------------------------------------------------
namespace combine {
// out[t] = bf16(Σ_j w[t, j]·y[inv[t, j]]) with the sum in fp32; dropped assignments add nothing.
void gather(const bf16_t* y, const std::int32_t* inv, const float* weights, std::int64_t tokens, int k, int hidden,
            bf16_t* out);
}  // namespace combine

// ---------------------------------------------------------------------------------------------
namespace comm {
// Expert-parallel bookkeeping for G ranks: experts placed contiguously (E/G each), tokens split contiguously.
int rank_of_expert(int expert, int experts, int ranks);
int rank_of_token(std::int64_t token, std::int64_t tokens, int ranks);
struct Traffic {
    int ranks = 1;
    std::vector<std::int64_t> tokens;   // [G, G] rows sent src → dst (one per kept assignment)
    std::vector<std::int64_t> dedup;    // [G, G] rows sent when a token goes once per destination rank
    std::vector<std::int64_t> sent;     // [G] rows each rank sends to other ranks
    double seed_bytes = 0;              // the seed's 2·T·k·d·b (dispatch + combine, every assignment)
    double routed_bytes = 0;            // 2·Σ tokens·d·b over src != dst
    double dedup_bytes = 0;             // 2·Σ dedup·d·b over src != dst
};
Traffic traffic(const std::int32_t* ids, std::int64_t tokens, int k, int experts, int ranks, int hidden,
                int bytes_per_elem);
}  // namespace comm

// ---------------------------------------------------------------------------------------------
// Whole-layer runners: route → capacity → dispatch → experts → combine, timed per stage.
namespace cpu {
void run_layer(const LayerSpec& spec, const LayerRunOptions& opt, LayerRun& run);
std::string device_name();
}  // namespace cpu

namespace gpu {
struct DeviceInfo {
    int index = 0;
    std::string name;
    std::size_t memory_bytes = 0;
    int sm_count = 0;
    int cc_major = 0, cc_minor = 0;
};
bool built();                             // compiled with CUDA
std::vector<DeviceInfo> devices();        // empty when none can be used
std::string unavailable_reason();         // why devices() is empty
std::size_t free_memory_bytes(int device);
// Throws NoDevice when there is no GPU, OutOfMemory naming the bytes asked for, Runtime on CUDA errors.
void run_layer(const LayerSpec& spec, const LayerRunOptions& opt, LayerRun& run);
}  // namespace gpu

// Bytes the layer's tensors need (inputs, weights, packed buffers), for memory checks before a run.
std::size_t layer_bytes(const LayerSpec& spec, bool with_experts);

}  // namespace moe
