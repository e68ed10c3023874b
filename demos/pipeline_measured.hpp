// The measured ping-pong pipeline from a Scenario: runs it on GPU pools (kernels/pipeline.hpp), fits the model's
// constants from solo runs of each stage on the same pools, and fills the Result with both timelines.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "demos/pipeline.hpp"
#include "demos/result.hpp"
#include "kernels/pipeline.hpp"

namespace demos {

// y = slope·x + intercept by least squares; r2 is the coefficient of determination.
struct LineFit {
    double slope = 0, intercept = 0, r2 = 0;
    int points = 0;
};
LineFit fit_line(const std::vector<double>& x, const std::vector<double>& y);

// The model's constants measured on one machine.
struct Calibration {
    std::string device;
    std::string pools;  // what the stages ran on
    int attention_sms = 0, expert_sms = 0;
    double k1 = 0, k2 = 0;                      // Ta = k1·ba + k2 (µs; ba = sequences per micro-batch)
    double k3 = 0, k4 = 0;                      // Te = k3·be + k4 (µs; be = tokens per expert per micro-batch)
    double link_gbps = 0, link_latency_us = 0;  // Tc = latency + bytes / link_gbps (A2E and E2A spans)
    std::vector<double> ba, ta_us, be, te_us, tc_bytes, tc_us;  // the points fitted
    std::vector<double> msg_bytes, msg_util;                    // Util(msg) from plain copies

    std::string to_toml() const;
    static Calibration from_toml(const std::string& text, const std::string& source);
    static Calibration load(const std::string& path);  // BadInput naming the file and key
    void save(const std::string& path) const;
};

// The pipeline kernel spec of a scenario.
moe::pipeline::Spec pipeline_spec(const Scenario& s);

// The model's stage times per micro-batch at scenario s from a calibration (ba = B/m, be = B·k/(m·E)).
PipelineInput calibrated_input(const Scenario& s, const Calibration& c);

using Progress = std::function<void(float, const std::string&)>;

// Solo runs (m = 1, L = 1, so nothing overlaps) at `batches` sequences on the scenario's pools, plus plain copies
// from 4 KiB to 64 MiB for Util(msg); fits k1..k4 and the link.
// multi_device: attention on GPU 0 and experts on GPU 1, the links are peer copies.
Calibration calibrate(const Scenario& s, const std::vector<std::int64_t>& batches, const Progress& progress = {},
                      bool multi_device = false);

// Runs the scenario's pipeline on the GPU and fills r.timeline (measured spans), r.measured_pipeline, and the
// calibrated model (r.pipeline, r.model_timeline). Throws NoDevice without a GPU.
void run_measured_pipeline(const Scenario& s, Result& r, const Progress& progress = {});

// The measured summary of spans: Ta/Te/Tc medians, busy fractions over `iteration_ms`.
PipelineSummary summarize_spans(const std::vector<moe::pipeline::Span>& spans, int layers, int micro_batches,
                                double iteration_ms);

}  // namespace demos
