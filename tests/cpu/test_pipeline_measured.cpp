// The measured pipeline's host side: the Chrome trace of a modelled pipeline, least squares, calibration files,
// the calibrated model, span summaries, the CPU reference, and the CLI on a machine without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "../support/test_support.hpp"
#include "demos/engine.hpp"
#include "demos/pipeline_measured.hpp"
#include "demos/result_load.hpp"
#include "demos/trace.hpp"
#include "kernels/common/error.hpp"
#include "kernels/pipeline.hpp"

namespace {

demos::Scenario modelled(int m, int L) {
    demos::Scenario s;
    s.tokens = 256;
    s.backend = "cpu";
    s.micro_batches = m;
    s.layers = L;
    return s;
}

std::string tmp_path(const std::string& name) { return "/tmp/moelab_test_" + std::to_string(::getpid()) + "_" + name; }

}  // namespace

TEST(ChromeTrace, ModelledPipelineIsValidJsonWithFourNamedTracks) {
    const int m = 3, L = 2;
    demos::Result r = demos::run(modelled(m, L), demos::Demo::Pipeline);
    ASSERT_FALSE(r.measured_pipeline.present) << "the CPU backend cannot measure the pipeline";
    const std::string path = tmp_path("trace.json");
    demos::write_chrome_trace(r, path);
    std::ifstream f(path);
    ASSERT_TRUE(f.good());
    nlohmann::json j = nlohmann::json::parse(f);  // throws on invalid JSON
    std::remove(path.c_str());
    ASSERT_TRUE(j.contains("traceEvents"));
    std::map<int, std::string> track;  // tid → name, for the model's process
    int complete = 0;
    std::set<std::string> lanes_seen;
    // Process 2 is the model; process 1 holds what was measured (here the CPU's layer stages).
    std::string model_process;
    for (auto& e : j["traceEvents"]) {
        ASSERT_TRUE(e.contains("ph"));
        if (e["pid"] != 2) continue;
        if (e["ph"] == "M" && e["name"] == "thread_name") track[e["tid"].get<int>()] = e["args"]["name"];
        if (e["ph"] == "M" && e["name"] == "process_name") model_process = e["args"]["name"];
    }
    EXPECT_NE(model_process.find("model"), std::string::npos) << model_process;
    for (auto& e : j["traceEvents"]) {
        if (e["ph"] != "X" || e["pid"] != 2) continue;
        ++complete;
        EXPECT_GE(e["ts"].get<double>(), 0.0);
        EXPECT_GE(e["dur"].get<double>(), 0.0);
        EXPECT_EQ(e["args"]["provenance"], "modeled");
        EXPECT_TRUE(e["args"].contains("layer") && e["args"].contains("micro_batch"));
        ASSERT_TRUE(track.count(e["tid"].get<int>())) << "event on an unnamed track";
        EXPECT_EQ(track[e["tid"].get<int>()], e["cat"].get<std::string>());
        lanes_seen.insert(e["cat"].get<std::string>());
    }
    EXPECT_EQ(complete, 4 * m * L);
    EXPECT_EQ(lanes_seen, (std::set<std::string>{"attention", "a2e", "experts", "e2a"}));
    EXPECT_EQ(track.size(), 4u);
    // The model's spans, in microseconds: the last one ends at the iteration time.
    double last = 0;
    for (auto& e : j["traceEvents"])
        if (e["ph"] == "X" && e["pid"] == 2) last = std::max(last, e["ts"].get<double>() + e["dur"].get<double>());
    // The measured process, when present, names its tracks too and carries its own provenance.
    for (auto& e : j["traceEvents"]) {
        if (e["ph"] == "X" && e["pid"] == 1) {
            EXPECT_EQ(e["args"]["provenance"], "measured-cpu");
        }
    }
    EXPECT_NEAR(last, r.pipeline.total_ms * 1e3, 1e-6 * r.pipeline.total_ms * 1e3 + 1e-9);
}

