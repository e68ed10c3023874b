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

}  // namespace demos
