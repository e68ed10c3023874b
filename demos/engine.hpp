// Engine: runs a Scenario's demo on a backend and fills a Result. Plain C++: no ImGui, no GL.
// Front ends call run(); it throws moe::Error (BadInput, NoDevice, OutOfMemory, Runtime).
#pragma once
#include <atomic>
#include <functional>
#include <string>

#include "demos/result.hpp"
#include "demos/scenario.hpp"

namespace demos {

struct RunControl {
    std::function<void(float fraction, const std::string& what)> progress;
    const std::atomic<bool>* cancel = nullptr;
    std::string dump_dir;  // write .npy inputs and outputs when not empty
    // The pipeline demo on the cuda backend runs the ping-pong schedule on GPU pools (and calibrates the model
    // there); false keeps it modelled, for a cheap first run such as the app's routing job.
    bool measure_pipeline = true;
};

// Which backend a scenario's `backend` resolves to here ("cpu" or "cuda"), with the reason when auto falls back.
std::string resolve_backend(const Scenario& s, std::string* why = nullptr);

Result run(const Scenario& s, Demo demo, const RunControl& ctl = {});

// min / median / p95 of one stage's timed repeats, with their provenance.
StageTime summarize(const moe::StageSamples& s, Provenance p);

}  // namespace demos
