// The expert FFN's roofline: the floors as pure functions of a shape and two ceilings, the GPU measurement through
// the benchmark harness (kernels/bench), and the lesson experiment's sweep in the same form.
#include "demos/roofline.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "demos/lesson_expr.hpp"
#include "kernels/api.hpp"
#include "kernels/common/error.hpp"
#if defined(MOELAB_HAVE_CUDA)
#include "kernels/bench/bench.hpp"
#endif

namespace demos {

namespace {

// Timed repeats per point (the harness shrinks them for the largest sizes); used where CUDA is built.
[[maybe_unused]] constexpr int kRepeats = 10;

void check(const RooflineShape& s, const RooflineCeilings& c) {
    if (s.hidden < 1) MOE_BAD_INPUT("roofline: hidden " << s.hidden << " must be >= 1");
    if (s.ffn < 1) MOE_BAD_INPUT("roofline: ffn " << s.ffn << " must be >= 1");
    if (s.experts < 1) MOE_BAD_INPUT("roofline: experts " << s.experts << " must be >= 1");
    if (s.top_k < 1 || s.top_k > s.experts)
        MOE_BAD_INPUT("roofline: top_k " << s.top_k << " must be in 1.." << s.experts << " (the experts)");
    if (!(c.read_gbps > 0)) MOE_BAD_INPUT("roofline: read bandwidth " << c.read_gbps << " GB/s must be > 0");
    if (!(c.gemm_tflops > 0)) MOE_BAD_INPUT("roofline: GEMM rate " << c.gemm_tflops << " TFLOP/s must be > 0");
}

// Bytes of one expert's weights: gate and up (2·F·d) and down (d·F), bf16.
double expert_weight_bytes(const RooflineShape& s) { return 3.0 * double(s.ffn) * double(s.hidden) * 2.0; }

}  // namespace

RooflineShape roofline_shape(const Scenario& s) { return {s.hidden, s.ffn, s.experts, s.top_k}; }

RooflineCeilings recorded_ceilings() {
    RooflineCeilings c;
    c.read_gbps = 4473;
    c.gemm_tflops = 785;
    c.bandwidth = "read";
    c.device = "NVIDIA H200";
    c.source = lesson::Source::Modeled;
    c.origin = "ceilings recorded on an NVIDIA H200 (kernels/bench/RESULTS.md, the run of 2026-11-29 20:11 UTC)";
    return c;
}

double expected_active_experts(int experts, int top_k, double tokens_per_expert) {
    if (experts < 1 || top_k < 1 || top_k > experts || !(tokens_per_expert >= 0)) return 0;
    const double tokens = tokens_per_expert * experts / top_k;
    if (top_k == experts) return tokens > 0 ? experts : 0;
    return experts * (1.0 - std::pow(1.0 - double(top_k) / experts, tokens));
}

RooflineFloor roofline_floor(const RooflineShape& s, const RooflineCeilings& c, double tokens_per_expert) {
    check(s, c);
    if (!(tokens_per_expert > 0)) MOE_BAD_INPUT("roofline: tokens per expert " << tokens_per_expert << " must be > 0");
    RooflineFloor f;
    f.tokens_per_expert = tokens_per_expert;
    f.active_experts = expected_active_experts(s.experts, s.top_k, tokens_per_expert);
    f.weight_ms = f.active_experts * expert_weight_bytes(s) / (c.read_gbps * 1e9) * 1e3;
    const double rows = tokens_per_expert * s.experts;  // T·k token-expert pairs
    f.math_ms = 2.0 * rows * 3.0 * double(s.ffn) * s.hidden / (c.gemm_tflops * 1e12) * 1e3;
    return f;
}

double ridge_tokens_per_expert(const RooflineCeilings& c) {
    return c.read_gbps > 0 ? c.gemm_tflops * 1e12 / (c.read_gbps * 1e9) : 0;
}

const std::vector<int>& roofline_sweep() {
    static const std::vector<int> kSweep = {1, 8, 64, 512, 4096};
    return kSweep;
}

ExpertRoofline roofline_lines(const RooflineShape& s, const RooflineCeilings& c, double x_lo, double x_hi,
                              int per_octave) {
    check(s, c);
    if (!(x_lo > 0) || !(x_hi >= x_lo))
        MOE_BAD_INPUT("roofline: the tokens-per-expert range " << x_lo << ".." << x_hi << " must be > 0, low to high");
    if (per_octave < 1 || per_octave > 64)
        MOE_BAD_INPUT("roofline: " << per_octave << " points per doubling must be in 1..64");
    ExpertRoofline rl;
    rl.shape = s;
    rl.ceilings = c;
    rl.source = c.source;
    const int n = std::max(1, int(std::ceil(std::log2(x_hi / x_lo) * per_octave)));
    for (int i = 0; i <= n; ++i) {
        const double x = i == n ? x_hi : x_lo * std::exp2(double(i) / per_octave);
        rl.lines.push_back(roofline_floor(s, c, x));
    }
    return rl;
}

ExpertRoofline modeled_roofline(const RooflineShape& s) {
    ExpertRoofline rl = roofline_lines(s, recorded_ceilings());
    rl.notes.push_back("Modeled: no GPU is in use, so nothing is timed. The lines are the two floors under the " +
                       rl.ceilings.origin + ": read " + lesson::format_number(rl.ceilings.read_gbps) +
                       " GB/s, bf16 GEMM " + lesson::format_number(rl.ceilings.gemm_tflops) + " TFLOP/s.");
    return rl;
}

ExpertRoofline measure_roofline(const RooflineShape& s, const std::function<bool()>& stop,
                                const std::function<void(float, const std::string&)>& progress) {
#if defined(MOELAB_HAVE_CUDA)
    if (moe::gpu::devices().empty())
        throw moe::Error(moe::ErrorKind::NoDevice,
                         "the measured roofline needs a GPU; " + moe::gpu::unavailable_reason());
    check(s, recorded_ceilings());
    const moe::bench::Shape shape{"app", 0, s.hidden, s.experts, s.top_k, s.ffn};
    const std::vector<int>& xs = roofline_sweep();
    ExpertRoofline rl;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        if (stop && stop()) throw moe::Error(moe::ErrorKind::Runtime, "cancelled");
        if (progress)
            progress(float(i) / float(xs.size()), std::to_string(xs[i]) + " tokens per expert (" +
                                                      std::to_string(i + 1) + " of " + std::to_string(xs.size()) +
                                                      (i == 0 ? "), after the ceilings" : ")"));
        // The harness measures both ceilings at the start of each call: the lines use the first call's.
        const moe::bench::Roofline m = moe::bench::experts_roofline(shape, {xs[i]}, kRepeats);
        if (i == 0) {
            RooflineCeilings c;
            c.read_gbps = m.ceilings.read_gbps;
            c.gemm_tflops = m.ceilings.gemm_tflops;
            c.bandwidth = "read";
            c.device = m.ceilings.device;
            c.source = lesson::Source::MeasuredGpu;
            c.origin = "ceilings measured on this GPU (" + c.device + ") at the start of the run";
            rl = roofline_lines(s, c);
        }
        for (const moe::bench::RooflinePoint& q : m.points) {
            RooflinePoint p;
            p.tokens_per_expert = q.tokens_per_expert;
            p.impl = q.impl;
            p.median_ms = q.median_ms, p.p95_ms = q.p95_ms;
            p.floor_ms = q.floor_ms;
            p.wrong = q.wrong;
            p.clocks = q.clocks;
            p.probe = q.probe, p.probe_ms = q.probe_ms, p.balanced_ms = q.balanced_ms;
            p.source = lesson::Source::MeasuredGpu;
            rl.points.push_back(p);
        }
    }
    if (progress) progress(1.0f, "done");
    rl.notes.push_back("Measured on " + rl.ceilings.device + ": the engine's own choice (auto) at each point, " +
                       "median and p95 of up to " + std::to_string(kRepeats) +
                       " repeats after warm-up, each point checked against the CPU reference first, beside a probe " +
                       "of the same work without the FFN around it (the weights read alone where they bound the " +
                       "size, cuBLAS over all rows as one expert's where the FLOPs do); ceilings: read " +
                       lesson::format_number(rl.ceilings.read_gbps) + " GB/s (16-byte loads), bf16 GEMM " +
                       lesson::format_number(rl.ceilings.gemm_tflops) + " TFLOP/s (cuBLAS 8192³).");
    return rl;
#else
    (void)s, (void)stop, (void)progress;
    throw moe::Error(moe::ErrorKind::NoDevice,
                     "the measured roofline needs a GPU and this build has no CUDA; the chart shows the model");
#endif
}

