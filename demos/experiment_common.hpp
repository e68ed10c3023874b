// Internal to the lesson experiments (demos/experiments.cpp, demos/experiment_a2a.cpp): the recorded ceilings, how
// a timed figure goes into a result, and the expert FFN times the overlap experiment builds on.
#pragma once
#include <string>
#include <vector>

#include "demos/experiments.hpp"

namespace demos::experiment {

using lesson::Number;
using lesson::Source;

// The recorded ceilings used when no GPU is present: the H100 run of record in kernels/bench/RESULTS.md
// (measured copy bandwidth and cuBLAS bf16 GEMM rate). The link's are in experiment_a2a.cpp.
constexpr double kRecordedTflops = 798, kRecordedGbps = 3000;

TimedFigure modeled(const std::string& name, double ms);
void put(ExperimentResult& x, const std::string& name, double v, Source s);
void put_timed(ExperimentResult& x, const std::string& base, const TimedFigure& f, Source s);
bool on_gpu(const Result& r);  // the run's backend times on this machine's GPU

// Per-expert times: measured on the GPU, or the recorded roofline.
struct ExpertTimes {
    std::vector<TimedFigure> per_expert;  // [E], each expert alone at its load
    TimedFigure stage;                    // all experts of the run in one experts stage, one device
    std::vector<CurvePoint> sweep;        // one expert over tokens per expert
    double tflops = kRecordedTflops, gbps = kRecordedGbps;
    Source src = Source::Modeled;
};
ExpertTimes expert_times(const Result& r, bool with_sweep);
// Interpolates one expert's time at n rows from the sweep, log-log between points (linear beyond the last).
double sweep_ms(const std::vector<CurvePoint>& sweep, double n);

// The all-to-all and chunked-overlap experiments (demos/experiment_a2a.cpp).
void run_a2a(const Result& r, ExperimentResult& x);
void run_overlap(const Result& r, ExperimentResult& x);

}  // namespace demos::experiment
