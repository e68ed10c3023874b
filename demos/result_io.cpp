// Serialises a Result: JSON (the machine contract), CSV (long format, one number a row) and the readable table.
// Provenance travels with every figure; a modelled time is labelled as such.
#include "demos/result_io.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace demos {

using nlohmann::json;

json to_json(const Result& r) {
    json j;
    j["demo"] = demo_name(r.demo);
    j["backend"] = r.backend;
    j["device"] = r.device;
    if (!r.experts_impl.empty()) j["experts_impl"] = r.experts_impl;
    j["notes"] = r.notes;
    j["caveats"] = r.caveats;  // Result::Caveat bits: what the front ends act on
    j["scenario"] = json::parse("{}");
    {
        const Scenario& s = r.scenario;
        j["scenario"] = {{"tokens", s.tokens}, {"experts", s.experts}, {"top_k", s.top_k}, {"hidden", s.hidden},
                         {"ffn", s.ffn}, {"dtype", s.dtype}, {"skew", s.skew}, {"router", s.router},
                         {"renormalize", s.renormalize}, {"capacity_factor", s.capacity_factor},
                         {"drop_policy", s.drop_policy}, {"align", s.align}, {"strategy", s.strategy},
                         {"ranks", s.ranks}, {"micro_batches", s.micro_batches}, {"layers", s.layers},
                         {"attention_replicas", s.attention_replicas}, {"link_gbps", s.link_gbps},
                         {"seed", s.seed}, {"repeats", s.repeats}};
    }
    j["scenario_toml"] = r.scenario.to_toml();  // the whole scenario, so a saved Result loads back (result_load.hpp)
    j["loads_provenance"] = provenance_name(r.loads_provenance);
    j["expert_loads"] = r.expert_loads;
    j["expert_demand"] = r.demand;
    j["mean_load"] = r.mean_load;
    j["straggler_factor"] = r.straggler_factor;
    j["hottest_expert"] = r.hottest_expert;
    j["capacity"] = r.capacity;
    j["dropped"] = r.dropped;
    j["rank_loads"] = r.rank_loads;
    j["rank_straggler_factor"] = r.rank_straggler;
    j["comm_bytes"] = r.seed_bytes;
    j["comm"] = {{"provenance", provenance_name(r.comm_provenance)},
                 {"formula", "2*T*k*d*b"},
                 {"bytes_per_elem", r.bytes_per_elem},
                 {"seed_bytes", r.seed_bytes},
                 {"routed_bytes", r.routed_bytes},
                 {"dedup_bytes", r.dedup_bytes},
                 {"ranks", r.ranks},
                 {"traffic_tokens", r.traffic_tokens},
                 {"traffic_bytes", r.traffic_bytes}};
    if (r.comm_ms >= 0)
        j["comm"]["time_ms"] = {{"value", r.comm_ms}, {"provenance", provenance_name(r.comm_time_provenance)}};
    if (!r.traffic_ms.empty())
        j["comm"]["traffic_ms"] = {{"value", r.traffic_ms}, {"provenance", provenance_name(r.traffic_ms_provenance)}};
    json stages = json::array(), stage_ms = json::object();
    for (auto& s : r.stages) {
        stages.push_back({{"stage", s.stage}, {"min_ms", s.min_ms}, {"median_ms", s.median_ms}, {"p95_ms", s.p95_ms},
                          {"repeats", s.repeats}, {"provenance", provenance_name(s.provenance)}});
        stage_ms[s.stage] = s.median_ms;
    }
    j["stages"] = stages;
    j["stage_ms"] = stage_ms;
    j["total_ms"] = r.total_ms();
    if (!r.strategies.empty()) {
        json st = json::array();
        for (auto& s : r.strategies)
            st.push_back({{"strategy", s.strategy}, {"median_ms", s.time.median_ms}, {"min_ms", s.time.min_ms},
                          {"p95_ms", s.time.p95_ms}, {"bytes", s.bytes},
                          {"provenance", provenance_name(s.time.provenance)}});
        j["strategies"] = st;
        j["copy_gbps"] = {{"value", r.copy_gbps}, {"provenance", provenance_name(r.copy_provenance)}};
    }
    auto spans = [](const std::vector<Span>& v) {
        json a = json::array();
        for (auto& s : v)
            a.push_back({{"lane", s.lane}, {"label", s.label}, {"layer", s.layer}, {"micro_batch", s.micro_batch},
                         {"rank", s.rank}, {"start_ms", s.start_ms}, {"end_ms", s.end_ms},
                         {"provenance", provenance_name(s.provenance)}});
        return a;
    };
    j["timeline"] = spans(r.timeline);
    if (r.pipeline.present) {
        const auto& p = r.pipeline;
        j["pipeline"] = {{"provenance", provenance_name(p.provenance)},
                         {"layers", p.layers},
                         {"micro_batches", p.micro_batches},
                         {"ta_ms", p.ta_ms},
                         {"te_ms", p.te_ms},
                         {"tc_ms", p.tc_ms},
                         {"tf_ms", p.tf_ms},
                         {"total_ms", p.total_ms},
                         {"closed_form_ms", p.closed_form_ms},
                         {"min_micro_batches", p.min_micro_batches},
                         {"comm_hidden", p.comm_hidden},
                         {"attention_util", p.attention_util},
                         {"expert_util", p.expert_util},
                         {"timeline", spans(r.model_timeline)}};
    }
    if (r.measured_pipeline.present) {
        const auto& mp = r.measured_pipeline;
        const auto& q = mp.measured;
        j["measured_pipeline"] = {
            {"provenance", mp.link_paced ? "measured-gpu (links emulated)" : "measured-gpu"},
            {"pools", mp.pools},
            {"pools_note", mp.pools_note},
            {"device_sms", mp.device_sms},
            {"attention_sms", mp.attention_sms},
            {"expert_sms", mp.expert_sms},
            {"iteration_ms", {{"min", mp.iteration.min_ms}, {"median", mp.iteration.median_ms},
                              {"p95", mp.iteration.p95_ms}, {"repeats", mp.iteration.repeats}}},
            {"tokens_per_s", mp.tokens_per_s},
            {"ta_ms", q.ta_ms},
            {"te_ms", q.te_ms},
            {"tc_ms", q.tc_ms},
            {"min_micro_batches", q.min_micro_batches},
            {"comm_hidden", q.comm_hidden},
            {"attention_busy", q.attention_util},
            {"expert_busy", q.expert_util},
            {"experts_impl", mp.experts_impl},
            {"calibration", {{"k1", mp.k1}, {"k2", mp.k2}, {"k3", mp.k3}, {"k4", mp.k4}, {"link_gbps", mp.link_gbps},
                             {"link_latency_us", mp.link_latency_us}, {"msg_bytes", mp.msg_bytes},
                             {"msg_util", mp.msg_util}}},
            {"model_error", mp.model_error}};
    }
    return j;
}

