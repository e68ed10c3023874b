// Discrete-event model of MegaScale-Infer's ping-pong pipeline: m micro-batches shuttle through
// attention → A2E → experts → E2A for each of L layers. Its timeline has the same shape as a measured one.
#pragma once
#include <vector>

#include "demos/result.hpp"

namespace demos {

struct PipelineInput {
    int layers = 1;
    int micro_batches = 1;
    double ta_ms = 0, te_ms = 0, tc_ms = 0;  // per micro-batch
};

// Stage times per micro-batch from a scenario through the paper's linear forms:
//   B = T, ba = B/(m·n_a), be = B·k/(m·E), Ta = k1·ba + k2, Te = k3·be + k4 (µs),
//   Tc = max(ba·d·k·b, be·d·b)/link bandwidth — or the scenario's direct ta/te/tc when given.
PipelineInput pipeline_input(const Scenario& s);

// Simulates and returns the summary; appends spans (lanes attention, a2e, experts, e2a) to `spans`.
PipelineSummary simulate_pipeline(const PipelineInput& in, std::vector<Span>* spans);

// Where to move the split between the pools (modeled): each pool's stage time is taken to scale as 1/its SMs
// (Ta·a and Te·e constant, which the calibrations at 88 | 44, 104 | 28 and 120 | 12 on the H200 held within 0.1%),
// and the split in steps of `step` SMs that minimises max(Ta, Te) is proposed. better: it beats the current split's
// max(Ta, Te) by at least 5% (else the current split is as balanced as the steps allow).
struct SplitAdvice {
    bool valid = false;  // the inputs allow an answer (times and SM counts positive, step fits the device)
    bool better = false;
    int attention_sms = 0, expert_sms = 0;  // the proposed split (the current one when !better)
    double ta_ms = 0, te_ms = 0;            // the stage times the model gives there
    bool attention_bound = false;           // at the current split attention is the slower stage
};
SplitAdvice advise_split(double ta_ms, double te_ms, int attention_sms, int expert_sms, int device_sms, int step = 8);

}  // namespace demos
