// The roofline of the expert FFN over tokens per expert, for the app's roofline panel and the decode-vs-prefill
// lesson: the two floors as lines (weights read once at the read ceiling; FLOPs at the GEMM ceiling), and the
// engine's own choice (auto) timed at the sweep's points on a GPU. Without one the lines come from the ceilings
// recorded in kernels/bench/RESULTS.md and say `modeled`; no point is invented then.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "demos/experiments.hpp"
#include "demos/lesson_numbers.hpp"
#include "demos/scenario.hpp"

namespace demos {

// The sizes the FFN's time depends on: width d, expert width F, experts E, top-k. Tokens only move the point.
struct RooflineShape {
    int hidden = 0, ffn = 0, experts = 0, top_k = 0;
    bool operator==(const RooflineShape& o) const {
        return hidden == o.hidden && ffn == o.ffn && experts == o.experts && top_k == o.top_k;
    }
    bool operator!=(const RooflineShape& o) const { return !(*this == o); }
};
RooflineShape roofline_shape(const Scenario& s);

// The two ceilings the floors divide by.
struct RooflineCeilings {
    double read_gbps = 0;            // bytes read per second (GB/s) that the weights stream at
    double gemm_tflops = 0;          // bf16 GEMM rate
    std::string bandwidth = "read";  // which bandwidth: "read" (16-byte loads) or "copy" (read + write)
    std::string device;              // where they were measured
    lesson::Source source = lesson::Source::Modeled;  // measured-gpu here, or recorded elsewhere (modeled)
    std::string origin;                               // one line: where the numbers come from
};
// A run in kernels/bench/RESULTS.md (NVIDIA H200, 2026-11-29 20:11 UTC; the later runs of record are within 2%): read
// 4473 GB/s, bf16 GEMM 785 TFLOP/s. Used without a GPU, labelled modeled.
RooflineCeilings recorded_ceilings();

// The roofline at one x.
struct RooflineFloor {
    double tokens_per_expert = 0;
    double active_experts = 0;  // experts with a token (expected under uniform routing): their weights are read
    double weight_ms = 0;       // active experts × 3·F·d bf16 weights (2 bytes each) / read ceiling
    double math_ms = 0;         // 2 · (tokens per expert · E) rows · 3·F·d / GEMM ceiling
    double roof_ms() const { return weight_ms > math_ms ? weight_ms : math_ms; }
    bool weight_bound() const { return weight_ms >= math_ms; }
};

// Experts that get at least one of T = tpe·E/k tokens when each token picks k distinct experts uniformly:
// E·(1 − (1 − k/E)^T). Every expert once a few tokens each are routed.
double expected_active_experts(int experts, int top_k, double tokens_per_expert);
// Throws BadInput naming the field for a shape or ceilings that cannot give a roofline.
RooflineFloor roofline_floor(const RooflineShape& s, const RooflineCeilings& c, double tokens_per_expert);
// Tokens per expert where the two floors meet once every expert is active: the GEMM rate over the read ceiling in
// FLOP per byte (each weight byte feeds one FLOP per token), whatever d, F and E are.
double ridge_tokens_per_expert(const RooflineCeilings& c);

// A point timed on the GPU: what auto ran there and its % of the roofline.
struct RooflinePoint {
    double tokens_per_expert = 0;
    std::string impl;  // the implementation auto chose ("" when not known)
    double median_ms = 0, p95_ms = 0;
    double floor_ms = 0;      // the roofline at this point (its own active experts and ceilings)
    std::int64_t wrong = -1;  // elements outside tolerance against the CPU reference; -1: not checked
    lesson::Source source = lesson::Source::Modeled;
    std::string clocks;  // measured: the SM clock and board power while it was timed ("" when not sampled)
    // The same work without the FFN around it, timed beside the point (moe::bench::RooflinePoint): "stream", the
    // weight bytes read alone as the FFN reads them, or "dense", cuBLAS over all rows as one expert's; "": none.
    std::string probe;
    double probe_ms = 0;
    // Where the FLOPs bound the point: auto on the same tokens routed round-robin, every expert T·k/E rows, so no
    // expert's last token tile holds only a few (moe::bench::RooflinePoint::balanced_ms); 0: not timed.
    double balanced_ms = 0;
    // The PyTorch peer on the same shape and tokens in the same run (kernels/bench/torch_peer.py), where a saved
    // sweep has it: its name ("torch._grouped_mm") and median; 0: not timed.
    std::string peer;
    double peer_ms = 0;
    double pct_of_roofline() const { return median_ms > 0 ? 100.0 * floor_ms / median_ms : 0; }
};

struct ExpertRoofline {
    RooflineShape shape;
    std::string shape_name;  // a saved sweep's name for the shape ("classroom", "S1"); "" otherwise
    RooflineCeilings ceilings;
    std::vector<RooflineFloor> lines;   // the floors on a log grid over [x_lo, x_hi]
    std::vector<RooflinePoint> points;  // timed points (none when modeled)
    lesson::Source source = lesson::Source::Modeled;
    std::vector<std::string> notes;  // where the numbers came from, in plain words
    // "" when measured here (or modeled); else where and when a saved sweep was measured ("NVIDIA H200, 2026-12-01
    // 04:29 UTC"): its points are measured-gpu, but not on this machine (demos/roofline_saved.hpp).
    std::string recorded;
};

// The sweep's tokens per expert: 1, 8, 64, 512, 4096 (the same as `moelab bench experts --sweep`).
const std::vector<int>& roofline_sweep();
// The lines alone (pure): the floors of `s` under `c` at `per_octave` points per doubling from x_lo to x_hi.
ExpertRoofline roofline_lines(const RooflineShape& s, const RooflineCeilings& c, double x_lo = 1, double x_hi = 4096,
                              int per_octave = 4);
// Without a GPU: the lines under the recorded ceilings, labelled modeled.
ExpertRoofline modeled_roofline(const RooflineShape& s);
// On the GPU: moe::bench::experts_roofline at each sweep point (ceilings measured first, each point checked
// against the CPU reference), one point at a time so that `stop` ends it between points ("cancelled").
// Throws NoDevice without a CUDA build or a GPU.
ExpertRoofline measure_roofline(const RooflineShape& s, const std::function<bool()>& stop,
                                const std::function<void(float, const std::string&)>& progress);
// The expert-ffn experiment's sweep (one expert over its rows, ceilings from the experiment) as a roofline of one
// expert (E = k = 1) of width d, F. Empty lines when the experiment has no curve.
ExpertRoofline roofline_of_experiment(const ExperimentResult& x, int hidden, int ffn);

// One timed size against the expert FFN's targets (PERF.md): the engine's % of its roofline and its ratio to the
// PyTorch peer (0: no peer timed).
struct TargetPoint {
    std::string label;  // "classroom 8": the shape and tokens per expert
    double pct_of_roofline = 0, vs_peer = 0;
};
// How many sizes reach min_pct% of their roofline and min_ratio× the peer (of those with a peer), naming the ones
// short: "9 of 15 sizes at >= 80% of the roofline (short: classroom 1 71.7%, ...); 12 of 15 at >= 1.2x PyTorch
// (short: S1 4096 1.14x, ...)". "" for no sizes.
std::string targets_line(const std::vector<TargetPoint>& sizes, double min_pct = 80.0, double min_ratio = 1.2);

}  // namespace demos
