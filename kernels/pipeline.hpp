// The measured ping-pong pipeline of MegaScale-Infer (Section 4.1, Figure 4) on real GPU pools.
//
//   attention pool                                   expert pool
//   [combine(l-1) · attention(l) · route · pack] ──A2E──▶ [experts(l)] ──E2A──▶ [combine(l) · attention(l+1) …]
//
// One GPU: the pools are SM partitions made with CUDA green contexts (driver API fetched through the runtime, so
// the binary starts without libcuda); where they are missing, two streams share the whole device and say so.
// Several GPUs: the pools are whole devices, micro-batch i on attention device i mod n_a, one expert device (M2N).
// Links: device-to-device (or peer) copies on their own streams, optionally paced to emulate a slower link.
// Every span is timed with CUDA events; nothing inside an iteration waits on the host.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/api.hpp"

namespace moe::pipeline {

enum Lane { kAttention = 0, kA2E = 1, kExperts = 2, kE2A = 3, kLanes = 4 };
inline const char* lane_name(int lane) {  // attention | a2e | experts | e2a
    static const char* names[] = {"attention", "a2e", "experts", "e2a"};
    return lane >= 0 && lane < kLanes ? names[lane] : "?";
}

struct Spec {
    LayerSpec layer;    // tokens = the whole decode batch B (one new token per sequence)
    int context = 512;  // KV positions per sequence
    int q_heads = 16;
    int kv_groups = 4;
    int micro_batches = 1;      // m: the batch is split into m micro-batches of B/m sequences (the last takes the rest)
    int layers = 1;             // L
    int attention_sms = 0;      // one GPU: SMs of the attention pool; 0 = half the device
    int attention_devices = 1;  // several GPUs: attention on devices [0, n), experts on device n
    bool multi_device = false;  // use whole devices as pools (needs attention_devices + 1 GPUs)
    double pace_gbps = 0;       // > 0: pace each copy at this rate (emulated link)
    bool colocated = false;     // baseline: attention then experts for each micro-batch on one whole-GPU stream
    bool time_spans = true;     // false: time only the iteration (to measure what the span events cost)
    int warmup = 1;
    int repeats = 5;
    bool keep_output = false;  // download the last layer's output [B, d] of the last repeat
    bool check_plan = true;    // verify the device-side routing of the timed run equals the plan pass
};

struct Span {
    int lane = 0, layer = 0, micro_batch = 0, device = 0;
    double start_ms = 0, end_ms = 0;  // from the iteration's start
    double bytes = 0;                 // a2e/e2a: bytes copied
};

struct Pools {
    std::string kind;    // green-contexts | shared-streams | devices
    std::string why;     // why green contexts were not used, when kind == shared-streams
    int device_sms = 0;  // SMs of the (attention) device
    int attention_sms = 0, expert_sms = 0;
    std::vector<int> attention_devices;
    int expert_device = 0;
};

struct Run {
    std::string device;
    Pools pools;
    std::vector<double> iteration_ms;     // one per timed repeat
    std::vector<Span> spans;              // of the repeat with the median iteration time
    std::vector<std::int64_t> mb_tokens;  // sequences per micro-batch
    std::vector<double> mb_rows;          // packed rows per micro-batch (layer 0)
    std::vector<bf16_t> output;           // [B, d] when keep_output
    std::string experts_impl;             // which expert FFN implementation ran
};

// The link alone, for calibrating the model's Tc and Util(msg): the median copy time at each size.
struct Probe {
    std::vector<double> copy_bytes, copy_ms;
    std::string device;
};

// Seeds of the pipeline's generated tensors: a splitmix of (seed, a, b), the same on host and device.
inline std::uint64_t seed_for(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
    std::uint64_t z = seed ^ (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full + 0x165667B19E3779F9ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
// What each tensor's seed is made from (seed_for(spec.layer.seed, tag, index)).
constexpr std::uint64_t kSeedX = 0x78, kSeedKV = 0x4B56, kSeedGate = 0x6A7E, kSeedW1 = 0xE1, kSeedW2 = 0xE2;

// Micro-batch i holds sequences [B·i/m, B·(i+1)/m).
inline std::int64_t micro_batch_start(std::int64_t tokens, int m, int i) { return tokens * i / m; }

namespace cpu {
// The reference of what one iteration computes, micro-batch by micro-batch, layer by layer: x → attention →
// route → capacity → pack → expert FFN → combine → the next layer's x. Single-device attention (one KV cache
// for the batch). out: [B, d], the last layer's output.
void reference(const Spec& spec, std::vector<bf16_t>& out, int threads = 0);
}  // namespace cpu

namespace gpu {
bool green_contexts_available(std::string* why);  // the driver offers SM partitions
void run(const Spec& spec, Run& run);
// Times one copy of each size between the pools of `spec` (the same device, or attention device 0 → the expert
// device), paced as the pipeline's links are (kernels/cuda/links.cu). The attention and expert costs are
// calibrated from solo runs of the pipeline itself (demos/pipeline_measured.cpp).
void probe(const Spec& spec, const std::vector<double>& copy_bytes, Probe& out);
}  // namespace gpu

}  // namespace moe::pipeline
