// Every Scenario parameter described once: its name (the TOML key), CLI flag, range, unit, help text and the
// widget that edits it. Validation, TOML save/load, the CLI flags, `moelab run --help` and the GUI controls all
// read this table, so they cannot drift apart.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "demos/scenario.hpp"

namespace demos {

enum class ParamType { Int, Int64, UInt64, Double, Bool, String };
// Int/Float slider: linear; LogSlider: logarithmic (int or float by type); Combo: one of `choices`;
// Checkbox: a bool; Text: a free string (checked by validation) or a 64-bit seed; Number: an input box for
// values whose range is too wide for a slider.
enum class Widget { IntSlider, FloatSlider, LogSlider, Combo, Checkbox, Text, Number };

struct ParamChoice {
    const char* value;
    const char* help;  // "" when the value says it all
};

struct ParamInfo {
    using Field = std::variant<int Scenario::*, std::int64_t Scenario::*, std::uint64_t Scenario::*, double Scenario::*,
                               bool Scenario::*, std::string Scenario::*>;

    const char* name;   // the Scenario field and its TOML key: "top_k"
    const char* flag;   // the long CLI flag: "--top-k" (a bool also gets "--no-..." as its negation)
    const char* alias;  // a short or second flag: "-k", "--cf"; "" when none
    const char* label;  // a short GUI label: "top-k"
    const char* what;   // noun phrase for messages: "the number of experts per token k"
    const char* unit;   // "", "tokens", "GB/s", "µs", "ms"
    const char* help;   // one sentence for --help and the GUI tooltip
    const char* group;  // "Layer", "Parallelism", "Attention", "Cost model", "Run"
    Field field;
    Widget widget;
    double min = 0, max = 0;           // numbers: the inclusive range validation enforces
    std::vector<ParamChoice> choices;  // Combo: every allowed value
    const char* range_note = "";       // a bound that depends on another field or a special value

    ParamType type() const;
    bool is_number() const;
    // The range for this scenario: top_k's upper bound is min(max, experts); others return {min, max}.
    std::pair<double, double> range_in(const Scenario& s) const;
    // "1..1048576 tokens", "bf16, fp16, fp8, fp32", "true/false" — what --help and messages show.
    std::string allowed() const;
    // The --help line: help, then the allowed values and the range note.
    std::string help_line() const;

    // Typed access for the GUI and tests. get_number/set_number work for every numeric type (a seed above 2^53
    // loses precision as a double: use get_text/set_text for it).
    double get_number(const Scenario& s) const;
    void set_number(Scenario& s, double v) const;  // rounds to the nearest integer for integer types
    bool get_bool(const Scenario& s) const;
    void set_bool(Scenario& s, bool v) const;
    const std::string& get_string(const Scenario& s) const;
    void set_string(Scenario& s, const std::string& v) const;
    // Any parameter as the text a user would type after its flag, and back. set_text parses strictly and throws
    // BadInput "<flag> '<text>': expected ..., allowed ..." (it does not check the range: validate() does).
    std::string get_text(const Scenario& s) const;
    void set_text(Scenario& s, const std::string& text) const;
    bool equal(const Scenario& a, const Scenario& b) const;
};

// The table, in the order of the Scenario struct (which is also the order of --help, the TOML file and
// validation messages).
const std::vector<ParamInfo>& scenario_params();
// nullptr when unknown.
const ParamInfo* find_param(const std::string& name);

// Formatting shared by TOML, the CLI and messages: the shortest text that parses back to the same double
// ("0.05", "1e+30", "inf", "nan"), and a TOML basic string literal with every control character escaped.
std::string format_double(double v);
std::string toml_quote(const std::string& s);
// A user's text made safe to show in a message: control characters and malformed UTF-8 as escapes (\n, \x01),
// whole UTF-8 characters kept, and cut to `max_chars` bytes with "…" (never in the middle of a character).
std::string printable(const std::string& s, std::size_t max_chars = 80);
// The length of the valid UTF-8 sequence starting at s[i]; 0 when the byte there does not start one.
std::size_t utf8_length_at(const std::string& s, std::size_t i);

// The scenario as CLI flags ("--tokens", "4096", ..., "--no-renormalize"): every parameter, so parsing them over
// any base gives back this scenario.
std::vector<std::string> to_cli_args(const Scenario& s);

}  // namespace demos
