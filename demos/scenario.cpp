// Scenario: validation with messages a user can act on, TOML save/load, the model presets, and the
// conversion to the kernels' LayerSpec.
#include "demos/scenario.hpp"

#include <cmath>
#include <fstream>
#include <sstream>
#include <toml++/toml.h>

#include "demos/atomic_file.hpp"
#include "kernels/common/error.hpp"

namespace demos {

Demo parse_demo(const std::string& s) {
    if (s == "routing") return Demo::Routing;
    if (s == "dispatch") return Demo::Dispatch;
    if (s == "layer") return Demo::Layer;
    if (s == "pipeline") return Demo::Pipeline;
    MOE_BAD_INPUT("unknown demo '" << s << "'; allowed: routing, dispatch, layer, pipeline");
}
const char* demo_name(Demo d) {
    switch (d) {
        case Demo::Routing: return "routing";
        case Demo::Dispatch: return "dispatch";
        case Demo::Layer: return "layer";
        case Demo::Pipeline: return "pipeline";
    }
    return "layer";
}
BackendChoice parse_backend(const std::string& s) {
    if (s == "auto") return BackendChoice::Auto;
    if (s == "cpu") return BackendChoice::Cpu;
    if (s == "cuda") return BackendChoice::Cuda;
    MOE_BAD_INPUT("--backend '" << s << "': allowed: cpu, cuda, auto");
}
const char* backend_name(BackendChoice b) {
    switch (b) {
        case BackendChoice::Auto: return "auto";
        case BackendChoice::Cpu: return "cpu";
        case BackendChoice::Cuda: return "cuda";
    }
    return "auto";
}

namespace {
template <class T>
void range(std::vector<std::string>& out, const char* flag, T v, T lo, T hi, const char* what) {
    if (!(v >= lo && v <= hi)) {
        std::ostringstream os;
        os << flag << " " << v << ": " << what << " must be between " << lo << " and " << hi;
        out.push_back(os.str());
    }
}
}  // namespace

std::vector<std::string> Scenario::validate() const {
    std::vector<std::string> m;
    range<std::int64_t>(m, "--tokens", tokens, 1, 1 << 20, "the number of tokens T");
    range(m, "--experts", experts, 1, 1024, "the number of experts E");
    if (experts >= 1 && (top_k < 1 || top_k > experts)) {
        std::ostringstream os;
        os << "--top-k " << top_k << ": top-k must be at least 1 and at most the number of experts (--experts "
           << experts << ")";
        m.push_back(os.str());
    }
    range(m, "--hidden", hidden, 1, 32768, "the hidden size d");
    range(m, "--ffn", ffn, 1, 65536, "the expert FFN width F");
    if (dtype != "bf16" && dtype != "fp16" && dtype != "fp8" && dtype != "fp32")
        m.push_back("--dtype '" + dtype + "': allowed: bf16, fp16, fp8, fp32");
    try {
        moe::route::parse_skew(skew);
    } catch (const moe::Error& e) {
        m.push_back(e.what());
    }
    if (router != "popularity" && router != "gate")
        m.push_back("--router '" + router + "': allowed: popularity (log p + Gumbel noise), gate (x·Wg + log p)");
    if (!(capacity_factor >= 0 && capacity_factor <= 64)) {
        std::ostringstream os;
        os << "--capacity-factor " << capacity_factor
           << ": the capacity factor must be between 0 and 64 (0 means dropless)";
        m.push_back(os.str());
    }
    if (drop_policy != "token" && drop_policy != "probability")
        m.push_back("--drop-policy '" + drop_policy + "': allowed: token (keep the first tokens), probability "
                    "(keep the largest gate weights)");
    range(m, "--align", align, 1, 1024, "the row alignment of each expert segment");
    try {
        moe::dispatch::parse_strategy(strategy);
    } catch (const moe::Error& e) {
        m.push_back(e.what());
    }
    range(m, "--ranks", ranks, 1, 64, "the number of expert-parallel ranks G");
    if (ranks >= 1 && experts >= 1 && experts % ranks != 0) {
        std::ostringstream os;
        os << "--ranks " << ranks << ": the number of experts (" << experts
           << ") must divide evenly over the ranks (experts are placed E/G per rank)";
        m.push_back(os.str());
    }
    range(m, "--micro-batches", micro_batches, 1, 64, "the number of micro-batches m");
    range(m, "--layers", layers, 1, 512, "the number of layers L");
    range(m, "--attention-replicas", attention_replicas, 1, 256, "the number of attention replicas n_a");
    range(m, "--link-gbps", link_gbps, 0.001, 100000.0, "the link bandwidth in GB/s");
    range(m, "--context", context, 1, 1 << 20, "the attention context length s (KV positions per sequence)");
    range(m, "--q-heads", q_heads, 1, 256, "the number of attention query heads");
    range(m, "--kv-groups", kv_groups, 1, 256, "the number of KV heads (GQA groups)");
    if (q_heads >= 1 && kv_groups >= 1 && q_heads % kv_groups != 0) {
        std::ostringstream os;
        os << "--kv-groups " << kv_groups << ": the KV groups must divide the query heads (--q-heads " << q_heads
           << ")";
        m.push_back(os.str());
    }
    range(m, "--attention-sms", attention_sms, 0, 1024,
          "the SMs of the attention pool (0 = half the GPU; the expert pool gets the rest)");
    for (auto [flag, v] : {std::pair{"--k1", k1}, {"--k2", k2}, {"--k3", k3}, {"--k4", k4}})
        range(m, flag, v, 0.0, 1e9, "a cost-model coefficient");
    for (auto [flag, v] : {std::pair{"--ta-ms", ta_ms}, {"--te-ms", te_ms}, {"--tc-ms", tc_ms}})
        if (v >= 0 || !std::isfinite(v)) range(m, flag, v, 0.0, 1e6, "a stage time (negative means derive)");
    if (backend != "auto" && backend != "cpu" && backend != "cuda")
        m.push_back("--backend '" + backend + "': allowed: cpu, cuda, auto");
    range(m, "--repeats", repeats, 1, 1000, "the number of timed repeats");
    if (tokens >= 1 && top_k >= 1 && double(tokens) * top_k + double(experts) * align > 2e9)
        m.push_back("--tokens × --top-k: more than 2^31 packed rows; lower --tokens or --top-k");
    return m;
}

void Scenario::check() const {
    auto m = validate();
    if (m.empty()) return;
    std::string all;
    for (auto& s : m) all += (all.empty() ? "" : "\n") + s;
    throw moe::Error(moe::ErrorKind::BadInput, all);
}

int Scenario::bytes_per_elem() const {
    if (dtype == "fp8") return 1;
    if (dtype == "fp32") return 4;
    return 2;
}

moe::LayerSpec Scenario::layer_spec() const {
    moe::LayerSpec s;
    s.tokens = tokens;
    s.experts = experts;
    s.top_k = top_k;
    s.hidden = hidden;
    s.ffn = ffn;
    s.skew = moe::route::parse_skew(skew);
    s.router = router == "gate" ? moe::Router::Gate : moe::Router::Popularity;
    s.renormalize = renormalize;
    s.capacity_factor = capacity_factor;
    s.drop_policy = drop_policy == "probability" ? moe::DropPolicy::Probability : moe::DropPolicy::TokenOrder;
    s.align = align;
    s.strategy = moe::dispatch::parse_strategy(strategy);
    s.seed = seed;
    return s;
}

std::string Scenario::to_toml() const {
    toml::table t{
        {"tokens", tokens},
        {"experts", experts},
        {"top_k", top_k},
        {"hidden", hidden},
        {"ffn", ffn},
        {"dtype", dtype},
        {"skew", skew},
        {"router", router},
        {"renormalize", renormalize},
        {"capacity_factor", capacity_factor},
        {"drop_policy", drop_policy},
        {"align", align},
        {"strategy", strategy},
        {"ranks", ranks},
        {"micro_batches", micro_batches},
        {"layers", layers},
        {"attention_replicas", attention_replicas},
        {"link_gbps", link_gbps},
        {"pace_link", pace_link},
        {"context", context},
        {"q_heads", q_heads},
        {"kv_groups", kv_groups},
        {"attention_sms", attention_sms},
        {"k1", k1},
        {"k2", k2},
        {"k3", k3},
        {"k4", k4},
        {"ta_ms", ta_ms},
        {"te_ms", te_ms},
        {"tc_ms", tc_ms},
        {"seed", static_cast<std::int64_t>(seed)},
        {"backend", backend},
        {"repeats", repeats},
    };
    std::ostringstream os;
    os << "# moelab scenario: every parameter of one experiment and its seed\n" << t << "\n";
    return os.str();
}

namespace {

struct Reader {
    const toml::table& tbl;
    std::string source;

