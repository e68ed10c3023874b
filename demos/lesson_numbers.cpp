// Turns a Result into the named numbers lessons read, tags each with its provenance, and computes the
// lesson model's modelled extras: the first pipeline bubble, the expert roofline, hot-expert copies.
#include "demos/lesson_numbers.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "demos/pipeline.hpp"
#include "demos/planner.hpp"
#include "kernels/common/error.hpp"

namespace demos::lesson {

const char* source_name(Source s) {
    switch (s) {
        case Source::Input: return "input";
        case Source::MeasuredGpu: return "measured-gpu";
        case Source::MeasuredCpu: return "measured-cpu";
        case Source::Emulated: return "emulated";
        case Source::Modeled: return "modeled";
    }
    return "modeled";
}

Source source_of(Provenance p) {
    switch (p) {
        case Provenance::MeasuredGpu: return Source::MeasuredGpu;
        case Provenance::MeasuredCpu: return Source::MeasuredCpu;
        case Provenance::Emulated: return Source::Emulated;
        case Provenance::Modeled: return Source::Modeled;
    }
    return Source::Modeled;
}

Source combine(Source a, Source b) {
    auto rank = [](Source s) {
        switch (s) {
            case Source::Input: return 0;
            case Source::MeasuredGpu:
            case Source::MeasuredCpu: return 1;
            case Source::Emulated: return 2;
            case Source::Modeled: return 3;
        }
        return 3;
    };
    return rank(a) >= rank(b) ? a : b;
}

const std::vector<MetricInfo>& metric_catalog() {
    static const std::vector<MetricInfo> list = {
        // The scenario's own parameters.
        {"tokens", "tokens", "T, tokens in the batch"},
        {"experts", "experts", "E, the number of experts"},
        {"top_k", "experts", "k, experts per token"},
        {"hidden", "elements", "d, the hidden size"},
        {"ffn", "elements", "F, the expert FFN width"},
        {"bytes_per_elem", "bytes", "b, bytes per element in the traffic (dtype)"},
        {"capacity_factor", "", "cf; 0 means dropless"},
        {"ranks", "ranks", "G, expert-parallel ranks (emulated on one device)"},
        {"micro_batches", "", "m, ping-pong micro-batches"},
        {"layers", "", "L, MoE layers in the pipeline model"},
        {"attention_replicas", "", "n_a, attention replicas"},
        {"link_gbps", "GB/s", "per-GPU link bandwidth of the modelled transfers"},
        {"context", "positions", "s, KV positions per sequence of the measured pipeline's decode attention"},
        {"attention_sms", "SMs", "SMs of the measured pipeline's attention pool on one GPU; 0 = half"},
        {"skew_param", "", "the skew's parameter: R of hot:R, s of zipf:s, 0 for uniform"},
        {"k1", "µs/token", "pipeline model: attention time per token (Ta = k1·ba + k2)"},
        {"k2", "µs", "pipeline model: attention's constant term"},
        {"k3", "µs/token", "pipeline model: expert time per token (Te = k3·be + k4)"},
        {"k4", "µs", "pipeline model: the experts' constant term"},
        {"given_ta_ms", "ms", "the scenario's direct Ta per micro-batch; -1 when derived from k1, k2"},
        {"given_te_ms", "ms", "the scenario's direct Te per micro-batch; -1 when derived from k3, k4"},
        {"given_tc_ms", "ms", "the scenario's direct Tc per micro-batch; -1 when derived from the link"},
        // Loads, counted from the routing that ran.
        {"expert_loads", "tokens", "kept tokens per expert (after drops)", true},
        {"demand", "tokens", "routed tokens per expert (before drops)", true},
        {"rank_loads", "tokens", "kept rows per rank", true},
        {"mean_load", "tokens", "mean kept tokens per expert"},
        {"max_load", "tokens", "kept tokens of the busiest expert"},
        {"second_load", "tokens", "kept tokens of the second-busiest expert"},
        {"min_load", "tokens", "kept tokens of the least busy expert"},
        {"straggler_factor", "×", "max/mean of the kept loads"},
        {"hottest_expert", "", "id of the busiest expert"},
        {"hot_share", "", "the busiest expert's share of all kept rows (0..1)"},
        {"active_experts", "experts", "experts that received at least one token"},
        {"capacity", "tokens", "C = ceil(cf·T·k/E); 0 when dropless"},
        {"dropped", "assignments", "token-expert assignments dropped by capacity"},
        {"dropped_pct", "%", "dropped as a percentage of T·k"},
        {"kept", "assignments", "assignments kept"},
        {"rank_straggler", "×", "max/mean of the per-rank loads"},
        {"max_rank_rows", "rows", "kept rows of the busiest rank"},
        // Communication.
        {"comm_bytes", "bytes", "the seed's 2·T·k·d·b (dispatch + combine)"},
        {"comm_mib", "MiB", "comm_bytes in MiB"},
        {"routed_bytes", "bytes", "dispatch + combine bytes that cross ranks, counted from the routing"},
        {"routed_mib", "MiB", "routed_bytes in MiB"},
        {"dedup_bytes", "bytes", "the same when a token goes once per destination rank"},
        {"dedup_mib", "MiB", "dedup_bytes in MiB"},
        {"remote_share", "", "routed_bytes / comm_bytes: the share of the traffic that leaves its rank"},
        {"max_rank_send_bytes", "bytes", "dispatch bytes the busiest sender puts on its link"},
        {"max_rank_send_mib", "MiB", "max_rank_send_bytes in MiB"},
        {"comm_time_ms", "ms", "dispatch time of the busiest rank: measured over NCCL, else modelled at link_gbps"},
        // Packing, timed per strategy (dispatch demo; 0 in other demos): median, fastest and 95th percentile.
        {"pack_sort_ms", "ms", "sort: radix-sort by expert, then gather; median of the repeats"},
        {"pack_sort_min_ms", "ms", "sort, fastest repeat"},
        {"pack_sort_p95_ms", "ms", "sort, 95th percentile"},
        {"pack_atomic_ms", "ms", "atomic: one cursor per expert; median"},
        {"pack_atomic_min_ms", "ms", "atomic, fastest repeat"},
        {"pack_atomic_p95_ms", "ms", "atomic, 95th percentile"},
        {"pack_scan_ms", "ms", "scan: block histograms, exclusive scan, stable scatter; median"},
        {"pack_scan_min_ms", "ms", "scan, fastest repeat"},
        {"pack_scan_p95_ms", "ms", "scan, 95th percentile"},
        {"pack_nopack_ms", "ms", "no-pack: the plan only, no rows moved; median"},
        {"pack_nopack_min_ms", "ms", "no-pack, fastest repeat"},
        {"pack_nopack_p95_ms", "ms", "no-pack, 95th percentile"},
        {"copy_gbps", "GB/s", "this backend's measured copy bandwidth (dispatch demo)"},
        {"layer_ms", "ms", "sum of the measured stage medians of the run"},
        // The pipeline model (MegaScale-Infer's ping-pong schedule).
        {"ta_ms", "ms", "attention time per micro-batch"},
        {"te_ms", "ms", "expert time per micro-batch"},
        {"tc_ms", "ms", "one-way transfer time per micro-batch"},
        {"tf_ms", "ms", "Tf = max(Ta, Te)"},
        {"iteration_ms", "ms", "simulated iteration time"},
        {"closed_form_ms", "ms", "(Ta+Te+2Tc) + Tf·(mL−1)"},
        {"min_micro_batches", "", "2·(1 + Tc/Tf)"},
        {"comm_hidden", "", "1 when m ≥ 2(1+Tc/Tf) and Tc ≤ Tf, else 0"},
        {"attention_util", "", "busy share of the attention pool"},
        {"expert_util", "", "busy share of the expert pool"},
        {"first_bubble_ms", "ms", "start of the first idle gap in a compute pool after it began; -1 if none"},
        {"bubble_ms", "ms", "idle time inside the busy period of both compute pools, summed"},
        {"tokens_per_s_per_gpu", "tokens/s", "T / iteration time / (n_a + E)"},
        {"pipe_iteration_ms", "ms", "the iteration measured on GPU pools (pipeline demo on cuda), else the model's"},
        {"pipe_iteration_min_ms", "ms", "the same, fastest repeat"},
        {"pipe_iteration_p95_ms", "ms", "the same, 95th percentile"},
        {"pipe_ta_ms", "ms", "measured attention span per micro-batch (median), else the model's Ta"},
        {"pipe_te_ms", "ms", "measured expert span per micro-batch (median), else the model's Te"},
        {"pipe_tc_ms", "ms", "measured transfer span per micro-batch (median), else the model's Tc"},
        {"pipe_expert_util", "", "busy share of the expert pool, measured, else the model's"},
        {"balanced_replicas", "", "k1·E/(k3·K): the n_a that balances Ta and Te (Constraint 1)"},
        {"best_replicas", "", "the planner's n_a with the highest throughput per GPU (m from 1 to 8)"},
        // The expert FFN on a roofline, from the counted loads (bf16).
        {"expert_flops", "FLOP", "6·d·F per kept assignment"},
        {"expert_weight_bytes", "bytes", "6·d·F bytes for every active expert (its weights are read once)"},
        {"expert_act_bytes", "bytes", "4·d bytes per kept assignment (activations in and out)"},
        {"intensity", "FLOP/byte", "expert_flops / (expert_weight_bytes + expert_act_bytes)"},
    };
    return list;
}

const std::vector<FunctionInfo>& function_catalog() {
    static const std::vector<FunctionInfo> list = {
        {"split_hot(r)",
         "modelled: the busiest load after the hottest expert gets r copies on spare GPUs, each taking 1/r of "
         "its tokens: max(max_load/r, second_load)"},
        {"roofline_ms(peak_tflops, mem_gbps)",
         "modelled: expert FFN time on a roofline, max(expert_flops/peak, bytes/bandwidth), in ms"},
        {"load(e)", "kept tokens of expert e"},
    };
    return list;
}

bool is_input_metric(const std::string& name) {
    static const char* inputs[] = {"tokens", "experts", "top_k", "hidden", "ffn", "bytes_per_elem", "capacity_factor",
                                   "ranks", "micro_batches", "layers", "attention_replicas", "link_gbps",
                                   "context", "attention_sms",
                                   "skew_param", "k1", "k2", "k3", "k4", "given_ta_ms", "given_te_ms",
                                   "given_tc_ms", "capacity"};
    for (auto* i : inputs)
        if (name == i) return true;
    return false;
}

bool is_lesson_function(const std::string& name) { return name == "split_hot" || name == "roofline_ms" || name == "load"; }

double max_over_mean(const std::vector<double>& v) {
    if (v.empty()) return 0;
    double sum = std::accumulate(v.begin(), v.end(), 0.0);
    double mean = sum / double(v.size());
    return mean > 0 ? *std::max_element(v.begin(), v.end()) / mean : 0.0;
}

double max_rank_send_bytes(const Result& r) {
    double send = 0;
    for (int src = 0; src < r.ranks; ++src) {
        double b = 0;
        for (int dst = 0; dst < r.ranks; ++dst)
            if (dst != src && std::size_t(src * r.ranks + dst) < r.traffic_bytes.size())
                b += r.traffic_bytes[std::size_t(src) * r.ranks + dst];
        send = std::max(send, b);
    }
    return send;
}

namespace {

// The first idle gap in the attention or expert lane of the modelled timeline, after that lane's first span,
// and the summed idle time inside each lane's busy period. Gaps shorter than a relative epsilon are rounding.
void bubbles(const std::vector<Span>& spans, double total, double* first, double* idle) {
    *first = -1;
    *idle = 0;
    const double eps = 1e-9 * std::max(total, 1e-9);
    for (const char* lane : {"attention", "experts"}) {
        std::vector<std::pair<double, double>> v;
        for (auto& s : spans)
            if (s.lane == lane) v.push_back({s.start_ms, s.end_ms});
        std::sort(v.begin(), v.end());
        for (std::size_t i = 1; i < v.size(); ++i) {
            double gap = v[i].first - v[i - 1].second;
            if (gap > eps) {
                *idle += gap;
                if (*first < 0 || v[i - 1].second < *first) *first = v[i - 1].second;
            }
        }
    }
}

}  // namespace

RunNumbers numbers_of(const Result& r) {
    RunNumbers n;
    const Scenario& s = r.scenario;
    auto put = [&](const char* name, double v, Source src) { n.scalars[name] = {v, src}; };
    const Source in = Source::Input, loads = source_of(r.loads_provenance), comm = source_of(r.comm_provenance);
    const Source model = Source::Modeled;

    put("tokens", double(s.tokens), in);
    put("experts", s.experts, in);
    put("top_k", s.top_k, in);
    put("hidden", s.hidden, in);
    put("ffn", s.ffn, in);
    put("bytes_per_elem", s.bytes_per_elem(), in);
    put("capacity_factor", s.capacity_factor, in);
    put("ranks", s.ranks, in);
    put("micro_batches", s.micro_batches, in);
    put("layers", s.layers, in);
    put("attention_replicas", s.attention_replicas, in);
    put("link_gbps", s.link_gbps, in);
    put("context", s.context, in);
    put("attention_sms", s.attention_sms, in);
    double skew_param = 0;
    try {
        skew_param = moe::route::parse_skew(s.skew).param;
    } catch (const moe::Error&) {
    }
    put("skew_param", skew_param, in);
    put("k1", s.k1, in);
    put("k2", s.k2, in);
    put("k3", s.k3, in);
    put("k4", s.k4, in);
    put("given_ta_ms", s.ta_ms, in);
    put("given_te_ms", s.te_ms, in);
    put("given_tc_ms", s.tc_ms, in);

    auto as_double = [](const std::vector<std::int64_t>& v) { return std::vector<double>(v.begin(), v.end()); };
    n.vectors["expert_loads"] = as_double(r.expert_loads);
    n.vectors["demand"] = as_double(r.demand);
    n.vectors["rank_loads"] = as_double(r.rank_loads);
    for (auto* v : {"expert_loads", "demand", "rank_loads"}) n.vector_sources[v] = loads;

    std::vector<double> sorted = n.vectors["expert_loads"];
    std::sort(sorted.rbegin(), sorted.rend());
    const double kept = std::accumulate(sorted.begin(), sorted.end(), 0.0);
    const double assignments = double(s.tokens) * s.top_k;
    put("mean_load", r.mean_load, loads);
    put("max_load", sorted.empty() ? 0 : sorted[0], loads);
    put("second_load", sorted.size() > 1 ? sorted[1] : 0, loads);
    put("min_load", sorted.empty() ? 0 : sorted.back(), loads);
    put("straggler_factor", r.straggler_factor, loads);
    put("hottest_expert", r.hottest_expert, loads);
    put("hot_share", kept > 0 && !sorted.empty() ? sorted[0] / kept : 0, loads);
    put("active_experts", double(std::count_if(sorted.begin(), sorted.end(), [](double v) { return v > 0; })), loads);
    put("capacity", double(moe::route::capacity(s.capacity_factor, s.tokens, s.top_k, s.experts)), in);
    put("dropped", double(r.dropped), loads);
    put("dropped_pct", assignments > 0 ? 100.0 * double(r.dropped) / assignments : 0, loads);
    put("kept", kept, loads);
    put("rank_straggler", r.rank_straggler, loads);
    put("max_rank_rows",
        r.rank_loads.empty() ? 0 : double(*std::max_element(r.rank_loads.begin(), r.rank_loads.end())), loads);

    const double mib = 1024.0 * 1024.0;
    put("comm_bytes", r.seed_bytes, model);
    put("comm_mib", r.seed_bytes / mib, model);
    put("routed_bytes", r.routed_bytes, comm);
    put("routed_mib", r.routed_bytes / mib, comm);
    put("dedup_bytes", r.dedup_bytes, comm);
    put("dedup_mib", r.dedup_bytes / mib, comm);
    put("remote_share", r.seed_bytes > 0 ? r.routed_bytes / r.seed_bytes : 0, comm);
    const double send = max_rank_send_bytes(r);
    put("max_rank_send_bytes", send, comm);
    put("max_rank_send_mib", send / mib, comm);
    put("comm_time_ms", r.comm_ms >= 0 ? r.comm_ms : 0, source_of(r.comm_time_provenance));
    for (const char* st : {"sort", "atomic", "scan", "nopack"}) {
        const StageTime* t = nullptr;
        for (auto& x : r.strategies)
            if (x.strategy == st) t = &x.time;
        const Source src = t ? source_of(t->provenance) : loads;
        const std::string base = std::string("pack_") + st;
        n.scalars[base + "_ms"] = {t ? t->median_ms : 0, src};
        n.scalars[base + "_min_ms"] = {t ? t->min_ms : 0, src};
        n.scalars[base + "_p95_ms"] = {t ? t->p95_ms : 0, src};
    }
    put("copy_gbps", r.copy_gbps, source_of(r.copy_provenance));
    put("layer_ms", r.total_ms(), r.stages.empty() ? loads : source_of(r.stages.front().provenance));

    // The model at the scenario's own constants (a GPU run calibrates r.pipeline on the machine instead; the
    // lessons' conceptual questions are posed at the scenario's constants, so they are recomputed here).
    std::vector<Span> model_tl = r.model_timeline;
    PipelineSummary p = r.pipeline;
    if (r.measured_pipeline.present) {
        model_tl.clear();
        p = simulate_pipeline(pipeline_input(s), &model_tl);
    }
    const Source pipe = source_of(p.provenance);
    put("ta_ms", p.ta_ms, pipe);
    put("te_ms", p.te_ms, pipe);
    put("tc_ms", p.tc_ms, pipe);
    put("tf_ms", p.tf_ms, pipe);
    put("iteration_ms", p.total_ms, pipe);
    put("closed_form_ms", p.closed_form_ms, pipe);
    put("min_micro_batches", p.min_micro_batches, pipe);
    put("comm_hidden", p.comm_hidden ? 1 : 0, pipe);
    put("attention_util", p.attention_util, pipe);
    put("expert_util", p.expert_util, pipe);
    double first = -1, idle = 0;
    const bool measured_spans =
        p.provenance != Provenance::Modeled && !r.measured_pipeline.present &&
        std::any_of(r.timeline.begin(), r.timeline.end(), [](const Span& sp) { return sp.lane == "attention"; });
    bubbles(measured_spans ? r.timeline : model_tl, p.total_ms, &first, &idle);
    put("first_bubble_ms", first, pipe);
    put("bubble_ms", idle, pipe);
    put("tokens_per_s_per_gpu",
        p.total_ms > 0 ? double(s.tokens) / (p.total_ms * 1e-3) / double(s.attention_replicas + s.experts) : 0, pipe);
    // The same schedule run on GPU pools (demo pipeline, cuda backend); the model's numbers where it did not run.
    // A2E/E2A paced at the scenario's link rate are emulated, and so is an iteration that waits on them.
    const PipelineRun& mp = r.measured_pipeline;
    const Source ms = mp.present ? Source::MeasuredGpu : pipe;
    const Source link = mp.present && mp.link_paced ? Source::Emulated : ms;
    put("pipe_iteration_ms", mp.present ? mp.iteration.median_ms : p.total_ms, link);
    put("pipe_iteration_min_ms", mp.present ? mp.iteration.min_ms : p.total_ms, link);
    put("pipe_iteration_p95_ms", mp.present ? mp.iteration.p95_ms : p.total_ms, link);
    put("pipe_ta_ms", mp.present ? mp.measured.ta_ms : p.ta_ms, ms);
    put("pipe_te_ms", mp.present ? mp.measured.te_ms : p.te_ms, ms);
    put("pipe_tc_ms", mp.present ? mp.measured.tc_ms : p.tc_ms, link);
    put("pipe_expert_util", mp.present ? mp.measured.expert_util : p.expert_util, ms);
    put("balanced_replicas", balanced_replicas(s), model);
    put("best_replicas", best_plan(s).na, model);

    const double dF = double(s.hidden) * s.ffn;
    put("expert_flops", 6.0 * dF * kept, model);
    put("expert_weight_bytes", 6.0 * dF * n.scalars["active_experts"].value, model);
    put("expert_act_bytes", 4.0 * s.hidden * kept, model);
    double bytes = n.scalars["expert_weight_bytes"].value + n.scalars["expert_act_bytes"].value;
    put("intensity", bytes > 0 ? n.scalars["expert_flops"].value / bytes : 0, model);
    return n;
}

std::optional<Number> call_function(const RunNumbers& run, const std::string& name, const std::vector<double>& args) {
    auto need = [&](std::size_t count) {
        if (args.size() != count) MOE_BAD_INPUT(name << "() takes " << count << " argument(s), got " << args.size());
    };
    auto get = [&](const char* k) { return run.scalars.at(k).value; };
    if (name == "split_hot") {
        need(1);
        if (!(args[0] >= 1)) MOE_BAD_INPUT("split_hot(r): r = " << args[0] << " must be at least 1");
        return Number{std::max(get("max_load") / args[0], get("second_load")), Source::Modeled};
    }
    if (name == "roofline_ms") {
        need(2);
        if (!(args[0] > 0 && args[1] > 0))
            MOE_BAD_INPUT("roofline_ms(peak_tflops, mem_gbps): both must be positive, got " << args[0] << ", "
                                                                                           << args[1]);
        double compute = get("expert_flops") / (args[0] * 1e12);
        double memory = (get("expert_weight_bytes") + get("expert_act_bytes")) / (args[1] * 1e9);
        return Number{std::max(compute, memory) * 1e3, Source::Modeled};
    }
    if (name == "load") {
        need(1);
        const auto& v = run.vectors.at("expert_loads");
        double e = args[0];
        if (!(e >= 0 && e < double(v.size()) && e == std::floor(e)))
            MOE_BAD_INPUT("load(e): e = " << e << " must be an expert id from 0 to " << v.size() - 1);
        return Number{v[std::size_t(e)], run.vector_sources.at("expert_loads")};
    }
    return std::nullopt;
}

}  // namespace demos::lesson