ExpertRoofline roofline_of_experiment(const ExperimentResult& x, int hidden, int ffn) {
    ExpertRoofline rl;
    auto tf = x.scalars.find("peak_tflops_meas"), bw = x.scalars.find("mem_gbps_meas");
    if (x.curve.empty() || tf == x.scalars.end() || bw == x.scalars.end()) return rl;
    RooflineCeilings c;
    c.gemm_tflops = tf->second.value;
    c.read_gbps = bw->second.value;
    c.bandwidth = "copy";
    c.source = tf->second.source;
    c.origin = c.source == lesson::Source::MeasuredGpu ? "ceilings measured on this GPU by the expert-ffn experiment"
                                                       : "the expert-ffn experiment's recorded H100 ceilings";
    const RooflineShape one{hidden, ffn, 1, 1};
    double lo = x.curve.front().x, hi = x.curve.back().x;
    for (const CurvePoint& p : x.curve) lo = std::min(lo, p.x), hi = std::max(hi, p.x);
    rl = roofline_lines(one, c, std::max(1.0, lo), std::max(1.0, hi));
    for (const CurvePoint& p : x.curve) {
        RooflinePoint q;
        q.tokens_per_expert = p.x;
        q.median_ms = p.time.median_ms, q.p95_ms = p.time.p95_ms;
        q.floor_ms = p.x > 0 ? roofline_floor(one, c, p.x).roof_ms() : 0;
        q.source = p.time.source;
        rl.points.push_back(q);
    }
    rl.source = x.curve.front().time.source;
    rl.notes = x.notes;
    return rl;
}

