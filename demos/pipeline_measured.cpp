// The measured pipeline: calibration by least squares, the measured run, and its Result.
#include "demos/pipeline_measured.hpp"

#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <numeric>
#include <sstream>

#include "demos/atomic_file.hpp"
#include "demos/engine.hpp"
#include "kernels/common/error.hpp"

namespace demos {

namespace {

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

LineFit fit_line(const std::vector<double>& x, const std::vector<double>& y) {
    LineFit f;
    const std::size_t n = std::min(x.size(), y.size());
    f.points = int(n);
    if (n == 0) return f;
    double mx = 0, my = 0;
    for (std::size_t i = 0; i < n; ++i) mx += x[i], my += y[i];
    mx /= n, my /= n;
    double sxx = 0, sxy = 0, syy = 0;
    for (std::size_t i = 0; i < n; ++i) {
        sxx += (x[i] - mx) * (x[i] - mx);
        sxy += (x[i] - mx) * (y[i] - my);
        syy += (y[i] - my) * (y[i] - my);
    }
    if (sxx <= 0) {  // one distinct x: a constant
        f.slope = 0;
        f.intercept = my;
        f.r2 = 1;
        return f;
    }
    f.slope = sxy / sxx;
    f.intercept = my - f.slope * mx;
    f.r2 = syy > 0 ? (sxy * sxy) / (sxx * syy) : 1;
    return f;
}

// ---- calibration files --------------------------------------------------------------------------------------
std::string Calibration::to_toml() const {
    auto arr = [](const std::vector<double>& v) {
        toml::array a;
        for (double d : v) a.push_back(d);
        return a;
    };
    toml::table t{{"device", device},
                  {"pools", pools},
                  {"attention_sms", attention_sms},
                  {"expert_sms", expert_sms},
                  {"k1", k1},
                  {"k2", k2},
                  {"k3", k3},
                  {"k4", k4},
                  {"link_gbps", link_gbps},
                  {"link_latency_us", link_latency_us},
                  {"ba", arr(ba)},
                  {"ta_us", arr(ta_us)},
                  {"be", arr(be)},
                  {"te_us", arr(te_us)},
                  {"tc_bytes", arr(tc_bytes)},
                  {"tc_us", arr(tc_us)},
                  {"msg_bytes", arr(msg_bytes)},
                  {"msg_util", arr(msg_util)}};
    std::ostringstream os;
    os << "# moelab pipeline calibration: Ta = k1·ba + k2, Te = k3·be + k4 (µs), Tc = latency + bytes / link_gbps\n"
       << t << "\n";
    return os.str();
}

Calibration Calibration::from_toml(const std::string& text, const std::string& source) {
    // Size and nesting are bounded before toml++ (which recurses per level) sees the text.
    const std::string limits = toml_limits_problem(text);
    if (!limits.empty()) MOE_BAD_INPUT(source << ": " << limits);
    toml::table t;
    try {
        t = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        MOE_BAD_INPUT(source << ":" << e.source().begin.line << ": malformed calibration: " << e.description());
    }
    Calibration c;
    auto num = [&](const char* key, double& out, bool required) {
        const toml::node* n = t.get(key);
        if (!n) {
            if (required)
                MOE_BAD_INPUT(source << ": key '" << key
                                     << "' is missing (a calibration needs k1..k4, "
                                        "link_gbps and link_latency_us)");
            return;
        }
        auto v = n->value<double>();
        if (!v || !std::isfinite(*v) || *v < 0)
            MOE_BAD_INPUT(source << ":" << n->source().begin.line << ": key '" << key
                                 << "': expected a finite number >= 0");
        out = *v;
    };
    for (auto&& [k, v] : t) {
        static const char* known[] = {"device", "pools", "attention_sms", "expert_sms",      "k1",        "k2",
                                      "k3",     "k4",    "link_gbps",     "link_latency_us", "ba",        "ta_us",
                                      "be",     "te_us", "tc_bytes",      "tc_us",           "msg_bytes", "msg_util"};
        const std::string_view key = k.str();  // clang (C++17) cannot capture a structured binding
        if (std::none_of(std::begin(known), std::end(known), [&](const char* x) { return key == x; }))
            MOE_BAD_INPUT(source << ":" << v.source().begin.line << ": unknown key '" << k.str()
                                 << "'; a calibration has k1..k4, link_gbps, link_latency_us and the fitted points");
    }
    num("k1", c.k1, true);
    num("k2", c.k2, true);
    num("k3", c.k3, true);
    num("k4", c.k4, true);
    num("link_gbps", c.link_gbps, true);
    num("link_latency_us", c.link_latency_us, true);
    if (!(c.link_gbps > 0)) MOE_BAD_INPUT(source << ": key 'link_gbps' must be > 0");
    if (auto s = t["device"].value<std::string>()) c.device = *s;
    if (auto s = t["pools"].value<std::string>()) c.pools = *s;
    auto list = [&](const char* key, std::vector<double>& out) {
        if (const toml::array* a = t[key].as_array())
            for (auto&& e : *a)
                if (auto v = e.value<double>()) out.push_back(*v);
    };
    list("ba", c.ba), list("ta_us", c.ta_us), list("be", c.be), list("te_us", c.te_us);
    list("tc_bytes", c.tc_bytes), list("tc_us", c.tc_us), list("msg_bytes", c.msg_bytes), list("msg_util", c.msg_util);
    return c;
}

Calibration Calibration::load(const std::string& path) {
    std::string text, err;
    if (!read_regular_file(path, kMaxTomlBytes, &text, &err)) MOE_BAD_INPUT("--calibration " << path << ": " << err);
    return from_toml(text, path);
}

void Calibration::save(const std::string& path) const {
    std::string err;
    if (!write_file_atomic(path, to_toml(), &err)) MOE_BAD_INPUT("--save-calibration " << path << ": " << err);
}

// ---- from a scenario ----------------------------------------------------------------------------------------
moe::pipeline::Spec pipeline_spec(const Scenario& s) {
    moe::pipeline::Spec p;
    p.layer = s.layer_spec();
    p.context = s.context;
    p.q_heads = s.q_heads;
    p.kv_groups = s.kv_groups;
    p.micro_batches = s.micro_batches;
    p.layers = s.layers;
    p.attention_sms = s.attention_sms;
    p.pace_gbps = s.pace_link ? s.link_gbps : 0.0;
    p.repeats = std::max(5, s.repeats);
    p.warmup = 2;
    return p;
}

PipelineInput calibrated_input(const Scenario& s, const Calibration& c) {
    PipelineInput in;
    in.layers = s.layers;
    in.micro_batches = s.micro_batches;
    const double B = double(s.tokens), m = s.micro_batches, E = s.experts, K = s.top_k;
    const double ba = B / m, be = B * K / (m * E);
    in.ta_ms = std::max(0.0, c.k1 * ba + c.k2) * 1e-3;
    in.te_ms = std::max(0.0, c.k3 * be + c.k4) * 1e-3;
    const double bytes = ba * K * s.hidden * s.bytes_per_elem();  // what A2E carries: the packed rows
    in.tc_ms = (c.link_latency_us + bytes / (c.link_gbps * 1e9) * 1e6) * 1e-3;
    return in;
}

PipelineSummary summarize_spans(const std::vector<moe::pipeline::Span>& spans, int layers, int micro_batches,
                                double iteration_ms) {
    std::vector<double> dur[moe::pipeline::kLanes];
    double busy[moe::pipeline::kLanes] = {};
    for (auto& sp : spans) {
        if (sp.lane < 0 || sp.lane >= moe::pipeline::kLanes) continue;
        if (sp.lane == moe::pipeline::kAttention && sp.layer >= layers) {  // the last layer's combine
            busy[sp.lane] += sp.end_ms - sp.start_ms;
            continue;
        }
        dur[sp.lane].push_back(sp.end_ms - sp.start_ms);
        busy[sp.lane] += sp.end_ms - sp.start_ms;
    }
    PipelineSummary p;
    p.present = true;
    p.layers = layers;
    p.micro_batches = micro_batches;
    p.ta_ms = median(dur[moe::pipeline::kAttention]);
    p.te_ms = median(dur[moe::pipeline::kExperts]);
    const double a2e = median(dur[moe::pipeline::kA2E]), e2a = median(dur[moe::pipeline::kE2A]);
    p.tc_ms = std::max(a2e, e2a);
    p.tf_ms = std::max(p.ta_ms, p.te_ms);
    p.total_ms = iteration_ms;
    p.closed_form_ms = (p.ta_ms + p.te_ms + 2 * p.tc_ms) + p.tf_ms * (double(micro_batches) * layers - 1);
    p.min_micro_batches = p.tf_ms > 0 ? 2 * (1 + p.tc_ms / p.tf_ms) : 2.0;
    p.comm_hidden = p.tc_ms <= p.tf_ms && micro_batches >= p.min_micro_batches;
    p.attention_util = iteration_ms > 0 ? busy[moe::pipeline::kAttention] / iteration_ms : 0;
    p.expert_util = iteration_ms > 0 ? busy[moe::pipeline::kExperts] / iteration_ms : 0;
    p.provenance = Provenance::MeasuredGpu;
    return p;
}

Calibration calibrate(const Scenario& s, const std::vector<std::int64_t>& batches, const Progress& progress,
                      bool multi_device) {
    Calibration c;
    const double K = s.top_k, E = s.experts;
    std::vector<double> a2e_bytes, a2e_us;
    std::size_t step = 0;
    const std::size_t steps = batches.size() + 1;
    for (std::int64_t ba : batches) {
        if (progress) progress(float(step++) / steps, "calibrating at " + std::to_string(ba) + " sequences");
        moe::pipeline::Spec p = pipeline_spec(s);
        p.layer.tokens = std::max<std::int64_t>(1, ba);
        p.micro_batches = 1;
        p.layers = 1;
        p.repeats = 7;
        p.pace_gbps = 0;  // the link is fitted unpaced; pacing is applied to the model's bandwidth below
        p.multi_device = multi_device;
        moe::pipeline::Run run;
        moe::pipeline::gpu::run(p, run);
        c.device = run.device;
        c.pools = run.pools.kind;
        c.attention_sms = run.pools.attention_sms;
        c.expert_sms = run.pools.expert_sms;
        // Each span of this repeat ran alone on its pool (m = 1): take the median over the repeats' spans.
        PipelineSummary sum = summarize_spans(run.spans, 1, 1, median(run.iteration_ms));
        c.ba.push_back(double(p.layer.tokens));
        c.ta_us.push_back(sum.ta_ms * 1e3);
        c.be.push_back(double(p.layer.tokens) * K / E);
        c.te_us.push_back(sum.te_ms * 1e3);
        for (auto& sp : run.spans)
            if (sp.lane == moe::pipeline::kA2E || sp.lane == moe::pipeline::kE2A) {
                a2e_bytes.push_back(sp.bytes);
                a2e_us.push_back((sp.end_ms - sp.start_ms) * 1e3);
            }
    }
    LineFit fa = fit_line(c.ba, c.ta_us), fe = fit_line(c.be, c.te_us);
    c.k1 = std::max(0.0, fa.slope), c.k2 = std::max(0.0, fa.intercept);
    c.k3 = std::max(0.0, fe.slope), c.k4 = std::max(0.0, fe.intercept);
    c.tc_bytes = a2e_bytes, c.tc_us = a2e_us;

    // The link: plain copies from 4 KiB to 64 MiB give its bandwidth (the slope over the sizes past 1 MiB) and
    // Util(msg); the A2E/E2A spans give the latency a transfer of the pipeline pays (a few copies: rows and plan).
    if (progress) progress(float(step) / steps, "link utilisation by message size");
    std::vector<double> sizes;
    for (double b = 4096; b <= 64.0 * (1 << 20); b *= 4) sizes.push_back(b);
    moe::pipeline::Probe probe;
    moe::pipeline::Spec p = pipeline_spec(s);
    p.pace_gbps = 0;
    p.multi_device = multi_device;
    moe::pipeline::gpu::probe(p, sizes, probe);
    std::vector<double> big_b, big_us;
    double best = 0;
    for (std::size_t i = 0; i < probe.copy_bytes.size(); ++i) {
        if (probe.copy_ms[i] > 0) best = std::max(best, probe.copy_bytes[i] / probe.copy_ms[i]);
        if (probe.copy_bytes[i] >= (1 << 20))
            big_b.push_back(probe.copy_bytes[i]), big_us.push_back(probe.copy_ms[i] * 1e3);
    }
    for (std::size_t i = 0; i < probe.copy_bytes.size(); ++i) {
        c.msg_bytes.push_back(probe.copy_bytes[i]);
        c.msg_util.push_back(best > 0 && probe.copy_ms[i] > 0 ? probe.copy_bytes[i] / probe.copy_ms[i] / best : 0);
    }
    LineFit fc = fit_line(big_b, big_us);
    c.link_gbps = fc.slope > 0 ? 1e-3 / fc.slope : best * 1e-6;         // µs per byte → GB/s
    if (s.pace_link) c.link_gbps = std::min(c.link_gbps, s.link_gbps);  // the emulated link sets the rate
    std::vector<double> lat;
    for (std::size_t i = 0; i < a2e_bytes.size(); ++i) lat.push_back(a2e_us[i] - a2e_bytes[i] / (c.link_gbps * 1e3));
    c.link_latency_us = std::max(0.0, median(lat));
    return c;
}

void run_measured_pipeline(const Scenario& s, Result& r, const Progress& progress) {
    // Calibrate at the micro-batch size and half of it, so that the model is fitted where it is used.
    const std::int64_t B = s.tokens, m = s.micro_batches;
    std::vector<std::int64_t> sizes = {std::max<std::int64_t>(1, B / m)};
    if (B / (2 * m) >= 1 && B / (2 * m) != sizes[0]) sizes.push_back(B / (2 * m));
    auto sub = [&](float lo, float hi) -> Progress {
        if (!progress) return {};
        return [=](float f, const std::string& w) { progress(lo + (hi - lo) * f, w); };
    };
    Calibration cal = calibrate(s, sizes, sub(0.0f, 0.5f));
    if (progress) progress(0.5f, "running the pipeline");
    moe::pipeline::Spec p = pipeline_spec(s);
    moe::pipeline::Run run;
    moe::pipeline::gpu::run(p, run);
    if (progress) progress(0.95f, "summarising");

    PipelineRun& pr = r.measured_pipeline;
    pr.present = true;
    pr.pools = run.pools.kind;
    pr.pools_note = run.pools.why;
    pr.device_sms = run.pools.device_sms;
    pr.attention_sms = run.pools.attention_sms;
    pr.expert_sms = run.pools.expert_sms;
    pr.iteration = summarize({"iteration", run.iteration_ms}, Provenance::MeasuredGpu);
    pr.tokens_per_s = pr.iteration.median_ms > 0 ? double(s.tokens) / (pr.iteration.median_ms * 1e-3) : 0;
    pr.measured = summarize_spans(run.spans, s.layers, s.micro_batches, pr.iteration.median_ms);
    pr.link_paced = s.pace_link;
    pr.k1 = cal.k1, pr.k2 = cal.k2, pr.k3 = cal.k3, pr.k4 = cal.k4;
    pr.link_gbps = cal.link_gbps, pr.link_latency_us = cal.link_latency_us;
    pr.msg_bytes = cal.msg_bytes, pr.msg_util = cal.msg_util;
    pr.experts_impl = run.experts_impl;

    r.timeline.clear();
    for (auto& sp : run.spans) {
        Span out;
        const bool link = sp.lane == moe::pipeline::kA2E || sp.lane == moe::pipeline::kE2A;
        const bool last_combine = sp.lane == moe::pipeline::kAttention && sp.layer >= s.layers;
        out.lane = moe::pipeline::lane_name(sp.lane);
        static const char* tags[] = {"A", "A2E", "E", "E2A"};
        out.label = last_combine ? "combine l" + std::to_string(s.layers - 1) + " mb" + std::to_string(sp.micro_batch)
                                 : std::string(tags[sp.lane]) + " l" + std::to_string(sp.layer) + " mb" +
                                       std::to_string(sp.micro_batch);
        out.layer = last_combine ? s.layers - 1 : sp.layer;
        out.micro_batch = sp.micro_batch;
        out.rank = sp.device;
        out.start_ms = sp.start_ms;
        out.end_ms = sp.end_ms;
        out.provenance = link && s.pace_link ? Provenance::Emulated : Provenance::MeasuredGpu;
        r.timeline.push_back(out);
    }

    // The model with this machine's constants, drawn as the ghost under the measurement.
    r.model_timeline.clear();
    r.pipeline = simulate_pipeline(calibrated_input(s, cal), &r.model_timeline);
    pr.model_error =
        pr.iteration.median_ms > 0 ? (r.pipeline.total_ms - pr.iteration.median_ms) / pr.iteration.median_ms : 0;
    std::ostringstream note;
    if (run.pools.kind == "green-contexts")
        note << "The pipeline ran for real on two SM partitions of " << run.device
             << " (green contexts: " << run.pools.attention_sms << " SMs attention, " << run.pools.expert_sms
             << " SMs experts); every span is measured";
    else if (run.pools.kind == "devices")
        note << "The pipeline ran for real across GPUs (attention and experts on separate devices); every span is "
                "measured";
    else
        note << "The pipeline ran on two streams that share every SM of " << run.device
             << " (no green contexts: " << run.pools.why << "); every span is measured";
    if (s.pace_link) note << ", and the A2E/E2A copies are paced at " << s.link_gbps << " GB/s (emulated link)";
    note << ". The model beside it uses constants fitted on this GPU (k1=" << cal.k1 << ", k2=" << cal.k2
         << ", k3=" << cal.k3 << ", k4=" << cal.k4 << " µs).";
    r.notes.push_back(note.str());
    if (run.pools.kind == "green-contexts") {
        const SplitAdvice adv =
            advise_split(pr.measured.ta_ms, pr.measured.te_ms, pr.attention_sms, pr.expert_sms, pr.device_sms);
        if (adv.better) {
            std::ostringstream a;
            a << std::fixed << std::setprecision(3) << (adv.attention_bound ? "Attention" : "The expert FFN")
              << " is the slower stage (Ta " << pr.measured.ta_ms << " ms, Te " << pr.measured.te_ms
              << " ms per micro-batch). Modeled, with each stage's time ∝ 1/its SMs: " << adv.attention_sms << " | "
              << adv.expert_sms << " SMs would give Ta " << adv.ta_ms << ", Te " << adv.te_ms
              << " ms; measure it there (--attention-sms " << adv.attention_sms << ", or the attention SMs slider).";
            r.notes.push_back(a.str());
        }
    }
}

}  // namespace demos
