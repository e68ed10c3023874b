// The scenario parameter table and its typed accessors. Add a parameter here (and its field in Scenario) and
// it is validated, saved, loaded, offered as a CLI flag and listed in --help.
#include "demos/params.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "kernels/common/error.hpp"

namespace demos {

namespace {

using S = Scenario;
constexpr double kU64Max = 18446744073709551615.0;

// Entries leave out the trailing fields they do not need (choices, range note).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
std::vector<ParamInfo> build() {
    using W = Widget;
    std::vector<ParamInfo> t;
    // clang-format off
    t.push_back({"tokens", "--tokens", "-T", "tokens T", "the number of tokens T", "tokens",
                 "Tokens in the batch, T", "Layer", &S::tokens, W::LogSlider, 1, 1 << 20});
    t.push_back({"experts", "--experts", "-E", "experts E", "the number of experts E", "",
                 "Experts in the layer, E", "Layer", &S::experts, W::LogSlider, 1, 1024});
    t.push_back({"top_k", "--top-k", "-k", "top-k", "the number of experts per token k", "",
                 "Experts each token is routed to, k", "Layer", &S::top_k, W::IntSlider, 1, 1024, {},
                 "at most --experts"});
    t.push_back({"hidden", "--hidden", "-d", "hidden d", "the hidden size d", "",
                 "Hidden size d of a token", "Layer", &S::hidden, W::LogSlider, 1, 32768});
    t.push_back({"ffn", "--ffn", "-F", "FFN width F", "the expert FFN width F", "",
                 "Intermediate width F of each expert's FFN", "Layer", &S::ffn, W::LogSlider, 1, 65536});
    t.push_back({"dtype", "--dtype", "", "dtype", "the element type", "",
                 "Bytes per element b in the traffic (the kernels compute bf16)", "Layer", &S::dtype, W::Combo, 0, 0,
                 {{"bf16", "2 bytes"}, {"fp16", "2 bytes"}, {"fp8", "1 byte"}, {"fp32", "4 bytes"}}});
    t.push_back({"skew", "--skew", "", "skew", "the routing skew", "",
                 "Routing skew: uniform, zipf:S (Zipf exponent S) or hot:R (expert 0 R times as popular)", "Layer",
                 &S::skew, W::Text, 0, 0, {}, "uniform, zipf:S with 0 < S <= 8, hot:R with 1 <= R <= 1e6"});
    t.push_back({"router", "--router", "", "router", "the router", "",
                 "How the router's logits are made", "Layer", &S::router, W::Combo, 0, 0,
                 {{"popularity", "log p + Gumbel noise"}, {"gate", "x·Wg + log p"}}});
    t.push_back({"renormalize", "--renormalize", "", "renormalize top-k", "renormalization", "",
                 "Renormalize the top-k gate weights to sum to 1 (--no-renormalize keeps the raw softmax weights)",
                 "Layer", &S::renormalize, W::Checkbox});
    t.push_back({"capacity_factor", "--capacity-factor", "--cf", "capacity factor", "the capacity factor", "",
                 "Capacity C = ceil(cf·T·k/E) rows per expert", "Layer", &S::capacity_factor, W::FloatSlider, 0, 64,
                 {}, "0 = dropless"});
    t.push_back({"drop_policy", "--drop-policy", "", "drop policy", "the drop policy", "",
                 "Who is dropped past capacity", "Layer", &S::drop_policy, W::Combo, 0, 0,
                 {{"token", "keep the first tokens"}, {"probability", "keep the largest gate weights"}}});
    t.push_back({"align", "--align", "", "align rows", "the row alignment of each expert segment", "rows",
                 "Pad each expert's rows to a multiple of this", "Layer", &S::align, W::LogSlider, 1, 1024});
    t.push_back({"strategy", "--strategy", "", "dispatch", "the dispatch strategy", "",
                 "How tokens are packed by expert before the expert GEMMs", "Layer", &S::strategy, W::Combo, 0, 0,
                 {{"sort", "sort by expert"}, {"atomic", "atomic slot counters"}, {"scan", "prefix sum"},
                  {"nopack", "no packing: gather in the GEMM"}}});
    t.push_back({"ranks", "--ranks", "-G", "ranks (GPUs)", "the number of expert-parallel ranks G", "",
                 "Expert-parallel ranks G, E/G experts each", "Parallelism", &S::ranks, W::IntSlider, 1, 64, {},
                 "divides --experts"});
    t.push_back({"micro_batches", "--micro-batches", "-m", "micro-batches m", "the number of micro-batches m", "",
                 "Ping-pong micro-batches m", "Parallelism", &S::micro_batches, W::IntSlider, 1, 64});
    t.push_back({"layers", "--layers", "-L", "layers L", "the number of layers L", "",
                 "MoE layers L in the pipeline model", "Parallelism", &S::layers, W::LogSlider, 1, 512});
    t.push_back({"attention_replicas", "--attention-replicas", "", "attention replicas",
                 "the number of attention replicas n_a", "", "Attention replicas n_a (MegaScale-Infer)",
                 "Parallelism", &S::attention_replicas, W::LogSlider, 1, 256});
    t.push_back({"link_gbps", "--link-gbps", "", "link GB/s", "the link bandwidth", "GB/s",
                 "Per-GPU link bandwidth for the modelled A2E/E2A transfers", "Parallelism", &S::link_gbps,
                 W::LogSlider, 0.001, 100000});
    t.push_back({"pace_link", "--pace-link", "", "pace link", "link pacing", "",
                 "Measured pipeline: pace the A2E/E2A copies at --link-gbps to emulate a slower link",
                 "Parallelism", &S::pace_link, W::Checkbox});
    t.push_back({"context", "--context", "", "context s", "the attention context length s", "positions",
                 "Attention context length s, KV positions per sequence", "Attention", &S::context, W::LogSlider, 1,
                 1 << 20});
    t.push_back({"q_heads", "--q-heads", "", "query heads", "the number of attention query heads", "",
                 "Attention query heads (head dim 128)", "Attention", &S::q_heads, W::LogSlider, 1, 256});
    t.push_back({"kv_groups", "--kv-groups", "", "KV groups", "the number of KV heads (GQA groups)", "",
                 "KV heads / GQA groups", "Attention", &S::kv_groups, W::LogSlider, 1, 256, {},
                 "divides --q-heads"});
    t.push_back({"attention_sms", "--attention-sms", "", "attention SMs", "the SMs of the attention pool", "SMs",
                 "SMs of the attention pool on one GPU; the experts get the rest", "Attention", &S::attention_sms,
                 W::IntSlider, 0, 1024, {}, "0 = half the GPU"});
    t.push_back({"k1", "--k1", "", "k1", "a cost-model coefficient", "µs/token", "Ta = k1·ba + k2", "Cost model",
                 &S::k1, W::Number, 0, 1e9});
    t.push_back({"k2", "--k2", "", "k2", "a cost-model coefficient", "µs", "Ta = k1·ba + k2", "Cost model", &S::k2,
                 W::Number, 0, 1e9});
    t.push_back({"k3", "--k3", "", "k3", "a cost-model coefficient", "µs/token", "Te = k3·be + k4", "Cost model",
                 &S::k3, W::Number, 0, 1e9});
    t.push_back({"k4", "--k4", "", "k4", "a cost-model coefficient", "µs", "Te = k3·be + k4", "Cost model", &S::k4,
                 W::Number, 0, 1e9});
    t.push_back({"ta_ms", "--ta-ms", "", "Ta ms", "a stage time", "ms",
                 "Attention time per micro-batch (overrides k1, k2)", "Cost model", &S::ta_ms, W::Number, -1, 1e6, {},
                 "negative = derive from the cost model"});
    t.push_back({"te_ms", "--te-ms", "", "Te ms", "a stage time", "ms",
                 "Expert time per micro-batch (overrides k3, k4)", "Cost model", &S::te_ms, W::Number, -1, 1e6, {},
                 "negative = derive from the cost model"});
    t.push_back({"tc_ms", "--tc-ms", "", "Tc ms", "a stage time", "ms",
                 "One-way transfer time per micro-batch (overrides --link-gbps)", "Cost model", &S::tc_ms, W::Number,
                 -1, 1e6, {}, "negative = derive from the link bandwidth"});
    t.push_back({"seed", "--seed", "", "seed", "the seed", "", "Seed of every generated input", "Run", &S::seed,
                 W::Text, 0, kU64Max});
    t.push_back({"backend", "--backend", "", "backend", "the backend", "", "Where the layer runs", "Run",
                 &S::backend, W::Combo, 0, 0,
                 {{"auto", "the GPU when there is one"}, {"cpu", "the CPU reference"}, {"cuda", "the GPU"}}});
    t.push_back({"repeats", "--repeats", "", "repeats", "the number of timed repeats", "",
                 "Timed repeats per stage", "Run", &S::repeats, W::LogSlider, 1, 1000});
    // clang-format on
    return t;
}
#pragma GCC diagnostic pop

[[noreturn]] void bad_text(const ParamInfo& p, const std::string& text, const std::string& expected) {
    MOE_BAD_INPUT(p.flag << " '" << text << "': expected " << expected << "; allowed: " << p.allowed());
}

std::string format_int(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
}

}  // namespace

const std::vector<ParamInfo>& scenario_params() {
    static const std::vector<ParamInfo> table = build();
    return table;
}

const ParamInfo* find_param(const std::string& name) {
    for (const ParamInfo& p : scenario_params())
        if (name == p.name) return &p;
    return nullptr;
}

ParamType ParamInfo::type() const { return static_cast<ParamType>(field.index()); }

bool ParamInfo::is_number() const {
    ParamType t = type();
    return t != ParamType::Bool && t != ParamType::String;
}

std::pair<double, double> ParamInfo::range_in(const Scenario& s) const {
    if (field == Field(&Scenario::top_k)) return {min, std::max(min, std::min(max, double(s.experts)))};
    return {min, max};
}

std::string ParamInfo::allowed() const {
    std::string a;
    switch (type()) {
        case ParamType::Bool:
            a = "true or false";
            break;
        case ParamType::String:
            for (const ParamChoice& c : choices) a += (a.empty() ? "" : ", ") + std::string(c.value);
            if (choices.empty()) a = range_note;
            return a;
        case ParamType::Double:
            a = format_double(min) + ".." + format_double(max);
            break;
        case ParamType::UInt64:
            a = "0..18446744073709551615";
            break;
        default:
            a = format_int(min) + ".." + format_int(max);
            break;
    }
    if (*unit) a += std::string(" ") + unit;
    return a;
}

std::string ParamInfo::help_line() const {
    std::string h = help;
    if (type() == ParamType::Bool) return h;
    std::string a = allowed();
    if (type() != ParamType::String && *range_note) a += "; " + std::string(range_note);
    return h + " (" + a + ")";
}

double ParamInfo::get_number(const Scenario& s) const {
    return std::visit(
        [&](auto m) -> double {
            using T = std::decay_t<decltype(s.*m)>;
            if constexpr (std::is_same_v<T, std::string>)
                return 0.0;
            else
                return static_cast<double>(s.*m);
        },
        field);
}

void ParamInfo::set_number(Scenario& s, double v) const {
    std::visit(
        [&](auto m) {
            using T = std::decay_t<decltype(s.*m)>;
            if constexpr (std::is_same_v<T, std::string>) {
                (void)v;
            } else if constexpr (std::is_same_v<T, bool>) {
                s.*m = v != 0.0;
            } else if constexpr (std::is_floating_point_v<T>) {
                s.*m = v;
            } else {
                // Round and saturate: a double outside the type's range must not be undefined behaviour.
                double r = std::round(v);
                if (!(r >= double(std::numeric_limits<T>::min())))
                    s.*m = std::numeric_limits<T>::min();
                else if (!(r < double(std::numeric_limits<T>::max())))
                    s.*m = std::numeric_limits<T>::max();
                else
                    s.*m = static_cast<T>(r);
            }
        },
        field);
}

bool ParamInfo::get_bool(const Scenario& s) const {
    if (auto m = std::get_if<bool Scenario::*>(&field)) return s.**m;
    return false;
}
void ParamInfo::set_bool(Scenario& s, bool v) const {
    if (auto m = std::get_if<bool Scenario::*>(&field)) s.** m = v;
}
const std::string& ParamInfo::get_string(const Scenario& s) const {
    static const std::string empty;
    if (auto m = std::get_if<std::string Scenario::*>(&field)) return s.**m;
    return empty;
}
void ParamInfo::set_string(Scenario& s, const std::string& v) const {
    if (auto m = std::get_if<std::string Scenario::*>(&field)) s.** m = v;
}

std::string ParamInfo::get_text(const Scenario& s) const {
    return std::visit(
        [&](auto m) -> std::string {
            using T = std::decay_t<decltype(s.*m)>;
            if constexpr (std::is_same_v<T, std::string>)
                return s.*m;
            else if constexpr (std::is_same_v<T, bool>)
                return s.*m ? "true" : "false";
            else if constexpr (std::is_floating_point_v<T>)
                return format_double(s.*m);
            else
                return std::to_string(s.*m);
        },
        field);
}

void ParamInfo::set_text(Scenario& s, const std::string& text) const {
    std::visit(
        [&](auto m) {
            using T = std::decay_t<decltype(s.*m)>;
            if constexpr (std::is_same_v<T, std::string>) {
                s.*m = text;
            } else if constexpr (std::is_same_v<T, bool>) {
                if (text == "true" || text == "1")
                    s.*m = true;
                else if (text == "false" || text == "0")
                    s.*m = false;
                else
                    bad_text(*this, text, "true or false");
            } else if constexpr (std::is_floating_point_v<T>) {
                const char* b = text.c_str();
                char* e = nullptr;
                errno = 0;
                double v = text.empty() || std::isspace(static_cast<unsigned char>(text[0])) ? 0.0 : std::strtod(b, &e);
                if (text.empty() || e != b + text.size()) bad_text(*this, text, "a number");
                s.*m = v;  // out-of-range values (1e999 → inf) are left for validate() to name
            } else {
                // Whole numbers only, in decimal: "1e9", "", " 5", "0x10" and "4.0" are refused, and a value
                // that does not fit the field is refused here rather than wrapped.
                std::size_t i = 0;
                bool neg = !text.empty() && text[0] == '-';
                if (neg || (!text.empty() && text[0] == '+')) i = 1;
                if (i >= text.size() || text.size() - i > 20 ||
                    text.find_first_not_of("0123456789", i) != std::string::npos)
                    bad_text(*this, text, "a whole number");
                unsigned long long mag = 0;
                for (; i < text.size(); ++i) {
                    unsigned d = static_cast<unsigned>(text[i] - '0');
                    if (mag > (std::numeric_limits<unsigned long long>::max() - d) / 10)
                        bad_text(*this, text, "a whole number that fits");
                    mag = mag * 10 + d;
                }
                if constexpr (std::is_unsigned_v<T>) {
                    if (neg && mag != 0) bad_text(*this, text, "a whole number that is not negative");
                    s.*m = static_cast<T>(mag);
                } else {
                    // Out of the field's type: clamp to one past the table's range so validate() names it.
                    using L = std::numeric_limits<T>;
                    if (!neg && mag > static_cast<unsigned long long>(L::max()))
                        bad_text(*this, text, "a whole number that fits");
                    if (neg && mag > static_cast<unsigned long long>(L::max()) + 1ull)
                        bad_text(*this, text, "a whole number that fits");
                    s.*m = neg ? static_cast<T>(-static_cast<long long>(mag - 1) - 1) : static_cast<T>(mag);
                    if (neg && mag == 0) s.*m = 0;
                }
            }
        },
        field);
}

bool ParamInfo::equal(const Scenario& a, const Scenario& b) const {
    return std::visit(
        [&](auto m) {
            using T = std::decay_t<decltype(a.*m)>;
            if constexpr (std::is_floating_point_v<T>)
                return a.*m == b.*m || (std::isnan(a.*m) && std::isnan(b.*m));
            else
                return a.*m == b.*m;
        },
        field);
}

std::string format_double(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[40];
    for (int prec = 6; prec <= 17; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
}

std::size_t utf8_length_at(const std::string& s, std::size_t i) {
    if (i >= s.size()) return 0;
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) return 1;
    std::size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return 0;
    for (std::size_t j = 1; j < n; ++j)
        if ((static_cast<unsigned char>(s[i + j]) & 0xC0) != 0x80) return 0;
    unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) return 0;  // overlong, surrogates
    if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90)) return 0;  // overlong, past U+10FFFF
    return n;
}