std::string targets_line(const std::vector<TargetPoint>& sizes, double min_pct, double min_ratio) {
    if (sizes.empty()) return "";
    int at_pct = 0, with_peer = 0, at_ratio = 0;
    std::string short_pct, short_ratio;
    char buf[96];
    // Counts v against the bar, or names it in `list` with `digits` decimals (one more where those would round it up
    // to the bar) and its unit.
    auto tally = [&](double v, double bar, int& at, std::string& list, const std::string& label, int digits,
                     const char* unit) {
        if (v >= bar) return void(++at);
        const double scale = std::pow(10.0, digits);
        std::snprintf(buf, sizeof buf, "%s%s %.*f%s", list.empty() ? "" : ", ", label.c_str(),
                      std::round(v * scale) / scale >= bar ? digits + 1 : digits, v, unit);
        list += buf;
    };
    for (const TargetPoint& p : sizes) {
        tally(p.pct_of_roofline, min_pct, at_pct, short_pct, p.label, 1, "%");
        if (p.vs_peer <= 0) continue;
        ++with_peer;
        tally(p.vs_peer, min_ratio, at_ratio, short_ratio, p.label, 2, "x");
    }
    const int n = int(sizes.size());
    std::snprintf(buf, sizeof buf, "%d of %d sizes at >= %g%% of the roofline", at_pct, n, min_pct);
    std::string line = buf;
    if (!short_pct.empty()) line += " (short: " + short_pct + ")";
    if (with_peer == 0) return line + "; no PyTorch peer timed";
    std::snprintf(buf, sizeof buf, "; %d of %d at >= %gx PyTorch", at_ratio, with_peer, min_ratio);
    line += buf;
    if (!short_ratio.empty()) line += " (short: " + short_ratio + ")";
    return line;
}

}  // namespace demos
