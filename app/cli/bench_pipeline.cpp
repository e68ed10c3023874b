// `moelab bench pipeline`: the measured ping-pong pipeline on one GPU's SM pools (or across GPUs), swept over
// the micro-batches m (the shape of MegaScale-Infer's Figure 14) and over the SM split, the one-GPU analogue of the
// attention replicas n_a (Figure 15), beside a colocated baseline (attention then experts for each micro-batch on
// the whole GPU) and the model calibrated from solo runs on the same pools. It ends with the three checks:
// the model within 15% for m = 1..4, m = 2 at least 1.6× the tokens/s of m = 1, span timing at most 5%.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/cli/bench_hooks.hpp"
#include "demos/pipeline_measured.hpp"
#include "demos/scenario.hpp"
#include "kernels/api.hpp"
#include "kernels/common/error.hpp"

namespace moelab_cli {

namespace {

struct PipelineBenchArgs {
    int max_m = 8;
    int layers = 16;  // an iteration of a real model runs tens of layers; (m·L − 1)·Tf dominates
    int context = 512;
    std::vector<int> splits;  // attention SMs; empty = a default sweep
    bool devices = false;
    double pace_gbps = 0;
    std::string save_calibration;
};
PipelineBenchArgs& pargs() {
    static PipelineBenchArgs a;
    return a;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}
double pct(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[std::min(v.size() - 1, std::size_t(std::ceil(q * v.size())) - 1)];
}

}  // namespace

void add_pipeline_bench_options(CLI::App& cmd) {
    auto& a = pargs();
    cmd.add_option("--max-micro-batches", a.max_m, "pipeline: sweep m = 1..this (1..64)")->capture_default_str();
    cmd.add_option("--pipeline-layers", a.layers, "pipeline: layers L of the iteration (1..64)")->capture_default_str();
    cmd.add_option("--context", a.context, "pipeline: attention context s, KV positions per sequence")
        ->capture_default_str();
    cmd.add_option("--attention-sms", a.splits,
                   "pipeline: SM splits to sweep (attention SMs; the experts get the "
                   "rest); default every 8 SMs from a quarter of the GPU to all but 16 SMs")
        ->delimiter(',');
    cmd.add_flag("--devices", a.devices, "pipeline: attention on GPU 0, experts on GPU 1 (needs 2 GPUs)");
    cmd.add_option("--pace-gbps", a.pace_gbps, "pipeline: pace the A2E/E2A copies at this rate (emulated link)");
    cmd.add_option("--save-calibration", a.save_calibration,
                   "pipeline: write the fitted constants as TOML (moelab plan --calibration FILE reads it)");
}

int run_pipeline_bench(const BenchCommon& c) {
    const auto& a = pargs();
    if (a.max_m < 1 || a.max_m > 64) MOE_BAD_INPUT("--max-micro-batches " << a.max_m << ": allowed 1..64");
    if (a.layers < 1 || a.layers > 64) MOE_BAD_INPUT("--pipeline-layers " << a.layers << ": allowed 1..64");
    if (a.pace_gbps < 0 || !std::isfinite(a.pace_gbps))
        MOE_BAD_INPUT("--pace-gbps " << a.pace_gbps << ": must be >= 0");
    demos::Scenario s;  // the classroom layer
    if (c.tokens) s.tokens = c.tokens;
    if (c.hidden) s.hidden = c.hidden;
    if (c.experts) s.experts = c.experts;
    if (c.top_k) s.top_k = c.top_k;
    if (c.ffn) s.ffn = c.ffn;
    s.skew = c.skew;
    s.seed = c.seed;
    s.layers = a.layers;
    s.context = a.context;
    s.micro_batches = 1;
    if (a.pace_gbps > 0) s.pace_link = true, s.link_gbps = a.pace_gbps;
    s.check();
    if (moe::gpu::devices().empty())
        throw moe::Error(moe::ErrorKind::NoDevice, "bench pipeline needs a GPU: " + moe::gpu::unavailable_reason());
    const int sms = moe::gpu::devices()[0].sm_count;
    auto say = [&](const std::string& w) {
        if (!c.quiet) std::fprintf(stderr, "  %s\n", w.c_str());
    };

    auto run = [&](int m, int attention_sms, bool colocated, bool time_spans) {
        moe::pipeline::Spec p = demos::pipeline_spec(s);
        p.micro_batches = m;
        p.attention_sms = attention_sms;
        p.colocated = colocated;
        p.multi_device = a.devices && !colocated;
        p.time_spans = time_spans;
        p.repeats = std::max(7, std::min(c.repeats, 21));
        p.warmup = 2;
        moe::pipeline::Run r;
        moe::pipeline::gpu::run(p, r);
        return r;
    };

    nlohmann::json out;
    // Figure 15's shape first: the SM split at m = 2. The best split is the balanced one (attention and experts
    // equally busy), and the m sweep, the calibration and the checks run there.
    const int msplit = std::min(2, a.max_m);
    s.micro_batches = msplit;
    int best_split = 0;
    nlohmann::json srows = nlohmann::json::array();
    std::vector<std::string> split_lines;
    if (!a.devices) {
        std::vector<int> splits = a.splits;
        // Every 8 SMs (Hopper's partition granularity) from a quarter of the GPU to all but 16: with the engine's
        // expert kernels a micro-batch's experts take about half its attention's time on the other half of the GPU,
        // so the balanced split lies past three quarters.
        if (splits.empty())
            for (int sp = std::max(8, sms / 4 / 8 * 8); sp <= sms - 16; sp += 8) splits.push_back(sp);
        if (splits.empty()) splits.push_back(std::max(8, sms / 2 / 8 * 8));  // a small GPU: its halves
        double best_tps = 0;
        for (int sp : splits) {
            if (sp <= 0 || sp >= sms) {
                split_lines.push_back("# split " + std::to_string(sp) + " skipped: this GPU has " +
                                      std::to_string(sms) + " SMs");
                continue;
            }
            say("split " + std::to_string(sp) + " attention SMs at m=" + std::to_string(msplit));
            auto pr = run(msplit, sp, false, true);
            const double med = median(pr.iteration_ms), tps = s.tokens / (med * 1e-3);
            demos::PipelineSummary meas = demos::summarize_spans(pr.spans, s.layers, msplit, med);
            char line[200], split[32];
            std::snprintf(split, sizeof split, "%d|%d", pr.pools.attention_sms, pr.pools.expert_sms);
            std::snprintf(line, sizeof line, "%14s %10.3f %12.4g %8.3f %8.3f %7.0f%% %7.0f%%", split, med, tps,
                          meas.ta_ms, meas.te_ms, 100 * meas.attention_util, 100 * meas.expert_util);
            split_lines.push_back(line);
            if (tps > best_tps) best_tps = tps, best_split = pr.pools.attention_sms;
            srows.push_back({{"attention_sms", pr.pools.attention_sms},
                             {"expert_sms", pr.pools.expert_sms},
                             {"median_ms", med},
                             {"tokens_per_s", tps},
                             {"ta_ms", meas.ta_ms},
                             {"te_ms", meas.te_ms},
                             {"attention_busy", meas.attention_util},
                             {"expert_busy", meas.expert_util}});
        }
    }
    out["by_split"] = srows;
    out["balanced_attention_sms"] = best_split;
    s.attention_sms = best_split;

    // Calibration at every micro-batch size of the sweep (solo runs, nothing overlaps), on the chosen split.
    say("calibrating: solo runs of each stage at B/m sequences, m = 1.." + std::to_string(a.max_m));
    std::vector<std::int64_t> sizes;
    for (int m = 1; m <= a.max_m; ++m) sizes.push_back(std::max<std::int64_t>(1, s.tokens / m));
    demos::Calibration cal = demos::calibrate(s, sizes, {}, a.devices);
    if (!a.save_calibration.empty()) cal.save(a.save_calibration);

    out["device"] = cal.device;
    out["pools"] = cal.pools;
    out["shape"] = {{"tokens", s.tokens}, {"hidden", s.hidden},   {"experts", s.experts}, {"top_k", s.top_k},
                    {"ffn", s.ffn},       {"context", s.context}, {"q_heads", s.q_heads}, {"kv_groups", s.kv_groups},
                    {"layers", s.layers}};
    out["calibration"] = {{"k1", cal.k1},
                          {"k2", cal.k2},
                          {"k3", cal.k3},
                          {"k4", cal.k4},
                          {"link_gbps", cal.link_gbps},
                          {"link_latency_us", cal.link_latency_us},
                          {"msg_bytes", cal.msg_bytes},
                          {"msg_util", cal.msg_util}};

    std::printf("# moelab bench pipeline: %s, pools %s (attention %d SMs | experts %d SMs of %d)\n", cal.device.c_str(),
                cal.pools.c_str(), cal.attention_sms, cal.expert_sms, sms);
    std::printf(
        "# B=%lld sequences (one decode token each), d=%d E=%d k=%d F=%d, attention s=%d H=%d G=%d, L=%d "
        "layers%s\n",
        (long long)s.tokens, s.hidden, s.experts, s.top_k, s.ffn, s.context, s.q_heads, s.kv_groups, s.layers,
        s.pace_link ? (", links paced at " + std::to_string(int(s.link_gbps)) + " GB/s [emulated]").c_str() : "");
    if (!split_lines.empty()) {
        std::printf(
            "#\n# Figure 15's shape: tokens/s against the SM split at m=%d (attention SMs | expert SMs) "
            "[measured-gpu]\n",
            msplit);
        std::printf("%14s %10s %12s %8s %8s %8s %8s\n", "split A|E", "median ms", "tokens/s", "Ta ms", "Te ms",
                    "busy A", "busy E");
        for (auto& l : split_lines) std::printf("%s\n", l.c_str());
        std::printf("# balanced split (the best above): %d attention SMs; everything below runs there\n", best_split);
    }
    std::printf(
        "#\n# calibration (solo runs on the pools) [measured-gpu]: Ta = %.4g*ba + %.4g us, Te = %.4g*be + "
        "%.4g us, Tc = %.1f us + bytes / %.0f GB/s\n",
        cal.k1, cal.k2, cal.k3, cal.k4, cal.link_latency_us, cal.link_gbps);
    std::printf("#   link utilisation by message size (plain copies):");
    for (std::size_t i = 0; i < cal.msg_bytes.size(); ++i)
        std::printf(" %.0fK:%.0f%%", cal.msg_bytes[i] / 1024, 100 * cal.msg_util[i]);
    std::printf(
        "\n#\n# Figure 14's shape: tokens/s against micro-batches m (iteration = L layers) [measured-gpu; "
        "model: modeled]\n");
    std::printf("%3s %10s %10s %10s %12s %12s %9s %10s %8s %7s\n", "m", "min ms", "median ms", "p95 ms", "tokens/s",
                "colocated/s", "vs coloc", "model ms", "model", "hidden");

    nlohmann::json rows = nlohmann::json::array();
    double tps1 = 0, tps2 = 0, worst_model = 0, best_piped = 0, best_coloc = 0, model1 = 0, model2 = 0;
    double ta_pool = 0, te_pool = 0, ta_gpu = 0, te_gpu = 0;
    for (int m = 1; m <= a.max_m; ++m) {
        say("m = " + std::to_string(m) + ": pipelined and colocated");
        s.micro_batches = m;
        auto pr = run(m, best_split, false, true);
        auto co = run(m, 0, true, true);
        const double med = median(pr.iteration_ms), cmed = median(co.iteration_ms);
        const double tps = s.tokens / (med * 1e-3), ctps = s.tokens / (cmed * 1e-3);
        best_piped = std::max(best_piped, tps), best_coloc = std::max(best_coloc, ctps);
        demos::PipelineInput in = demos::calibrated_input(s, cal);
        demos::PipelineSummary model = demos::simulate_pipeline(in, nullptr);
        const double err = (model.total_ms - med) / med;
        if (m <= 4) worst_model = std::max(worst_model, std::fabs(err));
        if (m == 1) tps1 = tps, model1 = model.total_ms;
        if (m == 2) tps2 = tps, model2 = model.total_ms;
        demos::PipelineSummary meas = demos::summarize_spans(pr.spans, s.layers, m, med);
        demos::PipelineSummary cmeas = demos::summarize_spans(co.spans, s.layers, m, cmed);
        if (m == msplit) ta_pool = meas.ta_ms, te_pool = meas.te_ms, ta_gpu = cmeas.ta_ms, te_gpu = cmeas.te_ms;
        std::printf("%3d %10.3f %10.3f %10.3f %12.4g %12.4g %8.2fx %10.3f %+7.1f%% %7s\n", m,
                    *std::min_element(pr.iteration_ms.begin(), pr.iteration_ms.end()), med, pct(pr.iteration_ms, 0.95),
                    tps, ctps, tps / ctps, model.total_ms, 100 * err, meas.comm_hidden ? "yes" : "no");
        rows.push_back({{"m", m},
                        {"iteration_ms", pr.iteration_ms},
                        {"median_ms", med},
                        {"tokens_per_s", tps},
                        {"colocated_ms", co.iteration_ms},
                        {"colocated_tokens_per_s", ctps},
                        {"model_ms", model.total_ms},
                        {"model_error", err},
                        {"ta_ms", meas.ta_ms},
                        {"te_ms", meas.te_ms},
                        {"tc_ms", meas.tc_ms},
                        {"colocated_ta_ms", cmeas.ta_ms},
                        {"colocated_te_ms", cmeas.te_ms},
                        {"attention_busy", meas.attention_util},
                        {"expert_busy", meas.expert_util},
                        {"experts_impl", pr.experts_impl},
                        {"provenance", s.pace_link ? "measured-gpu, links emulated" : "measured-gpu"}});
    }
    out["by_micro_batches"] = rows;
    // Whether splitting one GPU beats running the stages one after the other on all of it, and why.
    std::printf("#\n# disaggregation on one GPU vs colocation: best %.4g vs %.4g tokens/s (%.2fx)\n", best_piped,
                best_coloc, best_piped / best_coloc);
    if (ta_gpu > 0 && te_gpu > 0) {
        const std::string where_a = a.devices ? "on its own GPU" : "on its " + std::to_string(best_split) + " SMs";
        const std::string where_e =
            a.devices ? "on its own GPU" : "on the other " + std::to_string(sms - best_split) + " SMs";
        std::printf(
            "#   why: at m=%d a micro-batch's attention takes %.3f ms %s against %.3f ms on the whole GPU "
            "(%.2fx), its experts %.3f ms %s against %.3f ms (%.2fx).\n#   Overlap pays only while the "
            "slower pool, max(%.3f, %.3f) = %.3f ms, beats both stages in turn on one whole GPU, %.3f ms: %s.\n",
            msplit, ta_pool, where_a.c_str(), ta_gpu, ta_pool / ta_gpu, te_pool, where_e.c_str(), te_gpu,
            te_pool / te_gpu, ta_pool, te_pool, std::max(ta_pool, te_pool), ta_gpu + te_gpu,
            std::max(ta_pool, te_pool) < ta_gpu + te_gpu ? "here it does" : "here it does not");
    }
    out["verdict"] = {{"best_pipelined_tokens_per_s", best_piped},
                      {"best_colocated_tokens_per_s", best_coloc},
                      {"ta_pool_ms", ta_pool},
                      {"te_pool_ms", te_pool},
                      {"ta_gpu_ms", ta_gpu},
                      {"te_gpu_ms", te_gpu}};

    // What timing every span costs: the same run with only the iteration timed.
    say("span timing overhead at m=" + std::to_string(msplit));
    std::vector<double> with, without;
    for (int rep = 0; rep < 3; ++rep) {
        auto t = run(msplit, best_split, false, true), u = run(msplit, best_split, false, false);
        with.push_back(median(t.iteration_ms));
        without.push_back(median(u.iteration_ms));
    }
    const double overhead = (median(with) - median(without)) / median(without);

    // The checks, stated honestly.
    std::printf("#\n# checks\n");
    std::printf("#   model within 15%% of the measurement for m = 1..%d: worst %.1f%%  %s\n", std::min(4, a.max_m),
                100 * worst_model, worst_model <= 0.15 ? "PASS" : "MISS");
    if (a.max_m >= 2)
        std::printf("#   m = 2 gives %.3fx the tokens/s of m = 1 at the balanced split (target >= 1.6x)  %s\n",
                    tps2 / tps1, tps2 / tps1 >= 1.6 ? "PASS" : "MISS");
    // The model runs each pool at its solo speed; overlapped, the pools share the GPU's memory and power.
    const double ba2 = double(s.tokens) / msplit, be2 = ba2 * s.top_k / s.experts;
    const double ta_solo = (cal.k1 * ba2 + cal.k2) / 1e3, te_solo = (cal.k3 * be2 + cal.k4) / 1e3;
    if (a.max_m >= 2 && ta_pool > 0 && te_pool > 0 && model2 > 0)
        std::printf(
            "#     overlapped at m=%d, a micro-batch's attention took %.3f ms (solo %.3f, %+.0f%%) and its experts "
            "%.3f ms (solo %.3f, %+.0f%%);\n#     at their solo speeds (the model) m = 2 gives %.3fx m = 1%s\n",
            msplit, ta_pool, ta_solo, 100 * (ta_pool / ta_solo - 1), te_pool, te_solo, 100 * (te_pool / te_solo - 1),
            model1 / model2, a.devices ? "" : ": on one GPU the two pools share its HBM bandwidth and its power");
    std::printf("#   timing every span costs %+.1f%% of the iteration (median %.3f vs %.3f ms; target <= 5%%)  %s\n",
                100 * overhead, median(with), median(without), overhead <= 0.05 ? "PASS" : "MISS");
    out["checks"] = {{"model_worst_error_m1_4", worst_model},
                     {"m2_over_m1", a.max_m >= 2 ? tps2 / tps1 : 0.0},
                     {"m2_over_m1_model", model2 > 0 ? model1 / model2 : 0.0},
                     {"ta_solo_ms", ta_solo},
                     {"te_solo_ms", te_solo},
                     {"span_timing_overhead", overhead}};
    if (c.json) std::cout << out.dump(2) << "\n";
    if (!c.save.empty()) {
        std::ofstream f(c.save);
        if (!f) MOE_BAD_INPUT("--save " << c.save << ": cannot write the file");
        f << out.dump(2) << "\n";
    }
    return 0;
}

}  // namespace moelab_cli