std::string printable(const std::string& s, std::size_t max_chars) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        if (out.size() >= max_chars) return out + "…";
        unsigned char c = static_cast<unsigned char>(s[i]);
        std::size_t n = utf8_length_at(s, i);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (n == 0 || c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02X", c);
            out += buf;
            n = 1;
        } else {
            out.append(s, i, n);
        }
        i += n;
    }
    return out;
}

std::string toml_quote(const std::string& s) {
    std::string out = "\"";
    for (std::size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04X", c);
            out += buf;
        } else if (c < 0x80) {
            out += static_cast<char>(c);
        } else {
            // Copy one whole UTF-8 sequence; a malformed byte becomes U+FFFD (TOML files are UTF-8).
            std::size_t n = utf8_length_at(s, i);
            if (n) {
                out.append(s, i, n);
                i += n - 1;
            } else {
                out += "\\uFFFD";
            }
        }
    }
    return out + "\"";
}

std::vector<std::string> to_cli_args(const Scenario& s) {
    std::vector<std::string> a;
    for (const ParamInfo& p : scenario_params()) {
        if (p.type() == ParamType::Bool) {
            a.push_back(p.get_bool(s) ? p.flag : "--no-" + std::string(p.flag + 2));
        } else {
            a.push_back(p.flag);
            a.push_back(p.get_text(s));
        }
    }
    return a;
}

}  // namespace demos