TEST(ChromeTrace, UnwritablePathIsBadInput) {
    demos::Result r = demos::run(modelled(2, 1), demos::Demo::Pipeline);
    try {
        demos::write_chrome_trace(r, "/nonexistent-dir/trace.json");
        FAIL();
    } catch (const moe::Error& e) {
        EXPECT_EQ(e.kind(), moe::ErrorKind::BadInput);
        EXPECT_NE(std::string(e.what()).find("--trace"), std::string::npos);
    }
}

TEST(Calibrate, LeastSquaresRecoversALine) {
    std::vector<double> x, y;
    for (int i = 1; i <= 9; ++i) {
        x.push_back(i * 128.0);
        y.push_back(0.05 * i * 128.0 + 120.0 + ((i % 2) ? 0.5 : -0.5));  // k1 = 0.05, k2 = 120, ±0.5 noise
    }
    demos::LineFit f = demos::fit_line(x, y);
    EXPECT_NEAR(f.slope, 0.05, 1e-3);
    EXPECT_NEAR(f.intercept, 120.0, 1.0);
    EXPECT_GT(f.r2, 0.99);
    EXPECT_EQ(f.points, 9);
    demos::LineFit one = demos::fit_line({64}, {7});
    EXPECT_EQ(one.slope, 0);
    EXPECT_EQ(one.intercept, 7);
}

