// Scenario: validation messages name the parameter and its range, TOML round trips exactly, presets are valid.
#include <gtest/gtest.h>

#include "demos/engine.hpp"
#include "demos/scenario.hpp"
#include "kernels/common/error.hpp"
#include "tests/support/test_support.hpp"

using demos::Scenario;

TEST(Scenario, DefaultIsTheClassroomScenarioAndValid) {
    Scenario s;
    EXPECT_TRUE(s.validate().empty());
    EXPECT_EQ(s.tokens, 4096);
    EXPECT_EQ(s.experts, 16);
    EXPECT_EQ(s.top_k, 2);
    EXPECT_EQ(s.hidden, 1024);
    EXPECT_EQ(s.ffn, 2816);
}

TEST(Scenario, EveryMessageNamesItsFlag) {
    Scenario s;
    s.tokens = 0, s.experts = 6, s.top_k = 7, s.capacity_factor = -1, s.ranks = 4, s.skew = "nope";
    auto m = s.validate();
    ASSERT_EQ(m.size(), 5u);
    EXPECT_EQ(m[0].rfind("--tokens", 0), 0u);
    EXPECT_EQ(m[1].rfind("--top-k", 0), 0u);
    EXPECT_EQ(m[2].rfind("--skew", 0), 0u);
    EXPECT_EQ(m[3].rfind("--capacity-factor", 0), 0u);
    EXPECT_EQ(m[4].rfind("--ranks", 0), 0u);
    EXPECT_THROW(s.check(), moe::Error);
}

TEST(Scenario, TomlRoundTripIsExact) {
    Scenario s;
    s.tokens = 123, s.experts = 32, s.top_k = 4, s.skew = "zipf:1.25", s.capacity_factor = 1.5;
    s.drop_policy = "probability", s.router = "gate", s.renormalize = false, s.seed = 0xFFFFFFFFull, s.ta_ms = 0.3;
    Scenario t = Scenario::from_toml(s.to_toml(), "mem");
    EXPECT_EQ(s, t);
    EXPECT_EQ(t.seed, 0xFFFFFFFFull);
    EXPECT_FALSE(t.renormalize);
}

TEST(Scenario, PresetsAreValid) {
    ASSERT_GE(demos::presets().size(), 5u);
    for (auto& p : demos::presets()) EXPECT_TRUE(p.scenario.validate().empty()) << p.name;
}

TEST(Engine, RoutingResultIsConsistent) {
    Scenario s;
    s.tokens = 2048, s.experts = 8, s.top_k = 2, s.ranks = 4, s.skew = "hot:4", s.capacity_factor = 1.0;
    auto r = demos::run(s, demos::Demo::Routing);
    std::int64_t kept = 0, demand = 0;
    for (auto v : r.expert_loads) kept += v;
    for (auto v : r.demand) demand += v;
    EXPECT_EQ(demand, 2048 * 2);
    EXPECT_EQ(kept + r.dropped, demand);
    EXPECT_GT(r.dropped, 0);
    EXPECT_EQ(r.capacity, 512);
    EXPECT_EQ(r.hottest_expert, 0);
    EXPECT_NEAR(r.straggler_factor, double(r.expert_loads[0]) / r.mean_load, 1e-12);
    ASSERT_EQ(r.traffic_tokens.size(), 16u);
    std::int64_t tsum = 0;
    for (auto v : r.traffic_tokens) tsum += v;
    EXPECT_EQ(tsum, kept);
    EXPECT_GE(r.comm_ms, 0.0);
    EXPECT_EQ(r.comm_time_provenance, demos::Provenance::Modeled);
    EXPECT_FALSE(r.notes.empty());
}

TEST(Engine, CancelStopsARun) {
    Scenario s;
    std::atomic<bool> cancel{true};
    demos::RunControl ctl;
    ctl.cancel = &cancel;
    EXPECT_THROW(demos::run(s, demos::Demo::Routing, ctl), moe::Error);
}

