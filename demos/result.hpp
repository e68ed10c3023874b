// Result: what one engine run produced. Every number carries its provenance, and the front ends
// (GUI views, CLI printers, lesson checks) read nothing else.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "demos/scenario.hpp"

namespace demos {

enum class Provenance { MeasuredGpu, MeasuredCpu, Emulated, Modeled };
const char* provenance_name(Provenance p);  // measured-gpu | measured-cpu | emulated | modeled

struct StageTime {
    std::string stage;
    double min_ms = 0, median_ms = 0, p95_ms = 0;
    int repeats = 0;
    Provenance provenance = Provenance::MeasuredCpu;
};

struct Span {
    std::string lane;   // attention | a2e | experts | e2a, or a stage name for a measured layer
    std::string label;  // e.g. "A l0 mb1"
    int layer = 0;
    int micro_batch = 0;
    int rank = 0;
    double start_ms = 0, end_ms = 0;
    Provenance provenance = Provenance::Modeled;
};

struct PipelineSummary {
    bool present = false;
    int layers = 0, micro_batches = 0;
    double ta_ms = 0, te_ms = 0, tc_ms = 0, tf_ms = 0;
    double total_ms = 0;           // simulated iteration time
    double closed_form_ms = 0;     // (Ta+Te+2Tc) + Tf(mL−1)
    double min_micro_batches = 0;  // 2(1 + Tc/Tf)
    bool comm_hidden = false;      // m ≥ 2(1 + Tc/Tf)
    double attention_util = 0, expert_util = 0;
    Provenance provenance = Provenance::Modeled;
};

// The measured ping-pong pipeline (demo pipeline on the cuda backend): the pools it ran on, its iteration time,
// and the model's constants fitted on this machine from solo runs of each stage (demos/pipeline_measured.hpp).
struct PipelineRun {
    bool present = false;
    std::string pools;       // green-contexts | shared-streams | devices | colocated
    std::string pools_note;  // why green contexts were not used, when they were not
    int device_sms = 0, attention_sms = 0, expert_sms = 0;
    StageTime iteration;       // min / median / p95 of the timed repeats
    double tokens_per_s = 0;   // B / median iteration
    PipelineSummary measured;  // Ta, Te, Tc = medians of the spans; total = median iteration; busy fractions
    bool link_paced = false;   // A2E/E2A paced at --link-gbps: those spans are emulated
    // Calibration: Ta = k1·ba + k2, Te = k3·be + k4 (µs), Tc = latency + bytes / link bandwidth.
    double k1 = 0, k2 = 0, k3 = 0, k4 = 0;
    double link_gbps = 0, link_latency_us = 0;
    std::vector<double> msg_bytes, msg_util;  // the link's utilisation against message size (measured copies)
    double model_error = 0;                   // (modelled − measured) / measured iteration time
    std::string experts_impl;
};

struct Result {
    Scenario scenario;
    Demo demo = Demo::Layer;
    std::string backend;  // cpu | cuda
    std::string device;
    // The expert FFN implementation that ran (decode, grouped, ...; "reference" on the CPU), "" when none ran.
    std::string experts_impl;
    std::vector<std::string> notes;  // plain-language caveats (CPU reference in use, emulated ranks, …)
    // The caveats the front ends act on, as data (the notes above say them in words): a bit per Caveat.
    enum class Caveat : unsigned {
        CpuReference = 1u,     // numbers from the CPU reference, not a GPU
        EmulatedRanks = 2u,    // several ranks played by one device; traffic counted, link times modelled
        ModeledPipeline = 4u,  // the pipeline timeline is the model only
        NoisyStrategies = 8u,  // dispatch strategies ran the same code (CPU): their time differences are noise
    };
    unsigned caveats = 0;
    bool has(Caveat c) const { return (caveats & unsigned(c)) != 0; }
    void add(Caveat c) { caveats |= unsigned(c); }

    // Loads.
    Provenance loads_provenance = Provenance::MeasuredCpu;
    std::vector<std::int64_t> demand;        // [E] routed before drops
    std::vector<std::int64_t> expert_loads;  // [E] kept after drops
    double mean_load = 0;
    double straggler_factor = 0;  // max/mean of expert_loads
    int hottest_expert = 0;
    std::int64_t capacity = 0;
    std::int64_t dropped = 0;
    std::vector<std::int64_t> rank_loads;  // [G] kept rows per rank
    double rank_straggler = 0;

    // Communication (bytes are counted from the routing; the seed's formula beside them).
    Provenance comm_provenance = Provenance::MeasuredCpu;
    int ranks = 1;
    int bytes_per_elem = 2;
    double seed_bytes = 0, routed_bytes = 0, dedup_bytes = 0;
    std::vector<std::int64_t> traffic_tokens;  // [G, G]
    std::vector<double> traffic_bytes;         // [G, G], dispatch direction
    double comm_ms = -1;                       // measured transfer time where one exists
    Provenance comm_time_provenance = Provenance::Modeled;
    std::vector<double> traffic_ms;  // [G, G] each pair's dispatch bytes sent alone (nccl), empty if none
    Provenance traffic_ms_provenance = Provenance::Modeled;

    // Stage times and timelines.
    std::vector<StageTime> stages;
    std::vector<Span> timeline;        // measured stages of the layer
    std::vector<Span> model_timeline;  // the pipeline model
    PipelineSummary pipeline;          // the model (calibrated from this machine when measured_pipeline.present)
    PipelineRun measured_pipeline;     // the same schedule run on GPU pools

    // Dispatch strategy comparison (dispatch demo): one entry per strategy.
    struct StrategyTime {
        std::string strategy;
        StageTime time;
        double bytes = 0;  // the floor's bytes: T·d·b + rows·d·b
    };
    std::vector<StrategyTime> strategies;
    // The copy bandwidth of this backend's memory (bytes read + written per second), measured once per process
    // for the dispatch demo; the packing floor is bytes / copy_gbps. 0 when not measured.
    double copy_gbps = 0;
    Provenance copy_provenance = Provenance::MeasuredCpu;

    const StageTime* stage(const std::string& name) const;
    double total_ms() const;  // sum of stage medians
};

}  // namespace demos
