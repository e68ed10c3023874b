// The benchmark harness behind `moelab bench`: checks each GPU stage against the CPU reference, then times it
// (median and p95 of many repeats after warm-up, inputs rotated past L2) against floors measured in the same run.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/api.hpp"

namespace moe::bench {

struct Shape {
    std::string name;  // S1, S2, S3 or "custom"
    std::int64_t tokens;
    int hidden, experts, top_k, ffn;
};
// classroom T=4096 d=1024 E=16 k=2 F=2816 (the app's default scenario); S1 T=16384 d=4096 E=64 k=8 F=1408;
// S2 T=4096 d=4096 E=8 k=2 F=14336; S3 T=16384 d=7168 E=256 k=8 F=2048.
const std::vector<Shape>& standard_shapes();
// The expert sweep: tokens per expert 1, 8, 64, 512, 4096 on the classroom, S1 and S3 shapes (T = tpe·E/k).
const std::vector<int>& sweep_tokens_per_expert();
std::vector<Shape> experts_sweep_shapes();

struct Options {
    std::vector<std::string> stages;  // route, dispatch, experts, combine, layer
    std::vector<Shape> shapes;
    std::vector<Strategy> strategies;        // dispatch variants
    std::vector<std::string> experts_impls;  // grouped, streams, serial, fused, decode, mid, batched, auto, nopack
    std::string skew = "uniform";
    // dispatch: every strategy over skew {uniform, zipf:1.2, hot:20} × T {256, 4096, 16384}; experts: auto, decode
    // (up to 64 tokens per expert; its two load flavors up to 8), mid with 64- and 128-token tiles (up to 64),
    // batched, grouped, streams (serial from 512) over experts_sweep_shapes().
    bool sweep = false;
    bool probes = false;  // experts: also the probe row that matches the roofline's bound (the sweep sets it)
    // experts: also auto with round-robin routing at FLOP-bound sizes (probe-balanced; the sweep sets it)
    bool balanced = false;
    int warmup = 10;
    int repeats = 50;
    bool check = true;
    std::uint64_t seed = 1;
    std::function<void(const std::string&)> log;  // progress lines (stderr in the CLI)
};

// The two ceilings the floors divide by, measured at the start of the run.
struct Ceilings {
    std::string device;
    double copy_gbps = 0;    // device-to-device copy, bytes read + written
    double read_gbps = 0;    // a kernel of 16-byte streaming loads, bytes read (the expert weights' ceiling)
    double gemm_tflops = 0;  // bf16 GEMM through cuBLAS, 8192³
    double gemm_mhz = 0;     // the mean SM clock while it ran (0: not sampled), and the whole description
    std::string gemm_clocks;
    double l2_mb = 0;
    int sms = 0;
};
Ceilings measure_ceilings();

struct Row {
    std::string stage, shape, variant, skew;
    std::string group;  // "" for the standard shapes, "experts sweep" / "dispatch sweep" for the sweeps
    std::int64_t tokens = 0;
    int hidden = 0, experts = 0, top_k = 0, ffn = 0;
    double median_ms = 0, p95_ms = 0, min_ms = 0;
    int repeats = 0;
    double bytes = 0, flops = 0;  // what the floor counts
    double floor_ms = 0;
    double gbps = 0, tflops = 0;  // achieved on those counts
    double pct_floor = 0;         // floor / time
    std::int64_t wrong = -1;      // mismatching elements in the check; -1 when not checked
    std::string note;
    // experts: mean kept tokens per expert, the floor's two terms (weight bytes / read ceiling, FLOPs / GEMM
    // ceiling) and which one bounds it ("weights" or "math").
    double tokens_per_expert = 0, weight_ms = 0, math_ms = 0;
    std::string bound;
    // The SM clock (mean MHz, 0: not sampled) and board power (W) while the timed runs ran, and their description
    // ("SM 1,410 MHz of 1,980, 693 W of 700, power cap"), also at the end of the note.
    double sm_mhz = 0, power_w = 0;
    std::string clocks;
    // Not empty: the row's stage or variant failed at run time (out of GPU memory, a CUDA error) with this message,
    // and nothing above was measured. The run goes on with the next one (harness.cpp, record_failure).
    std::string error;
};

// Runs every requested stage; on_row sees each row as soon as it is measured.
std::vector<Row> run(const Options& opt, const Ceilings& ceil, const std::function<void(const Row&)>& on_row);

// The measured roofline of the expert FFN for the app and the decode-vs-prefill lesson: the engine's choice (auto)
// timed at each tokens-per-expert value on one shape (T = tpe·E/k), beside the two ceilings measured first. Each
// point is also checked against the CPU reference on sampled rows (wrong > 0: do not trust the point).
struct RooflinePoint {
    double tokens_per_expert = 0;
    std::string impl;  // the implementation auto ran
    double median_ms = 0, p95_ms = 0;
    double weight_ms = 0, math_ms = 0, floor_ms = 0;  // the roofline at this x: max(weight_ms, math_ms)
    std::int64_t wrong = -1;
    std::string clocks;  // the SM clock and power while it was timed (clocks.hpp); "" when not sampled
    // The sweep's probe at this x (bench_experts): the same work without the FFN around it, "stream" (the weight
    // bytes read alone, in the FFN's two dependent kernels) where the weights bound x, "dense" (cuBLAS over all rows
    // as one expert's) where the FLOPs do; "" and 0 when it was not timed.
    std::string probe;
    double probe_ms = 0;
    // Where the FLOPs bound x: auto on the same tokens routed round-robin, every expert T·k/E rows (probe-balanced);
    // 0 when not timed
    double balanced_ms = 0;
};
struct Roofline {
    Ceilings ceilings;
    Shape shape;
    std::vector<RooflinePoint> points;
};
Roofline experts_roofline(const Shape& shape, const std::vector<int>& tokens_per_expert, int repeats = 10);

// Whether `name` is one of the expert sweep's tuning variants of an implementation: decode-f1|3 (weight-load
// flavor), mid-t32|64|128 (tokens per tile), wgmma-t64|128[-n128|256][-f0|1][-e0|1] (tokens and weight rows per tile,
// one or two launches, output stored from registers or through shared memory). `--experts-impl` takes them beside the
// implementations' own names.
bool is_tuning_variant(const std::string& name);

}  // namespace moe::bench
