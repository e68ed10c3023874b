// Lesson experiments: what a lesson's reveal times beyond the engine's own stages. Each experiment runs on one
// finished Result (its scenario and the loads its routing produced) and adds named numbers to that run:
//   expert-ffn  each expert's FFN timed alone at this run's loads, the whole expert stage, the device's own
//               measured matrix rate and memory bandwidth, and a sweep of one expert's time over tokens per expert
//   a2a         the all-to-all time of this run's per-rank traffic and the link utilisation Util(msg) over sizes
//   overlap     the all-to-all overlapped with the expert GEMMs in c chunks (pieces from expert-ffn and a2a)
//   replicate   hot experts copied and placed by MegaScale-Infer's greedy rule; busiest GPU before and after
//   packing     the packing strategies' times: the GPU's measured kernels, else each strategy's bytes modelled
//   load-drift  decode and prefill loads over consecutive batches, and a stale rebalancing plan (lesson_drift.hpp)
// With a GPU the times are measured on it (NCCL over real GPUs for a2a, where two or more exist); without one, they
// come from a roofline or an alpha-beta link model whose constants are the repository's recorded measurements,
// and every number says so through its source.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "demos/lesson_numbers.hpp"
#include "demos/placement.hpp"
#include "kernels/common/bf16.hpp"
#include "demos/result.hpp"

namespace demos {

// One timed figure with its run-to-run noise.
struct TimedFigure {
    std::string name;  // the lesson number it backs, e.g. "hot_expert_ms"
    double min_ms = 0, median_ms = 0, p95_ms = 0;
    int repeats = 0;
    lesson::Source source = lesson::Source::Modeled;
};

// A curve point: x (tokens per expert, or bytes per rank) against a timed figure and a derived y.
struct CurvePoint {
    double x = 0;
    TimedFigure time;
    double y = 0;        // expert-ffn: achieved TFLOP/s; a2a: Util(msg) in 0..1
    double roof = 0;     // expert-ffn: the roofline's TFLOP/s at this x (measured ceilings); a2a: the model's Util
};

struct ExperimentResult {
    std::string name;
    std::map<std::string, lesson::Number> scalars;  // read by lessons like any other number of the run
    std::map<std::string, std::vector<double>> vectors;
    std::vector<TimedFigure> timings;  // every timed figure behind the scalars (min, median, p95)
    std::vector<CurvePoint> curve;     // expert-ffn: time over tokens per expert; a2a: Util over message size
    std::string curve_x, curve_y;      // axis names for printing
    std::vector<std::string> notes;    // where the numbers came from, in plain words
};

// The experiments a lesson's [reveal] experiment may name.
const std::vector<std::string>& experiment_names();
bool is_experiment(const std::string& name);

// The numbers each experiment adds (name, unit, help, vector) and the experiment that fills them.
struct ExperimentMetric {
    lesson::MetricInfo info;
    const char* experiment;
};
const std::vector<ExperimentMetric>& experiment_metrics();

// Runs `name` on a finished run. `params` are the lesson's parameters (replicate reads `copies`). The backend is
// the Result's: "cuda" measures on the GPU, anything else models. Throws BadInput for an unknown name.
ExperimentResult run_experiment(const std::string& name, const Result& r, const std::map<std::string, double>& params);

// ---- the pieces, exposed for tests -------------------------------------------------------------------------

// The busiest GPU's expert time under `placement`: every GPU's experts and copies timed on this GPU one share at a
// time (the run's backend is cuda), else on the recorded H100 roofline (modelled).
TimedFigure busiest_gpu_time(const Result& r, const std::vector<std::vector<PlacedCopy>>& placement,
                             const std::string& name);

// The modelled all-to-all of `bytes_per_rank` (alpha-beta fit of the 2x H200 NCCL curve in kernels/nccl/README.md).
double modeled_a2a_ms(double bytes_per_rank, int ranks);
// Chunked overlap: c transfers of bytes/c overlapped with c GEMM chunks of te/c: the first transfer, then c − 1
// steps of the slower of the two, then the last GEMM chunk.
double chunked_ms(double tc_chunk_ms, double te_ms, int chunks);

}  // namespace demos