    [[noreturn]] void fail(const toml::node& n, const std::string& key, const std::string& what) const {
        MOE_BAD_INPUT(source << ":" << n.source().begin.line << ": key '" << key << "': " << what);
    }
    template <class T>
    void get(const std::string& key, T& out) const {
        const toml::node* n = tbl.get(key);
        if (!n) return;
        if constexpr (std::is_same_v<T, bool>) {
            if (auto v = n->value<bool>()) return void(out = *v);
            fail(*n, key, "expected true or false");
        } else if constexpr (std::is_same_v<T, std::string>) {
            if (auto v = n->value<std::string>()) return void(out = *v);
            fail(*n, key, "expected a string");
        } else if constexpr (std::is_floating_point_v<T>) {
            if (auto v = n->value<double>()) return void(out = *v);
            fail(*n, key, "expected a number");
        } else {
            if (n->is_integer()) {
                auto v = *n->value<std::int64_t>();
                if constexpr (std::is_unsigned_v<T>) {
                    if (v < 0) fail(*n, key, "expected a non-negative integer");
                } else if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
                    fail(*n, key, "integer out of range");
                }
                return void(out = static_cast<T>(v));
            }
            fail(*n, key, "expected an integer");
        }
    }
};

}  // namespace

Scenario Scenario::from_toml(const std::string& text, const std::string& source_name) {
    toml::table tbl;
    try {
        tbl = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
        MOE_BAD_INPUT(source_name << ":" << e.source().begin.line << ":" << e.source().begin.column
                                  << ": malformed scenario: " << e.description());
    }
    // A lesson file nests its scenario in [scenario]; a scenario file is flat.
    const toml::table* root = &tbl;
    if (auto* sub = tbl["scenario"].as_table()) root = sub;
    static const char* kKeys[] = {"tokens", "experts", "top_k", "hidden", "ffn", "dtype", "skew", "router",
                                  "renormalize", "capacity_factor", "drop_policy", "align", "strategy", "ranks",
                                  "micro_batches", "layers", "attention_replicas", "link_gbps", "pace_link",
                                  "context", "q_heads", "kv_groups", "attention_sms", "k1", "k2", "k3",
                                  "k4", "ta_ms", "te_ms", "tc_ms", "seed", "backend", "repeats"};
    for (auto&& [k, v] : *root) {
        bool known = false;
        for (auto* kk : kKeys) known = known || k.str() == kk;
        if (!known)
            MOE_BAD_INPUT(source_name << ":" << v.source().begin.line << ": unknown key '" << k.str()
                                      << "'; allowed keys: tokens, experts, top_k, hidden, ffn, dtype, skew, router, "
                                         "renormalize, capacity_factor, drop_policy, align, strategy, ranks, "
                                         "micro_batches, layers, attention_replicas, link_gbps, pace_link, context, "
                                         "q_heads, kv_groups, attention_sms, k1..k4, ta_ms, "
                                         "te_ms, tc_ms, seed, backend, repeats");
    }
    Scenario s;
    Reader r{*root, source_name};
    r.get("tokens", s.tokens);
    r.get("experts", s.experts);
    r.get("top_k", s.top_k);
    r.get("hidden", s.hidden);
    r.get("ffn", s.ffn);
    r.get("dtype", s.dtype);
    r.get("skew", s.skew);
    r.get("router", s.router);
    r.get("renormalize", s.renormalize);
    r.get("capacity_factor", s.capacity_factor);
    r.get("drop_policy", s.drop_policy);
    r.get("align", s.align);
    r.get("strategy", s.strategy);
    r.get("ranks", s.ranks);
    r.get("micro_batches", s.micro_batches);
    r.get("layers", s.layers);
    r.get("attention_replicas", s.attention_replicas);
    r.get("link_gbps", s.link_gbps);
    r.get("pace_link", s.pace_link);
    r.get("context", s.context);
    r.get("q_heads", s.q_heads);
    r.get("kv_groups", s.kv_groups);
    r.get("attention_sms", s.attention_sms);
    r.get("k1", s.k1);
    r.get("k2", s.k2);
    r.get("k3", s.k3);
    r.get("k4", s.k4);
    r.get("ta_ms", s.ta_ms);
    r.get("te_ms", s.te_ms);
    r.get("tc_ms", s.tc_ms);
    r.get("seed", s.seed);
    r.get("backend", s.backend);
    r.get("repeats", s.repeats);
    return s;
}

