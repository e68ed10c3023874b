// Discrete-event model of MegaScale-Infer's ping-pong pipeline (Section 4.1, Figure 4): four servers
// (attention pool, A2E link, expert pool, E2A link), each FIFO by ready time; and the linear cost forms.
#include "demos/pipeline.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <queue>
#include <string>
#include <tuple>

#include "kernels/common/error.hpp"

// How the simulation relates to the paper's closed form Ttotal = (Ta+Te+2Tc) + Tf·(mL−1), Tf = max(Ta,Te).
// Write R = Ta+Te+2Tc for one micro-batch's round trip through a layer. When Tc ≤ Tf the simulation gives
// exactly
//     total = (Ta+Te+2Tc) + Tf·(mL−1) + (L−1)·max(0, R − m·Tf)
// because the slower pool works back to back inside a layer, and every other server is at most as slow,
// so nothing queues behind it; between layers the slower pool waits until micro-batch 0 is back, i.e.
// max(m·Tf, R) after it started that micro-batch a layer earlier. Hence:
//   - The closed form is exact when L = 1, or when m·Tf ≥ R. For Ta = Te that is the paper's condition
//     m ≥ 2(1+Tc/Tf) (Eq. 3); for Ta ≠ Te the paper's condition is sufficient but stricter than needed.
//   - When m·Tf < R and L ≥ 2 (communication not hidden) the simulated time exceeds the closed form by
//     (L−1)·(R − m·Tf): the pools idle at every layer boundary waiting for the round trip.
//   - When Tc > Tf (Eq. 2 violated) each link is busier than either pool and becomes the bottleneck:
//     the same expression holds with Tf replaced by Tc, so the simulation exceeds the closed form for
//     m·L ≥ 2, whatever m is. comm_hidden is therefore reported only when Tc ≤ Tf as well.
// The tests in tests/cpu/test_pipeline.cpp hold the simulator to each of these statements.