namespace {
// One text row per lane: each column is total/width ms, marked with the micro-batch running there ('.' idle).
std::string ascii_timeline(const std::vector<Span>& spans, double total_ms) {
    if (spans.empty() || !(total_ms > 0)) return "";
    const int width = 64;
    static const char* lanes[] = {"attention", "a2e", "experts", "e2a"};
    static const char marks[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    std::ostringstream os;
    for (const char* lane : lanes) {
        std::string row(width, '.');
        bool any = false;
        for (auto& sp : spans) {
            if (sp.lane != lane) continue;
            any = true;
            int a = int(sp.start_ms / total_ms * width), b = int(std::ceil(sp.end_ms / total_ms * width));
            a = std::clamp(a, 0, width - 1), b = std::clamp(b, a + 1, width);
            for (int c = a; c < b; ++c) row[c] = marks[sp.micro_batch % 62];
        }
        if (any) os << "  " << std::string(lane) + std::string(10 - std::strlen(lane), ' ') << "|" << row << "|\n";
    }
    char buf[200];
    std::snprintf(buf, sizeof buf, "  %10s0%*s%.3f ms (digits: micro-batch)\n", "", width - 1, "", total_ms);
    os << buf;
    return os.str();
}
}  // namespace

std::string to_csv(const Result& r) {
    std::ostringstream os;
    os << "section,key,index,value,unit,provenance\n";
    const char* lp = provenance_name(r.loads_provenance);
    for (std::size_t e = 0; e < r.expert_loads.size(); ++e)
        os << "loads,expert_load," << e << "," << r.expert_loads[e] << ",tokens," << lp << "\n";
    os << "loads,straggler_factor,," << r.straggler_factor << ",ratio," << lp << "\n";
    os << "loads,dropped,," << r.dropped << ",assignments," << lp << "\n";
    os << "loads,capacity,," << r.capacity << ",tokens," << lp << "\n";
    const char* cp = provenance_name(r.comm_provenance);
    os << "comm,seed_bytes,," << r.seed_bytes << ",bytes,modeled\n";
    os << "comm,routed_bytes,," << r.routed_bytes << ",bytes," << cp << "\n";
    os << "comm,dedup_bytes,," << r.dedup_bytes << ",bytes," << cp << "\n";
    for (auto& s : r.stages) {
        os << "stage," << s.stage << ",median," << s.median_ms << ",ms," << provenance_name(s.provenance) << "\n";
        os << "stage," << s.stage << ",p95," << s.p95_ms << ",ms," << provenance_name(s.provenance) << "\n";
    }
    for (auto& s : r.strategies)
        os << "dispatch," << s.strategy << ",median," << s.time.median_ms << ",ms,"
           << provenance_name(s.time.provenance) << "\n";
    if (r.pipeline.present) {
        os << "pipeline,total_ms,," << r.pipeline.total_ms << ",ms,modeled\n";
        os << "pipeline,comm_hidden,," << (r.pipeline.comm_hidden ? 1 : 0) << ",bool,modeled\n";
    }
    return os.str();
}

namespace {
std::string human_bytes(double b) {
    char buf[32];
    const char* u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) b /= 1024, ++i;
    std::snprintf(buf, sizeof buf, "%.2f %s", b, u[i]);
    return buf;
}
}  // namespace

