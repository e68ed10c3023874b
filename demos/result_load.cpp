// Reads what to_json writes. Unknown keys are ignored (newer files); missing ones keep their defaults; a wrong
// type or a bad provenance name is BadInput naming the key.
#include "demos/result_load.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "demos/atomic_file.hpp"
#include "kernels/common/error.hpp"

namespace demos {

namespace {

using nlohmann::json;

Provenance parse_provenance(const std::string& s, const std::string& where) {
    if (s.rfind("measured-gpu", 0) == 0) return Provenance::MeasuredGpu;  // "measured-gpu (links emulated)" too
    if (s == "measured-cpu") return Provenance::MeasuredCpu;
    if (s == "emulated") return Provenance::Emulated;
    if (s == "modeled") return Provenance::Modeled;
    MOE_BAD_INPUT(where << ": provenance '" << s << "': allowed: measured-gpu, measured-cpu, emulated, modeled");
}

struct Reader {
    std::string source;
    template <class T>
    void get(const json& j, const char* key, T& out) const {
        if (!j.is_object() || !j.contains(key) || j[key].is_null()) return;
        try {
            out = j[key].get<T>();
        } catch (const json::exception&) {
            MOE_BAD_INPUT(source << ": key '" << key << "' has the wrong type (" << j[key].type_name() << ")");
        }
    }
    // A provenance field, when present, replaces `out`.
    void provenance(const json& j, const char* key, Provenance& out) const {
        std::string p;
        get(j, key, p);
        if (!p.empty()) out = parse_provenance(p, source + ": key '" + key + "'");
    }
    std::vector<Span> spans(const json& a) const {
        std::vector<Span> v;
        if (!a.is_array()) return v;
        for (auto& e : a) {
            Span s;
            get(e, "lane", s.lane);
            get(e, "label", s.label);
            get(e, "layer", s.layer);
            get(e, "micro_batch", s.micro_batch);
            get(e, "rank", s.rank);
            get(e, "start_ms", s.start_ms);
            get(e, "end_ms", s.end_ms);
            s.provenance = Provenance::Modeled;
            provenance(e, "provenance", s.provenance);
            v.push_back(s);
        }
        return v;
    }
};

}  // namespace

Result result_from_json(const std::string& text, const std::string& source) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::parse_error& e) {
        MOE_BAD_INPUT(source << ": not JSON: " << e.what());
    }
    if (!j.is_object() || !j.contains("demo") || !j.contains("backend"))
        MOE_BAD_INPUT(source << ": not a moelab Result (no 'demo' and 'backend'; save one with moelab run ... --json)");
    Reader rd{source};
    Result r;
    std::string demo;
    rd.get(j, "demo", demo);
    r.demo = parse_demo(demo);
    std::string toml;
    rd.get(j, "scenario_toml", toml);
    if (!toml.empty()) r.scenario = Scenario::from_toml(toml, source + " (scenario)");
    rd.get(j, "backend", r.backend);
    rd.get(j, "device", r.device);
    rd.get(j, "experts_impl", r.experts_impl);
    rd.get(j, "notes", r.notes);
    rd.get(j, "caveats", r.caveats);
    rd.provenance(j, "loads_provenance", r.loads_provenance);
    rd.get(j, "expert_loads", r.expert_loads);
    rd.get(j, "expert_demand", r.demand);
    rd.get(j, "mean_load", r.mean_load);
    rd.get(j, "straggler_factor", r.straggler_factor);
    rd.get(j, "hottest_expert", r.hottest_expert);
    rd.get(j, "capacity", r.capacity);
    rd.get(j, "dropped", r.dropped);
    rd.get(j, "rank_loads", r.rank_loads);
    rd.get(j, "rank_straggler_factor", r.rank_straggler);
    if (j.contains("comm")) {
        const json& c = j["comm"];
        rd.provenance(c, "provenance", r.comm_provenance);
        rd.get(c, "bytes_per_elem", r.bytes_per_elem);
        rd.get(c, "seed_bytes", r.seed_bytes);
        rd.get(c, "routed_bytes", r.routed_bytes);
        rd.get(c, "dedup_bytes", r.dedup_bytes);
        rd.get(c, "ranks", r.ranks);
        rd.get(c, "traffic_tokens", r.traffic_tokens);
        rd.get(c, "traffic_bytes", r.traffic_bytes);
        if (c.contains("time_ms")) {
            rd.get(c["time_ms"], "value", r.comm_ms);
            rd.provenance(c["time_ms"], "provenance", r.comm_time_provenance);
        }
    }
    if (j.contains("stages") && j["stages"].is_array())
        for (auto& e : j["stages"]) {
            StageTime st;
            rd.get(e, "stage", st.stage);
            rd.get(e, "min_ms", st.min_ms);
            rd.get(e, "median_ms", st.median_ms);
            rd.get(e, "p95_ms", st.p95_ms);
            rd.get(e, "repeats", st.repeats);
            rd.provenance(e, "provenance", st.provenance);
            r.stages.push_back(st);
        }
    if (j.contains("strategies") && j["strategies"].is_array())
        for (auto& e : j["strategies"]) {
            Result::StrategyTime st;
            rd.get(e, "strategy", st.strategy);
            rd.get(e, "median_ms", st.time.median_ms);
            rd.get(e, "min_ms", st.time.min_ms);
            rd.get(e, "p95_ms", st.time.p95_ms);
            rd.get(e, "bytes", st.bytes);
            rd.provenance(e, "provenance", st.time.provenance);
            st.time.stage = "dispatch";
            r.strategies.push_back(st);
        }
    if (j.contains("copy_gbps")) {
        rd.get(j["copy_gbps"], "value", r.copy_gbps);
        rd.provenance(j["copy_gbps"], "provenance", r.copy_provenance);
    }
    if (j.contains("timeline")) r.timeline = rd.spans(j["timeline"]);
    if (j.contains("pipeline")) {
        const json& q = j["pipeline"];
        PipelineSummary& s = r.pipeline;
        s.present = true;
        rd.provenance(q, "provenance", s.provenance);
        rd.get(q, "layers", s.layers);
        rd.get(q, "micro_batches", s.micro_batches);
        rd.get(q, "ta_ms", s.ta_ms);
        rd.get(q, "te_ms", s.te_ms);
        rd.get(q, "tc_ms", s.tc_ms);
        rd.get(q, "tf_ms", s.tf_ms);
        rd.get(q, "total_ms", s.total_ms);
        rd.get(q, "closed_form_ms", s.closed_form_ms);
        rd.get(q, "min_micro_batches", s.min_micro_batches);
        rd.get(q, "comm_hidden", s.comm_hidden);
        rd.get(q, "attention_util", s.attention_util);
        rd.get(q, "expert_util", s.expert_util);
        if (q.contains("timeline")) r.model_timeline = rd.spans(q["timeline"]);
    }
    if (j.contains("measured_pipeline")) {
        const json& q = j["measured_pipeline"];
        PipelineRun& m = r.measured_pipeline;
        m.present = true;
        std::string prov;
        rd.get(q, "provenance", prov);
        m.link_paced = prov.find("emulated") != std::string::npos;
        rd.get(q, "pools", m.pools);
        rd.get(q, "pools_note", m.pools_note);
        rd.get(q, "device_sms", m.device_sms);
        rd.get(q, "attention_sms", m.attention_sms);
        rd.get(q, "expert_sms", m.expert_sms);
        if (q.contains("iteration_ms")) {
            rd.get(q["iteration_ms"], "min", m.iteration.min_ms);
            rd.get(q["iteration_ms"], "median", m.iteration.median_ms);
            rd.get(q["iteration_ms"], "p95", m.iteration.p95_ms);
            rd.get(q["iteration_ms"], "repeats", m.iteration.repeats);
            m.iteration.stage = "iteration";
            m.iteration.provenance = Provenance::MeasuredGpu;
        }
        rd.get(q, "tokens_per_s", m.tokens_per_s);
        PipelineSummary& s = m.measured;
        s.present = true;
        s.provenance = Provenance::MeasuredGpu;
        s.layers = r.pipeline.layers;
        s.micro_batches = r.pipeline.micro_batches;
        rd.get(q, "ta_ms", s.ta_ms);
        rd.get(q, "te_ms", s.te_ms);
        rd.get(q, "tc_ms", s.tc_ms);
        s.tf_ms = std::max(s.ta_ms, s.te_ms);
        s.total_ms = m.iteration.median_ms;
        rd.get(q, "min_micro_batches", s.min_micro_batches);
        rd.get(q, "comm_hidden", s.comm_hidden);
        rd.get(q, "attention_busy", s.attention_util);
        rd.get(q, "expert_busy", s.expert_util);
        rd.get(q, "experts_impl", m.experts_impl);
        rd.get(q, "model_error", m.model_error);
        if (q.contains("calibration")) {
            const json& c = q["calibration"];
            rd.get(c, "k1", m.k1), rd.get(c, "k2", m.k2), rd.get(c, "k3", m.k3), rd.get(c, "k4", m.k4);
            rd.get(c, "link_gbps", m.link_gbps);
            rd.get(c, "link_latency_us", m.link_latency_us);
            rd.get(c, "msg_bytes", m.msg_bytes);
            rd.get(c, "msg_util", m.msg_util);
        }
    }
    return r;
}

Result load_result(const std::string& path) {
    std::string text, err;
    if (!read_regular_file(path, std::size_t(64) << 20, &text, &err)) MOE_BAD_INPUT("--result " << path << ": " << err);
    return result_from_json(text, path);
}

}  // namespace demos