namespace demos {

namespace {

enum Server { kAttention = 0, kA2E = 1, kExperts = 2, kE2A = 3, kServers = 4 };

constexpr std::array<const char*, kServers> kLane = {"attention", "a2e", "experts", "e2a"};
constexpr std::array<const char*, kServers> kTag = {"A", "A2E", "E", "E2A"};

// Large enough for any classroom sweep, small enough that a typo cannot exhaust memory.
constexpr long long kMaxSteps = 1'000'000;

// One step (micro-batch i at layer l on one server) waiting for its server.
struct Ready {
    double at;
    int layer, mb;
    // FIFO by ready time, ties by (layer, micro-batch); std::priority_queue pops the largest, so invert.
    bool operator<(const Ready& o) const { return std::tie(at, layer, mb) > std::tie(o.at, o.layer, o.mb); }
};

struct Completion {
    double at;
    int server;
    bool operator<(const Completion& o) const { return std::tie(at, server) > std::tie(o.at, o.server); }
};

void check_time(double v, const char* name) {
    if (!std::isfinite(v) || v < 0) MOE_BAD_INPUT("pipeline: " << name << " = " << v << " must be a finite time ≥ 0 ms");
}

}  // namespace

PipelineInput pipeline_input(const Scenario& s) {
    if (s.micro_batches < 1) MOE_BAD_INPUT("micro_batches = " << s.micro_batches << " must be ≥ 1");
    if (s.layers < 1) MOE_BAD_INPUT("layers = " << s.layers << " must be ≥ 1");
    if (s.attention_replicas < 1) MOE_BAD_INPUT("attention_replicas = " << s.attention_replicas << " must be ≥ 1");
    if (s.experts < 1) MOE_BAD_INPUT("experts = " << s.experts << " must be ≥ 1");
    if (!(s.link_gbps > 0)) MOE_BAD_INPUT("link_gbps = " << s.link_gbps << " must be > 0");

    PipelineInput in;
    in.layers = s.layers;
    in.micro_batches = s.micro_batches;

    // Tokens are conserved: ba·m·na = be·m·E/K = B. Fractional sizes are kept; this is a cost model.
    const double B = static_cast<double>(s.tokens);
    const double m = s.micro_batches, na = s.attention_replicas, E = s.experts, K = s.top_k;
    const double ba = B / (m * na);
    const double be = B * K / (m * E);
    const double h = s.hidden, b = s.bytes_per_elem();

    in.ta_ms = s.ta_ms >= 0 ? s.ta_ms : (s.k1 * ba + s.k2) * 1e-3;  // µs → ms
    in.te_ms = s.te_ms >= 0 ? s.te_ms : (s.k3 * be + s.k4) * 1e-3;
    // Eq. 6 with Util = 1 and tp = 1: an attention replica sends each token to K experts, an expert
    // receives be tokens; the slower side sets the transfer time.
    const double bytes = std::max(ba * h * K * b, be * h * b);
    in.tc_ms = s.tc_ms >= 0 ? s.tc_ms : bytes / (s.link_gbps * 1e9) * 1e3;  // s → ms
    return in;
}

PipelineSummary simulate_pipeline(const PipelineInput& in, std::vector<Span>* spans) {
    if (in.layers < 1) MOE_BAD_INPUT("pipeline: layers = " << in.layers << " must be ≥ 1");
    if (in.micro_batches < 1) MOE_BAD_INPUT("pipeline: micro_batches = " << in.micro_batches << " must be ≥ 1");
    if (static_cast<long long>(in.layers) * in.micro_batches > kMaxSteps)
        MOE_BAD_INPUT("pipeline: layers × micro_batches = " << static_cast<long long>(in.layers) * in.micro_batches
                                                             << " must be ≤ " << kMaxSteps);
    check_time(in.ta_ms, "ta_ms");
    check_time(in.te_ms, "te_ms");
    check_time(in.tc_ms, "tc_ms");

    const int L = in.layers, m = in.micro_batches;
    const std::array<double, kServers> dur = {in.ta_ms, in.tc_ms, in.te_ms, in.tc_ms};

    std::array<std::priority_queue<Ready>, kServers> waiting;
    std::array<bool, kServers> busy{};
    std::array<Ready, kServers> serving{};
    std::priority_queue<Completion> events;
    for (int i = 0; i < m; ++i) waiting[kAttention].push({0.0, 0, i});
    if (spans) spans->reserve(spans->size() + static_cast<std::size_t>(kServers) * L * m);

    double now = 0;
    for (;;) {
        // Start every idle server on its oldest ready step. Everything queued is ready by now, since a
        // step is queued only when its predecessor completes, and completions are handled in time order.
        for (int r = 0; r < kServers; ++r) {
            if (busy[r] || waiting[r].empty()) continue;
            const Ready w = waiting[r].top();
            waiting[r].pop();
            busy[r] = true;
            serving[r] = w;
            events.push({now + dur[r], r});
            if (spans) {
                Span sp;
                sp.lane = kLane[r];
                sp.label = std::string(kTag[r]) + " l" + std::to_string(w.layer) + " mb" + std::to_string(w.mb);
                sp.layer = w.layer;
                sp.micro_batch = w.mb;
                sp.start_ms = now;
                sp.end_ms = now + dur[r];
                sp.provenance = Provenance::Modeled;
                spans->push_back(std::move(sp));
            }
        }
        if (events.empty()) break;
        // Handle every completion at the next instant before any server chooses, so that all steps that
        // became ready at the same time compete by (layer, micro-batch).
        now = events.top().at;
        while (!events.empty() && events.top().at <= now) {
            const int r = events.top().server;
            events.pop();
            busy[r] = false;
            const Ready done = serving[r];
            if (r == kE2A) {
                if (done.layer + 1 < L) waiting[kAttention].push({now, done.layer + 1, done.mb});
            } else {
                waiting[r + 1].push({now, done.layer, done.mb});
            }
        }
    }

    PipelineSummary sum;
    sum.present = true;
    sum.layers = L;
    sum.micro_batches = m;
    sum.ta_ms = in.ta_ms;
    sum.te_ms = in.te_ms;
    sum.tc_ms = in.tc_ms;
    sum.tf_ms = std::max(in.ta_ms, in.te_ms);
    // The last event is the last E2A of the last layer: the iteration ends when every micro-batch is back.
    sum.total_ms = now;
    const double Tf = sum.tf_ms;
    sum.closed_form_ms = (in.ta_ms + in.te_ms + 2 * in.tc_ms) + Tf * (static_cast<double>(m) * L - 1);
    if (Tf > 0) {
        sum.min_micro_batches = 2 * (1 + in.tc_ms / Tf);
    } else {
        // No compute to hide behind: free links need nothing, any real transfer can never be hidden.
        sum.min_micro_batches = in.tc_ms > 0 ? std::numeric_limits<double>::infinity() : 2.0;
    }
    // Eq. 3 plus Eq. 2 (Tc ≤ Tf): past that the links, not the pools, set the pace. The relative slack
    // keeps a derived Tc/Tf of exactly 0.5 from failing m = 3 on rounding.
    sum.comm_hidden = in.tc_ms <= Tf * (1 + 1e-12) && m >= sum.min_micro_batches * (1 - 1e-12);
    const double steps = static_cast<double>(m) * L;
    sum.attention_util = sum.total_ms > 0 ? steps * in.ta_ms / sum.total_ms : 0.0;
    sum.expert_util = sum.total_ms > 0 ? steps * in.te_ms / sum.total_ms : 0.0;
    sum.provenance = Provenance::Modeled;
    return sum;
}

SplitAdvice advise_split(double ta_ms, double te_ms, int attention_sms, int expert_sms, int device_sms, int step) {
    SplitAdvice a;
    if (!(ta_ms > 0) || !(te_ms > 0) || attention_sms <= 0 || expert_sms <= 0 || step <= 0 || device_sms < 2 * step ||
        attention_sms + expert_sms > device_sms)
        return a;
    a.valid = true;
    a.attention_bound = ta_ms > te_ms;
    a.attention_sms = attention_sms, a.expert_sms = expert_sms, a.ta_ms = ta_ms, a.te_ms = te_ms;
    const double wa = ta_ms * attention_sms, we = te_ms * expert_sms;  // stage time × SMs: the model's constants
    const double now = std::max(ta_ms, te_ms);
    double best = now;
    int best_sa = 0;
    for (int sa = step; sa <= device_sms - step; sa += step) {  // the experts get every SM attention does not
        const double t = std::max(wa / sa, we / (device_sms - sa));
        if (t < best) best = t, best_sa = sa;
    }
    if (best > 0.95 * now) return a;  // as balanced as the steps allow
    a.better = true;
    a.attention_sms = best_sa, a.expert_sms = device_sms - best_sa;
    a.ta_ms = wa / a.attention_sms, a.te_ms = we / a.expert_sms;
    return a;
}

}  // namespace demos