TEST(Calibrate, FileRoundTripsAndBadFilesAreBadInput) {
    demos::Calibration c;
    c.device = "NVIDIA H200";
    c.pools = "green-contexts";
    c.k1 = 0.123, c.k2 = 45.5, c.k3 = 1.5, c.k4 = 20;
    c.link_gbps = 1800, c.link_latency_us = 3.25;
    c.ba = {512, 1024};
    c.ta_us = {108, 171};
    c.msg_bytes = {4096, 65536};
    c.msg_util = {0.01, 0.2};
    demos::Calibration back = demos::Calibration::from_toml(c.to_toml(), "cal.toml");
    EXPECT_EQ(back.device, c.device);
    EXPECT_DOUBLE_EQ(back.k1, c.k1);
    EXPECT_DOUBLE_EQ(back.k4, c.k4);
    EXPECT_DOUBLE_EQ(back.link_gbps, c.link_gbps);
    EXPECT_EQ(back.ta_us, c.ta_us);
    EXPECT_EQ(back.msg_util, c.msg_util);
    auto bad = [](const std::string& text, const char* needle) {
        try {
            demos::Calibration::from_toml(text, "cal.toml");
            ADD_FAILURE() << "accepted: " << text;
        } catch (const moe::Error& e) {
            EXPECT_EQ(e.kind(), moe::ErrorKind::BadInput);
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    bad("k1 = 1\nk2 = 1\nk3 = 1\n link_gbps = 5\nlink_latency_us = 1\n", "'k4' is missing");
    bad("k1 = -1\nk2 = 1\nk3 = 1\nk4 = 1\nlink_gbps = 5\nlink_latency_us = 1\n", "'k1'");
    bad("k1 = 1\nk2 = 1\nk3 = 1\nk4 = 1\nlink_gbps = 0\nlink_latency_us = 1\n", "link_gbps");
    bad("k1 = 1\nk2 = 1\nk3 = 1\nk4 = 1\nlink_gbps = 5\nlink_latency_us = 1\nwarp = 9\n", "unknown key 'warp'");
    bad("k1 = [", "malformed");
    std::string deep = "k1 = 1\n";
    for (int i = 0; i < 40000; ++i) deep += i ? ".a" : "[a";
    bad(deep + "]\n", "nest");  // bounded before the recursive parser sees it: an error, not a crash
    EXPECT_THROW(demos::Calibration::load("/nonexistent/cal.toml"), moe::Error);
    EXPECT_THROW(demos::Calibration::load("/tmp"), moe::Error);
}

TEST(Calibrate, CalibratedInputFollowsTheFittedLines) {
    demos::Scenario s;
    s.tokens = 4096, s.experts = 16, s.top_k = 2, s.hidden = 1024, s.micro_batches = 4;
    demos::Calibration c;
    c.k1 = 0.2, c.k2 = 30, c.k3 = 0.9, c.k4 = 15, c.link_gbps = 1000, c.link_latency_us = 4;
    demos::PipelineInput in = demos::calibrated_input(s, c);
    const double ba = 1024, be = 4096.0 * 2 / (4 * 16), bytes = ba * 2 * 1024 * 2;
    EXPECT_NEAR(in.ta_ms, (0.2 * ba + 30) * 1e-3, 1e-12);
    EXPECT_NEAR(in.te_ms, (0.9 * be + 15) * 1e-3, 1e-12);
    EXPECT_NEAR(in.tc_ms, (4 + bytes / 1e12 * 1e6) * 1e-3, 1e-12);
    EXPECT_EQ(in.micro_batches, 4);
}

TEST(Calibrate, SpanSummaryTakesMediansAndBusyFractions) {
    using moe::pipeline::Span;
    std::vector<Span> spans;
    // Two micro-batches, one layer: attention 1 ms each, links 0.1 ms, experts 2 ms each, then the last combines.
    spans.push_back({moe::pipeline::kAttention, 0, 0, 0, 0.0, 1.0, 0});
    spans.push_back({moe::pipeline::kAttention, 0, 1, 0, 1.0, 2.0, 0});
    spans.push_back({moe::pipeline::kA2E, 0, 0, 0, 1.0, 1.1, 100});
    spans.push_back({moe::pipeline::kA2E, 0, 1, 0, 2.0, 2.1, 100});
    spans.push_back({moe::pipeline::kExperts, 0, 0, 0, 1.1, 3.1, 0});
    spans.push_back({moe::pipeline::kExperts, 0, 1, 0, 3.1, 5.1, 0});
    spans.push_back({moe::pipeline::kE2A, 0, 0, 0, 3.1, 3.2, 100});
    spans.push_back({moe::pipeline::kE2A, 0, 1, 0, 5.1, 5.3, 100});
    spans.push_back({moe::pipeline::kAttention, 1, 0, 0, 3.2, 3.3, 0});  // layer == L: the last combine
    spans.push_back({moe::pipeline::kAttention, 1, 1, 0, 5.3, 5.4, 0});
    demos::PipelineSummary p = demos::summarize_spans(spans, 1, 2, 5.4);
    EXPECT_DOUBLE_EQ(p.ta_ms, 1.0);  // the combines are not attention steps
    EXPECT_DOUBLE_EQ(p.te_ms, 2.0);
    EXPECT_NEAR(p.tc_ms, 0.2, 1e-12);  // the slower direction's median
    EXPECT_NEAR(p.attention_util, 2.2 / 5.4, 1e-12);
    EXPECT_NEAR(p.expert_util, 4.0 / 5.4, 1e-12);
    EXPECT_EQ(p.provenance, demos::Provenance::MeasuredGpu);
}

// The stage times of the H200's calibrations (2026-12-02, m = 2, B = 4096): the split the model proposes from each
// of three measured splits is the same, and the one that measured fastest (104 | 28).
TEST(SplitAdvice, ProposesTheMeasuredBalanceFromEverySplit) {
    struct At {
        int a, e;
        double ta, te;
    };
    for (const At& at : {At{88, 44, 0.800, 0.325}, At{64, 68, 1.100, 0.210}, At{120, 12, 0.587, 1.193}}) {
        SCOPED_TRACE(std::to_string(at.a) + " | " + std::to_string(at.e));
        const demos::SplitAdvice adv = demos::advise_split(at.ta, at.te, at.a, at.e, 132);
        ASSERT_TRUE(adv.valid);
        EXPECT_TRUE(adv.better);
        EXPECT_EQ(adv.attention_bound, at.ta > at.te);
        EXPECT_EQ(adv.attention_sms, 104);
        EXPECT_EQ(adv.expert_sms, 28);
        EXPECT_NEAR(adv.ta_ms, at.ta * at.a / 104, 1e-9);
        EXPECT_NEAR(adv.te_ms, at.te * at.e / 28, 1e-9);
        EXPECT_LT(std::max(adv.ta_ms, adv.te_ms), std::max(at.ta, at.te));
    }
    // At the balance already: no advice, the current split back.
    const demos::SplitAdvice here = demos::advise_split(0.677, 0.511, 104, 28, 132);
    EXPECT_TRUE(here.valid);
    EXPECT_FALSE(here.better);
    EXPECT_EQ(here.attention_sms, 104);
    // Nothing to go on.
    EXPECT_FALSE(demos::advise_split(0, 0.5, 64, 68, 132).valid);
    EXPECT_FALSE(demos::advise_split(0.5, 0.5, 64, 68, 12).valid);
    EXPECT_FALSE(demos::advise_split(0.5, 0.5, 100, 68, 132).valid);
}

TEST(PipelineReference, DeterministicAndIndependentOfThreads) {
    moe::pipeline::Spec p;
    p.layer.tokens = 24, p.layer.experts = 4, p.layer.top_k = 2, p.layer.hidden = 64, p.layer.ffn = 40;
    p.layer.seed = 11;
    p.context = 9, p.q_heads = 4, p.kv_groups = 2, p.micro_batches = 3, p.layers = 2;
    std::vector<moe::bf16_t> a, b;
    moe::pipeline::cpu::reference(p, a, 1);
    moe::pipeline::cpu::reference(p, b, 2);
    ASSERT_EQ(a.size(), std::size_t(24 * 64));
    EXPECT_TRUE(a == b);
    double energy = 0;
    for (auto v : a) energy += std::fabs(moe::bf16_to_f32(v));
    EXPECT_GT(energy, 0.0) << "the reference produced all zeros";
    p.layer.seed = 12;
    moe::pipeline::cpu::reference(p, b, 2);
    EXPECT_FALSE(a == b) << "the seed does not reach the output";
}

TEST(PipelineCli, CpuBackendModelsAndSaysSoAndWritesATrace) {
    const std::string trace = tmp_path("cli_trace.json");
    auto r =
        moelab_test::shell(std::string(MOELAB_BIN) + " run pipeline --backend cpu --tokens 256 -m 2 --trace " + trace);
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("[modeled]"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("needs the cuda backend"), std::string::npos) << r.out;
    std::ifstream f(trace);
    ASSERT_TRUE(f.good()) << r.out;
    nlohmann::json j;
    EXPECT_NO_THROW(j = nlohmann::json::parse(f));
    EXPECT_TRUE(j.is_object() && j.contains("traceEvents")) << "a Chrome trace";
    std::remove(trace.c_str());
    auto bad = moelab_test::shell(std::string(MOELAB_BIN) + " run pipeline --backend cpu --kv-groups 3");
    EXPECT_EQ(bad.rc, 2) << bad.out;
    EXPECT_NE(bad.out.find("--kv-groups 3"), std::string::npos) << bad.out;
    auto plan = moelab_test::shell(std::string(MOELAB_BIN) + " plan --calibration /nonexistent.toml");
    EXPECT_EQ(plan.rc, 2) << plan.out;
    EXPECT_NE(plan.out.find("--calibration"), std::string::npos) << plan.out;
}

TEST(PipelineCli, PlanReadsACalibration) {
    demos::Calibration c;
    c.device = "TestGPU";
    c.k1 = 0.01, c.k2 = 10, c.k3 = 0.5, c.k4 = 12, c.link_gbps = 900, c.link_latency_us = 2;
    const std::string path = tmp_path("cal.toml");
    c.save(path);
    auto r = moelab_test::shell(std::string(MOELAB_BIN) + " plan --calibration " + path);
    std::remove(path.c_str());
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("calibrated on TestGPU"), std::string::npos) << r.out;
}

#include "demos/result_io.hpp"
#include "demos/result_load.hpp"

TEST(ResultLoad, RoundTripsThroughJsonWithProvenance) {
    demos::Result r = demos::run(modelled(3, 2), demos::Demo::Pipeline);
    // Stand in for a measured run: spans, a measured summary and a calibration.
    r.timeline = r.model_timeline;
    for (auto& s : r.timeline) s.provenance = demos::Provenance::MeasuredGpu;
    r.timeline[1].provenance = demos::Provenance::Emulated;
    auto& mp = r.measured_pipeline;
    mp.present = true;
    mp.pools = "green-contexts";
    mp.attention_sms = 64, mp.expert_sms = 68, mp.device_sms = 132;
    mp.iteration = {"iteration", 1.5, 1.6, 1.9, 7, demos::Provenance::MeasuredGpu};
    mp.measured.ta_ms = 0.3, mp.measured.te_ms = 0.25, mp.measured.tc_ms = 0.01;
    mp.k1 = 0.01, mp.k4 = 33, mp.link_gbps = 1700;
    mp.msg_bytes = {4096, 65536};
    mp.msg_util = {0.02, 0.3};
    mp.model_error = -0.04;
    demos::Result b = demos::result_from_json(demos::to_json(r).dump(), "r.json");
    EXPECT_EQ(b.scenario, r.scenario);
    EXPECT_EQ(b.demo, r.demo);
    EXPECT_EQ(b.device, r.device);
    ASSERT_EQ(b.timeline.size(), r.timeline.size());
    EXPECT_EQ(b.timeline[1].provenance, demos::Provenance::Emulated);
    EXPECT_EQ(b.timeline[0].provenance, demos::Provenance::MeasuredGpu);
    EXPECT_DOUBLE_EQ(b.timeline.back().end_ms, r.timeline.back().end_ms);
    ASSERT_EQ(b.model_timeline.size(), r.model_timeline.size());
    EXPECT_DOUBLE_EQ(b.pipeline.total_ms, r.pipeline.total_ms);
    EXPECT_TRUE(b.measured_pipeline.present);
    EXPECT_EQ(b.measured_pipeline.pools, "green-contexts");
    EXPECT_EQ(b.measured_pipeline.attention_sms, 64);
    EXPECT_DOUBLE_EQ(b.measured_pipeline.iteration.median_ms, 1.6);
    EXPECT_DOUBLE_EQ(b.measured_pipeline.k4, 33);
    EXPECT_EQ(b.measured_pipeline.msg_util, mp.msg_util);
    EXPECT_EQ(b.expert_loads, r.expert_loads);
    EXPECT_EQ(b.loads_provenance, r.loads_provenance);
    EXPECT_EQ(b.caveats, r.caveats);
    EXPECT_TRUE(b.has(demos::Result::Caveat::CpuReference));
}

TEST(ResultLoad, RejectsWhatIsNotAResult) {
    auto bad = [](const std::string& text, const char* needle) {
        try {
            demos::result_from_json(text, "x.json");
            ADD_FAILURE() << "accepted " << text;
        } catch (const moe::Error& e) {
            EXPECT_EQ(e.kind(), moe::ErrorKind::BadInput);
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    bad("{", "not JSON");
    bad("[1,2]", "not a moelab Result");
    bad(R"({"demo":"layer","backend":"cpu","expert_loads":"many"})", "'expert_loads'");
    bad(R"({"demo":"layer","backend":"cpu","timeline":[{"lane":"a","provenance":"guessed"}]})", "provenance 'guessed'");
    bad(R"({"demo":"dance","backend":"cpu"})", "dance");
    EXPECT_THROW(demos::load_result("/nonexistent.json"), moe::Error);
    EXPECT_THROW(demos::load_result("/tmp"), moe::Error);
}

// The saved run in tests/data (one H200 at the default 64 | 68): attention the slower stage, and the model proposes 96
// | 36, as the run's own note says.
TEST(SplitAdvice, TheSavedH200RunAtTheDefaultSplit) {
    const demos::Result r =
        demos::load_result(std::string(MOELAB_SOURCE_DIR) + "/tests/data/measured-pipeline-h200.json");
    const demos::PipelineRun& mp = r.measured_pipeline;
    ASSERT_TRUE(mp.present);
    EXPECT_EQ(mp.pools, "green-contexts");
    EXPECT_EQ(mp.attention_sms, 64);
    const demos::SplitAdvice adv =
        demos::advise_split(mp.measured.ta_ms, mp.measured.te_ms, mp.attention_sms, mp.expert_sms, mp.device_sms);
    ASSERT_TRUE(adv.better);
    EXPECT_TRUE(adv.attention_bound);
    EXPECT_EQ(adv.attention_sms, 96);
    bool noted = false;
    for (const std::string& n : r.notes) noted |= n.find("96 | 36 SMs would give") != std::string::npos;
    EXPECT_TRUE(noted);
}
