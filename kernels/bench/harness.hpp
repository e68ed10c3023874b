// Internals of the benchmark harness shared by its stage files: timing with rotation and graph replay, floors,
// host-side slices of the generated tensors, and the per-shape state that stages reuse (weights are 22 GB on S3).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kernels/bench/bench.hpp"
#include "kernels/bench/clocks.hpp"
#include "kernels/common/error.hpp"
#include "kernels/cuda/launchers.hpp"

namespace moe::bench::detail {

struct Timing {
    double median_ms = 0, p95_ms = 0, min_ms = 0;
    int repeats = 0;
    bool graph = false;  // timed as CUDA graph replays (launch gaps of many small kernels removed)
    ClockStats clocks;   // the SM clock and the board's power while the timed runs ran (clocks.hpp)
};

// body(set) enqueues one run on stream s reading and writing rotation set `set`. With `graph`, each set's run is
// captured once and replayed; if capture fails the runs are launched directly.
Timing time_runs(Stream s, int sets, int warmup, int repeats, bool graph, const std::function<void(int)>& body);

// How many copies of a working set of `bytes` make consecutive runs miss L2 (at least 2 when it fits twice).
int rotation_sets(double bytes, double l2_bytes, double budget_bytes);

// Fills floor_ms, gbps, tflops and pct_floor from bytes, flops and the timing.
void finish_row(Row& r, const Timing& t, const Ceilings& c);

// Host copy of generated elements [base, base + n) of an RNG stream (threads over chunks).
std::vector<bf16_t> host_slice(std::uint64_t seed, std::uint64_t stream, std::int64_t base, std::int64_t n,
                               float scale);

// Device state of one shape, made when a stage first needs it.
struct ShapeState {
    Shape shape;
    std::uint64_t seed = 1;
    std::string skew;
    std::string group;  // Row::group of its rows
    gpu::DeviceBuffer<bf16_t> w1, w2, wg;
    gpu::DeviceBuffer<float> logp;
    std::string best_strategy = "scan", best_impl = "auto";
    double best_dispatch_ms = 1e30, best_experts_ms = 1e30;
    // nopack: dispatch's plan alone and the FFN gathering x's rows (the layer's other composition)
    double nopack_dispatch_ms = 1e30, gather_experts_ms = 1e30;
    void ensure_weights();
};

// An experiment's on/off knob: set to 1.
bool env_on(const char* name);
// Routing on the GPU for a shape (popularity with the state's skew): ids [T·k], weights [T·k]. MOELAB_BENCH_BALANCED=1
// (an experiment's knob) then overwrites the ids with round_robin_ids.
void make_routing(ShapeState& st, gpu::DeviceBuffer<std::int32_t>& ids, gpu::DeviceBuffer<float>& w, Stream s);
// ids [T·k] routed round-robin, token t's j-th expert (t·k + j) mod E: every expert gets T·k/E rows (when E divides
// T·k), the expert FFN's work without random routing's uneven counts. Returns once they are on the device.
void round_robin_ids(const Shape& sh, gpu::DeviceBuffer<std::int32_t>& ids);

using Emit = std::function<void(Row)>;
void bench_route(ShapeState& st, const Options& opt, const Ceilings& c, const Emit& emit);
void bench_dispatch(ShapeState& st, const Options& opt, const Ceilings& c, const Emit& emit);
void bench_experts(ShapeState& st, const Options& opt, const Ceilings& c, const Emit& emit);
void bench_combine(ShapeState& st, const Options& opt, const Ceilings& c, const Emit& emit);
void bench_layer(ShapeState& st, const Options& opt, const Ceilings& c, const Emit& emit);

Row base_row(const ShapeState& st, const char* stage, const std::string& variant);

// Called in a catch block for an error of a stage or a variant: records it as row r with r.error set and returns
// true, so that the run goes on and keeps what it measured; returns false (the caller rethrows) for bad input, a
// missing device, or a CUDA error that left the device unusable (every later stage would fail the same way).
bool record_failure(Row r, const Error& e, const Emit& emit);

}  // namespace moe::bench::detail