std::string to_table(const Result& r) {
    std::ostringstream os;
    char buf[256];
    const Scenario& s = r.scenario;
    os << "moelab " << demo_name(r.demo) << " on " << r.backend << " (" << r.device << ")\n";
    for (auto& n : r.notes) os << "  note: " << n << "\n";
    std::snprintf(buf, sizeof buf, "  T=%lld E=%d k=%d d=%d F=%d skew=%s cf=%g ranks=%d seed=%llu\n",
                  (long long)s.tokens, s.experts, s.top_k, s.hidden, s.ffn, s.skew.c_str(), s.capacity_factor,
                  s.ranks, (unsigned long long)s.seed);
    os << buf << "\n";
    os << "expert loads [" << provenance_name(r.loads_provenance) << "]\n";
    std::int64_t mx = 1;
    for (auto v : r.expert_loads) mx = std::max(mx, v);
    std::size_t shown = std::min<std::size_t>(r.expert_loads.size(), 32);
    for (std::size_t e = 0; e < shown; ++e) {
        int bar = static_cast<int>(40.0 * r.expert_loads[e] / mx);
        std::snprintf(buf, sizeof buf, "  e%-3zu %7lld %s%s\n", e, (long long)r.expert_loads[e],
                      std::string(bar, '#').c_str(), int(e) == r.hottest_expert ? "  <- hottest" : "");
        os << buf;
    }
    if (shown < r.expert_loads.size()) os << "  ... " << r.expert_loads.size() - shown << " more experts\n";
    std::snprintf(buf, sizeof buf, "  mean %.1f   max/mean (straggler factor) %.3f   capacity %lld   dropped %lld\n\n",
                  r.mean_load, r.straggler_factor, (long long)r.capacity, (long long)r.dropped);
    os << buf;
    os << "communication (b=" << r.bytes_per_elem << " bytes/elem, " << r.ranks << " ranks)\n";
    std::snprintf(buf, sizeof buf, "  2*T*k*d*b = 2*%lld*%d*%d*%d = %s [modeled]\n", (long long)s.tokens, s.top_k,
                  s.hidden, r.bytes_per_elem, human_bytes(r.seed_bytes).c_str());
    os << buf;
    if (r.ranks > 1) {
        os << "  crossing ranks " << human_bytes(r.routed_bytes) << ", deduplicated per rank "
           << human_bytes(r.dedup_bytes) << " [" << provenance_name(r.comm_provenance) << "]\n";
        if (r.comm_ms >= 0) {
            std::snprintf(buf, sizeof buf, "  transfer time %.3f ms [%s]\n", r.comm_ms,
                          provenance_name(r.comm_time_provenance));
            os << buf;
        }
    }
    os << "\nstage times (ms)\n";
    std::snprintf(buf, sizeof buf, "  %-10s %10s %10s %10s %4s  %s\n", "stage", "min", "median", "p95", "n",
                  "provenance");
    os << buf;
    for (auto& st : r.stages) {
        std::snprintf(buf, sizeof buf, "  %-10s %10.3f %10.3f %10.3f %4d  %s\n", st.stage.c_str(), st.min_ms,
                      st.median_ms, st.p95_ms, st.repeats, provenance_name(st.provenance));
        os << buf;
    }
    std::snprintf(buf, sizeof buf, "  %-10s %21.3f\n", "total", r.total_ms());
    os << buf;
    if (!r.experts_impl.empty()) os << "  expert FFN implementation: " << r.experts_impl << "\n";
    const bool packed = std::any_of(r.stages.begin(), r.stages.end(), [](auto& st) { return st.stage == "dispatch"; });
    if (packed && r.strategies.empty()) {
        os << "  packing strategy: " << r.scenario.strategy;
        if (r.backend == "cpu") os << " (on the CPU reference every strategy runs the same plain pack)";
        os << "\n";
    }
    if (!r.strategies.empty()) {
        os << "\ndispatch strategies (ms; floor = bytes moved / measured copy bandwidth " << int(r.copy_gbps)
           << " GB/s)\n";
        for (auto& st : r.strategies) {
            double floor_ms = r.copy_gbps > 0 ? st.bytes / (r.copy_gbps * 1e9) * 1e3 : 0;
            std::snprintf(buf, sizeof buf, "  %-8s median %9.3f  p95 %9.3f  floor %8.3f  %5.1f%% of floor  [%s]\n",
                          st.strategy.c_str(), st.time.median_ms, st.time.p95_ms, floor_ms,
                          st.time.median_ms > 0 ? 100 * floor_ms / st.time.median_ms : 0.0,
                          provenance_name(st.time.provenance));
            os << buf;
        }
    }
    if (r.measured_pipeline.present && r.demo == Demo::Pipeline) {
        const auto& mp = r.measured_pipeline;
        const auto& q = mp.measured;
        os << "\nping-pong pipeline, measured on " << r.device << " [measured-gpu"
           << (mp.link_paced ? "; A2E/E2A emulated]" : "]") << "\n";
        if (mp.pools == "green-contexts")
            std::snprintf(buf, sizeof buf, "  pools: green contexts, attention %d SMs | experts %d SMs (of %d)\n",
                          mp.attention_sms, mp.expert_sms, mp.device_sms);
        else
            std::snprintf(buf, sizeof buf, "  pools: %s%s%.150s\n", mp.pools.c_str(), mp.pools_note.empty() ? "" : ": ",
                          mp.pools_note.c_str());
        os << buf;
        std::snprintf(buf, sizeof buf,
                      "  L=%d m=%d  iteration min %.3f  median %.3f  p95 %.3f ms (%d repeats), %.3g tokens/s\n",
                      q.layers, q.micro_batches, mp.iteration.min_ms, mp.iteration.median_ms, mp.iteration.p95_ms,
                      mp.iteration.repeats, mp.tokens_per_s);
        os << buf;
        std::snprintf(buf, sizeof buf,
                      "  median spans per micro-batch: Ta %.3f  Te %.3f  Tc %.3f ms; busy: attention %.0f%%, "
                      "experts %.0f%%\n  hide communication needs m >= 2(1+Tc/Tf) = %.2f with the measured Tc, Tf: "
                      "%s\n",
                      q.ta_ms, q.te_ms, q.tc_ms, 100 * q.attention_util, 100 * q.expert_util, q.min_micro_batches,
                      q.comm_hidden ? "met" : "NOT met");
        os << buf;
        const double scale = std::max(r.pipeline.total_ms, mp.iteration.median_ms);
        os << ascii_timeline(r.timeline, scale);
        std::snprintf(buf, sizeof buf,
                      "\nmodel with constants fitted on this GPU [modeled]: Ta = %.4g*ba + %.4g us, Te = %.4g*be + "
                      "%.4g us, link %.0f GB/s + %.1f us\n",
                      mp.k1, mp.k2, mp.k3, mp.k4, mp.link_gbps, mp.link_latency_us);
        os << buf;
        std::snprintf(buf, sizeof buf,
                      "  Ta=%.3f Te=%.3f Tc=%.3f ms, iteration %.3f ms: %+.1f%% against the measurement\n",
                      r.pipeline.ta_ms, r.pipeline.te_ms, r.pipeline.tc_ms, r.pipeline.total_ms,
                      100 * mp.model_error);
        os << buf;
        os << ascii_timeline(r.model_timeline, scale);
    } else if (r.pipeline.present && r.demo == Demo::Pipeline) {
        const auto& p = r.pipeline;
        os << "\nping-pong pipeline [modeled]\n";
        std::snprintf(buf, sizeof buf,
                      "  L=%d m=%d Ta=%.3f Te=%.3f Tc=%.3f Tf=%.3f ms\n  iteration %.3f ms (closed form %.3f ms)\n"
                      "  hide communication needs m >= 2(1+Tc/Tf) = %.2f: %s\n  utilisation: attention %.0f%%, "
                      "experts %.0f%%\n",
                      p.layers, p.micro_batches, p.ta_ms, p.te_ms, p.tc_ms, p.tf_ms, p.total_ms, p.closed_form_ms,
                      p.min_micro_batches, p.comm_hidden ? "met" : "NOT met", 100 * p.attention_util,
                      100 * p.expert_util);
        os << buf;
        os << ascii_timeline(r.model_timeline, p.total_ms);
    }
    return os.str();
}

}  // namespace demos
