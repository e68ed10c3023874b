// Scenario: validation with messages a user can act on, TOML save/load, the model presets, and the
// conversion to the kernels' LayerSpec.
#include "demos/scenario.hpp"

#include <toml++/toml.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "demos/atomic_file.hpp"
#include "demos/params.hpp"
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
        case Demo::Routing:
            return "routing";
        case Demo::Dispatch:
            return "dispatch";
        case Demo::Layer:
            return "layer";
        case Demo::Pipeline:
            return "pipeline";
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
        case BackendChoice::Auto:
            return "auto";
        case BackendChoice::Cpu:
            return "cpu";
        case BackendChoice::Cuda:
            return "cuda";
    }
    return "auto";
}

namespace {

// One parameter's own checks: its range (or allowed strings) from the table, then the rules that tie it to
// another parameter.
void check_param(const ParamInfo& p, const Scenario& s, std::vector<std::string>& m) {
    std::ostringstream os;
    if (p.type() == ParamType::String) {
        const std::string& v = p.get_string(s);
        if (p.field == ParamInfo::Field(&Scenario::skew)) {
            try {
                moe::route::parse_skew(v);
            } catch (const moe::Error& e) {
                m.push_back(e.what());
            }
            return;
        }
        for (const ParamChoice& c : p.choices)
            if (v == c.value) return;
        os << p.flag << " '" << printable(v) << "': allowed: ";
        for (std::size_t i = 0; i < p.choices.size(); ++i)
            os << (i ? ", " : "") << p.choices[i].value << (*p.choices[i].help ? " (" : "") << p.choices[i].help
               << (*p.choices[i].help ? ")" : "");
        m.push_back(os.str());
        return;
    }
    if (!p.is_number() || p.type() == ParamType::UInt64) return;  // bools and the seed take every value
    if (p.field == ParamInfo::Field(&Scenario::top_k)) {
        if (s.experts >= 1 && (s.top_k < 1 || s.top_k > s.experts || s.top_k > p.max)) {
            os << "--top-k " << s.top_k << ": top-k must be at least 1 and at most the number of experts (--experts "
               << s.experts << ")";
            m.push_back(os.str());
        }
        return;
    }
    double v = p.get_number(s);
    auto [lo, hi] = p.range_in(s);
    if (!(v >= lo && v <= hi)) {
        os << p.flag << " " << p.get_text(s) << ": " << p.what << " must be between " << format_double(lo) << " and "
           << format_double(hi);
        if (*p.unit) os << " " << p.unit;
        if (*p.range_note) os << " (" << p.range_note << ")";
        m.push_back(os.str());
        return;
    }
    if (p.field == ParamInfo::Field(&Scenario::ranks) && s.experts >= 1 && s.experts % s.ranks != 0) {
        os << "--ranks " << s.ranks << ": the number of experts (" << s.experts
           << ") must divide evenly over the ranks (experts are placed E/G per rank)";
        m.push_back(os.str());
    }
    if (p.field == ParamInfo::Field(&Scenario::kv_groups) && s.q_heads >= 1 && s.q_heads % s.kv_groups != 0) {
        os << "--kv-groups " << s.kv_groups << ": the KV groups must divide the query heads (--q-heads " << s.q_heads
           << ")";
        m.push_back(os.str());
    }
}

}  // namespace

std::vector<std::string> Scenario::validate() const {
    std::vector<std::string> m;
    for (const ParamInfo& p : scenario_params()) check_param(p, *this, m);
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
    std::ostringstream os;
    os << "# moelab scenario: every parameter of one experiment and its seed\n";
    const char* group = "";
    for (const ParamInfo& p : scenario_params()) {
        if (std::string(group) != p.group) os << "\n# " << (group = p.group) << "\n";
        os << p.name << " = ";
        switch (p.type()) {
            case ParamType::String:
                os << toml_quote(p.get_string(*this));
                break;
            case ParamType::Double: {
                std::string d = format_double(p.get_number(*this));
                if (d.find_first_of(".eEna") == std::string::npos) d += ".0";  // a TOML float, not an integer
                os << d;
                break;
            }
            case ParamType::UInt64: {
                std::string t = p.get_text(*this);
                // TOML integers are signed 64-bit: seeds from 2^63 on are saved as a decimal string.
                os << (seed > std::uint64_t(std::numeric_limits<std::int64_t>::max()) ? "\"" + t + "\"" : t);
                break;
            }
            default:
                os << p.get_text(*this);
                break;
        }
        os << "\n";
    }
    return os.str();
}