TEST(Engine, DispatchDemoTimesEveryStrategyAgainstAMeasuredFloor) {
    Scenario s;
    s.tokens = 1024;
    auto r = demos::run(s, demos::Demo::Dispatch);
    ASSERT_EQ(r.strategies.size(), 4u);
    EXPECT_GT(r.copy_gbps, 0.0);
    for (auto& st : r.strategies) {
        EXPECT_GE(st.time.repeats, 5) << st.strategy;
        EXPECT_LE(st.time.min_ms, st.time.median_ms);
        EXPECT_LE(st.time.median_ms, st.time.p95_ms);
    }
    EXPECT_DOUBLE_EQ(r.strategies[0].bytes, 2.0 * 1024 * 1024 * 2 + 2.0 * 1024 * 1024);  // T·d·b + T·k·d·b
    EXPECT_EQ(r.strategies[3].bytes, 0.0);  // nopack moves nothing before the GEMM
}

// ---- The parameter table (demos/params.hpp): one description drives validation, TOML, CLI flags and help ----

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <limits>

#include "app/cli/scenario_flags.hpp"
#include "demos/params.hpp"

namespace {

using demos::ParamInfo;
using demos::ParamType;

// Parses `args` with a fresh CLI app carrying the scenario flags, as `moelab run` does.
Scenario via_cli(std::vector<std::string> args) {
    CLI::App app{"test"};
    moelab_cli::ScenarioFlags f;
    moelab_cli::add_scenario_flags(&app, f);
    std::reverse(args.begin(), args.end());  // CLI11 takes the vector back to front
    app.parse(args);
    return moelab_cli::resolve_scenario(f);
}

// A scenario in which every bound of every parameter can be reached: E = 1024 (so k and G go to their maximum)
// and 256 query heads (so the KV groups do).
Scenario roomy() {
    Scenario s;
    s.experts = 1024, s.q_heads = 256, s.kv_groups = 1;
    return s;
}

// A valid value of `p` that differs from the one in `s`.
bool other_value(const ParamInfo& p, const Scenario& s, Scenario* out) {
    Scenario t = s;
    switch (p.type()) {
        case ParamType::Bool:
            p.set_bool(t, !p.get_bool(s));
            break;
        case ParamType::String:
            if (p.choices.empty()) {
                p.set_string(t, "zipf:1.25");
            } else {
                for (auto& c : p.choices)
                    if (c.value != p.get_string(s)) {
                        p.set_string(t, c.value);
                        break;
                    }
            }
            break;
        case ParamType::UInt64:
            p.set_text(t, "18446744073709551615");
            break;
        default: {
            bool found = false;
            for (double v : {p.max, p.min, 3.0, 8.0, 0.37, 2.0, 1e-3 + p.min}) {
                if (v == p.get_number(s)) continue;
                p.set_number(t, v);
                if (t.validate().empty()) {
                    found = true;
                    break;
                }
            }
            if (!found) return false;
        }
    }
    *out = t;
    return t.validate().empty() && !p.equal(s, t);
}

}  // namespace

TEST(Params, TableCoversEveryKeyOfTheToml) {
    // Every parameter has its line in the TOML, and every line of the TOML is a parameter.
    std::string toml = Scenario{}.to_toml();
    std::size_t lines = 0;
    for (std::size_t at = 0; (at = toml.find(" = ", at)) != std::string::npos; ++at) ++lines;
    EXPECT_EQ(lines, demos::scenario_params().size());
    for (const ParamInfo& p : demos::scenario_params()) {
        EXPECT_NE(toml.find("\n" + std::string(p.name) + " = "), std::string::npos) << p.name;
        EXPECT_EQ(std::string(p.flag).rfind("--", 0), 0u) << p.name;
        EXPECT_TRUE(*p.help && *p.what && *p.label && *p.group) << p.name;
        if (p.widget == demos::Widget::Combo) {
            EXPECT_FALSE(p.choices.empty()) << p.name;
        }
        if (p.is_number()) {
            EXPECT_LT(p.min, p.max) << p.name;
        }
    }
    // Names and flags are unique.
    for (auto& a : demos::scenario_params())
        for (auto& b : demos::scenario_params())
            if (&a != &b) {
                EXPECT_STRNE(a.name, b.name);
                EXPECT_STRNE(a.flag, b.flag);
            }
}