Scenario Scenario::load(const std::string& path) {
    std::ifstream f(path);
    if (!f) MOE_BAD_INPUT("--scenario " << path << ": cannot open the file");
    std::stringstream ss;
    ss << f.rdbuf();
    return from_toml(ss.str(), path);
}

void Scenario::save(const std::string& path) const {
    std::string err;
    if (!write_file_atomic(path, to_toml(), &err)) MOE_BAD_INPUT("--save-scenario " << path << ": " << err);
}

const std::vector<Preset>& presets() {
    static const std::vector<Preset> list = [] {
        std::vector<Preset> p;
        Scenario s;
        p.push_back({"classroom", "Classroom default: T=4096, E=16, k=2, d=1024, F=2816", s});
        // Attention shapes of each model (query heads, KV heads); the head dim is 128 in moelab.
        auto model = [&](const char* name, const char* desc, int E, int k, int d, int F, int qh, int kvh) {
            Scenario m;
            m.experts = E, m.top_k = k, m.hidden = d, m.ffn = F;
            m.q_heads = qh, m.kv_groups = kvh;
            p.push_back({name, desc, m});
        };
        model("Mixtral-8x22B", "8 experts, top-2, d=6144, F=16384", 8, 2, 6144, 16384, 48, 8);
        model("DBRX", "16 experts, top-4, d=6144, F=10752", 16, 4, 6144, 10752, 48, 8);
        model("DeepSeek-V3", "256 routed experts, top-8, d=7168, F=2048", 256, 8, 7168, 2048, 128, 128);
        model("Qwen3-30B-A3B", "128 experts, top-8, d=2048, F=768", 128, 8, 2048, 768, 32, 4);
        return p;
    }();
    return list;
}

}  // namespace demos
