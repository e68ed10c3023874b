// Scenario: validation messages name the parameter and its range, TOML round trips exactly, presets are valid.
#include <gtest/gtest.h>

#include "demos/engine.hpp"
#include "demos/scenario.hpp"
#include "kernels/common/error.hpp"

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