TEST(Params, EveryParameterRoundTripsThroughTomlAndTheCliFlags) {
    const Scenario base;
    for (const ParamInfo& p : demos::scenario_params()) {
        Scenario s;
        ASSERT_TRUE(other_value(p, base, &s)) << p.name << ": no other valid value found";
        // TOML.
        Scenario t = Scenario::from_toml(s.to_toml(), "mem");
        EXPECT_TRUE(p.equal(s, t)) << p.name << ": " << p.get_text(s) << " came back as " << p.get_text(t);
        EXPECT_EQ(s, t) << p.name;
        // The one flag over the defaults.
        std::vector<std::string> one{p.flag};
        if (p.type() == ParamType::Bool) {
            if (!p.get_bool(s)) one = {"--no-" + std::string(p.flag + 2)};
        } else {
            one.push_back(p.get_text(s));
        }
        Scenario c = via_cli(one);
        EXPECT_TRUE(p.equal(s, c)) << p.name << ": " << p.get_text(s) << " came back as " << p.get_text(c);
        // The whole scenario as flags.
        EXPECT_EQ(via_cli(demos::to_cli_args(s)), s) << p.name;
        // The short alias does the same as the flag.
        if (*p.alias && p.type() != ParamType::Bool) {
            EXPECT_TRUE(p.equal(s, via_cli({p.alias, p.get_text(s)}))) << p.alias;
        }
    }
}

TEST(Params, ValidationRangeIsTheTableRange) {
    // Each numeric bound is accepted and one step past it is refused with a message that names the flag: the
    // GUI's controls read min/max from the table, so they match validation by construction.
    for (const ParamInfo& p : demos::scenario_params()) {
        if (!p.is_number() || p.type() == ParamType::UInt64) continue;
        Scenario s = roomy();
        auto [lo, hi] = p.range_in(s);
        EXPECT_EQ(lo, p.min) << p.name;
        EXPECT_EQ(hi, p.max) << p.name;
        bool integral = p.type() != ParamType::Double;
        double step_lo = integral ? 1 : std::max(1e-9, std::fabs(lo) * 1e-6);
        double step_hi = integral ? 1 : std::max(1e-9, std::fabs(hi) * 1e-6);
        for (double v : {lo, hi}) {
            Scenario t = s;
            if (p.field == ParamInfo::Field(&Scenario::experts)) t.top_k = 1, t.ranks = 1;  // k <= E, G divides E
            p.set_number(t, v);
            EXPECT_TRUE(t.validate().empty()) << p.name << " = " << v << ": " << t.validate().front();
        }
        for (double v : {lo - step_lo, hi + step_hi, std::nan("")}) {
            if (integral && std::isnan(v)) continue;
            Scenario t = s;
            p.set_number(t, v);
            auto m = t.validate();
            ASSERT_FALSE(m.empty()) << p.name << " = " << v << " was accepted";
            EXPECT_EQ(m[0].rfind(p.flag, 0), 0u) << m[0];
        }
    }
    // The one bound that depends on another field: k <= E.
    Scenario s;
    s.experts = 8;
    EXPECT_EQ(demos::find_param("top_k")->range_in(s).second, 8.0);
}

TEST(Params, ChoicesAreWhatTheKernelsAccept) {
    for (auto& c : demos::find_param("strategy")->choices) EXPECT_NO_THROW(moe::dispatch::parse_strategy(c.value));
    for (auto& c : demos::find_param("backend")->choices) EXPECT_NO_THROW(demos::parse_backend(c.value));
    for (const ParamInfo& p : demos::scenario_params())
        for (auto& c : p.choices) {
            Scenario s;
            p.set_string(s, c.value);
            EXPECT_TRUE(s.validate().empty()) << p.name << " = " << c.value;
        }
}

TEST(Params, HelpListsEveryFlagWithItsRange) {
    auto r = moelab_test::shell(std::string(MOELAB_BIN) + " run --help");
    ASSERT_EQ(r.rc, 0);
    for (const ParamInfo& p : demos::scenario_params()) {
        EXPECT_NE(r.out.find(p.flag), std::string::npos) << p.flag;
        EXPECT_NE(r.out.find(p.help_line()), std::string::npos) << p.help_line();
    }
    EXPECT_NE(r.out.find("1..1048576 tokens"), std::string::npos);
}