namespace {

struct Reader {
    const toml::table& tbl;
    std::string source;

    [[noreturn]] void fail(const toml::node& n, const ParamInfo& p, const std::string& what) const {
        MOE_BAD_INPUT(source << ":" << n.source().begin.line << ": key '" << p.name << "': " << what << " ("
                             << p.help_line() << ")");
    }
    void get(const ParamInfo& p, Scenario& s) const {
        const toml::node* n = tbl.get(p.name);
        if (!n) return;
        switch (p.type()) {
            case ParamType::Bool:
                if (auto v = n->value_exact<bool>()) return p.set_bool(s, *v);
                fail(*n, p, "expected true or false");
            case ParamType::String:
                if (auto v = n->value_exact<std::string>()) return p.set_string(s, *v);
                fail(*n, p, "expected a string");
            case ParamType::Double:
                if (n->is_floating_point()) return p.set_number(s, *n->value<double>());
                if (n->is_integer()) return p.set_number(s, double(*n->value<std::int64_t>()));
                fail(*n, p, "expected a number");
            case ParamType::UInt64: {
                const char* what = "expected an integer from 0 to 18446744073709551615 (from 2^63 on, as a string)";
                auto& seed = s.*std::get<std::uint64_t Scenario::*>(p.field);
                if (n->is_integer()) {
                    std::int64_t v = *n->value<std::int64_t>();
                    if (v < 0) fail(*n, p, what);
                    return void(seed = std::uint64_t(v));
                }
                if (auto t = n->value_exact<std::string>()) {
                    if (t->empty() || t->find_first_not_of("0123456789") != std::string::npos) fail(*n, p, what);
                    try {
                        return p.set_text(s, *t);
                    } catch (const moe::Error&) {
                        fail(*n, p, what);
                    }
                }
                fail(*n, p, what);
            }
            case ParamType::Int:
            case ParamType::Int64: {
                if (!n->is_integer()) fail(*n, p, "expected an integer");
                std::int64_t v = *n->value<std::int64_t>();
                if (p.type() == ParamType::Int &&
                    (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()))
                    fail(*n, p, "integer out of range");
                return p.set_text(s, std::to_string(v));
            }
        }
    }
};

}  // namespace

Scenario Scenario::from_toml(const std::string& text, const std::string& source_name, const Scenario& base) {
    std::string limits = toml_limits_problem(text);
    if (!limits.empty()) MOE_BAD_INPUT(source_name << ":" << limits.substr(5));
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
    for (auto&& [k, v] : *root) {
        if (find_param(std::string(k.str()))) continue;
        std::string keys;
        for (const ParamInfo& p : scenario_params()) keys += (keys.empty() ? "" : ", ") + std::string(p.name);
        MOE_BAD_INPUT(source_name << ":" << v.source().begin.line << ": unknown key '"
                                  << printable(std::string(k.str())) << "'; allowed keys: " << keys);
    }
    Scenario s = base;
    Reader r{*root, source_name};
    for (const ParamInfo& p : scenario_params()) r.get(p, s);
    return s;
}

Scenario Scenario::from_toml(const std::string& text, const std::string& source_name) {
    return from_toml(text, source_name, Scenario{});
}

Scenario Scenario::load(const std::string& path) {
    std::string text, err;
    if (!read_regular_file(path, kMaxTomlBytes, &text, &err)) MOE_BAD_INPUT("--scenario " << path << ": " << err);
    return from_toml(text, path);
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
