// Each expert's FFN timed alone at its load, for the loads view's overlay (issue 10, lesson 1): the straggler in
// microseconds beside the straggler in tokens. It runs on the runner thread through the lesson experiment
// "expert-ffn" (demos/experiments.hpp), one expert at a time: on the GPU each expert is measured there (min,
// median and p95 over the experiment's repeats); without one the experiment's roofline model gives the figures,
// and they say `modeled`.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "demos/experiments.hpp"
#include "demos/result.hpp"

namespace moelab_gui {

struct ExpertTimes {
    demos::Scenario scenario;                    // the scenario whose routing gave the loads
    std::string backend, device;                 // where the routing ran ("cuda": the experts are timed there)
    std::vector<std::int64_t> loads;             // [E] kept tokens per expert
    std::vector<demos::TimedFigure> per_expert;  // [E] each expert's FFN alone at its load
    demos::lesson::Source source = demos::lesson::Source::Modeled;
    std::vector<std::string> notes;  // where the numbers came from, in the experiment's words
    int hottest = 0;                 // the expert with the most tokens

    double mean_ms() const;     // mean over experts of the median times
    double time_ratio() const;  // the hottest expert's median over the mean: the straggler factor in time
};

// Times every expert of the finished run `r` (its loads, hidden and ffn, on its backend). Equal loads share one
// timing. `stop` is asked before each expert: when it says so, the job ends with moe::Error("cancelled").
// `progress` gets the fraction done and what is being timed.
ExpertTimes time_experts(const demos::Result& r, const std::function<bool()>& stop,
                         const std::function<void(float, const std::string&)>& progress);

}  // namespace moelab_gui
