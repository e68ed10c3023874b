// The roofline panel's job in the Session (label gui, no window): on the CPU reference opening the panel runs
// nothing (the view models the chart itself); on a GPU it measures once per shape, in the background, and an edit
// that keeps d, F, E and k keeps the measurement.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "app/gui/roofline_chart.hpp"
#include "app/gui/session.hpp"
#include "kernels/api.hpp"
#include "tests/gui/session_support.hpp"

namespace {

using moelab_gui::Session;
using moelab_gui_test::poll_until;
using moelab_gui_test::tiny;

std::unique_ptr<Session> session_for(const demos::Scenario& s) {
    moelab_gui::SessionOptions o;
    o.scenario = s;
    auto ses = std::make_unique<Session>(o);
    moelab_gui::RunPlan loads_only;
    loads_only.dispatch = loads_only.sweep = loads_only.full_layer = loads_only.pipeline = false;
    ses->set_plan(loads_only);
    return ses;
}

moelab_gui::RunPlan with_roofline(const Session& s) {
    moelab_gui::RunPlan p = s.plan();
    p.roofline = true;
    return p;
}

}  // namespace

TEST(RooflineSession, OnTheCpuReferenceThePanelRunsNothing) {
    auto s = session_for(tiny());
    ASSERT_TRUE(poll_until(*s, [&] { return !s->busy() && s->results().routing && !s->background_pending(); }));
    const std::uint64_t routed = s->routing_results();
    s->set_plan(with_roofline(*s));
    EXPECT_FALSE(s->busy()) << "opening the panel queued a job on the CPU reference";
    s->measure_roofline();  // the panel's button: nothing to measure without a GPU
    EXPECT_FALSE(s->busy());
    ASSERT_TRUE(poll_until(*s, [&] { return !s->busy(); }));
    EXPECT_FALSE(s->results().roofline.has_value());
    EXPECT_FALSE(s->error().present) << s->error().message;
    EXPECT_EQ(s->routing_results(), routed) << "opening the panel ran the app's runs again";
    // An edit re-runs the app's runs and still queues no roofline.
    demos::Scenario e = tiny();
    e.hidden = 128;
    s->set_scenario(e);
    ASSERT_TRUE(poll_until(*s, [&] { return !s->busy() && s->results().routing->scenario == e; }));
    EXPECT_FALSE(s->results().roofline.has_value());
    EXPECT_FALSE(s->error().present) << s->error().message;
}

TEST(RooflineSession, OnAGpuItMeasuresOncePerShape) {
    if (moe::gpu::devices().empty()) GTEST_SKIP() << "no GPU: " << moe::gpu::unavailable_reason();
    demos::Scenario sc = tiny();
    sc.backend = "cuda";
    sc.hidden = 256;
    sc.ffn = 512;
    auto s = session_for(sc);
    ASSERT_TRUE(poll_until(*s, [&] { return !s->busy() && s->results().routing && !s->background_pending(); }));
    ASSERT_FALSE(s->cpu_backend());
    s->set_plan(with_roofline(*s));
    ASSERT_TRUE(poll_until(
        *s, [&] { return s->results().roofline.has_value() && !s->busy(); }, 300))
        << s->error().message;
    const demos::ExpertRoofline& rl = *s->results().roofline;
    EXPECT_EQ(rl.shape, demos::roofline_shape(sc));
    EXPECT_EQ(rl.source, demos::lesson::Source::MeasuredGpu);
    EXPECT_GT(rl.ceilings.read_gbps, 0);
    EXPECT_GT(rl.ceilings.gemm_tflops, 0);
    ASSERT_EQ(rl.points.size(), demos::roofline_sweep().size());
    for (const auto& p : rl.points) {
        EXPECT_EQ(p.wrong, 0) << p.tokens_per_expert;
        EXPECT_FALSE(p.impl.empty());
        EXPECT_GT(p.median_ms, 0);
    }
    // Tokens move the point, not the roofline: the measurement stays; a new width measures again.
    demos::Scenario more = sc;
    more.tokens *= 2;
    s->set_scenario(more);
    ASSERT_TRUE(poll_until(*s, [&] { return !s->busy() && s->results().routing->scenario == more; }));
    EXPECT_EQ(s->results().roofline->shape, demos::roofline_shape(sc));
    demos::Scenario wider = more;
    wider.hidden = 512;
    s->set_scenario(wider);
    ASSERT_TRUE(poll_until(
        *s, [&] { return !s->busy() && s->results().roofline->shape == demos::roofline_shape(wider); }, 300))
        << s->error().message;
}

// A point's tooltip names its probe: what the same work takes without the FFN around it, and how close to the
// roofline that is.
TEST(RooflineSession, APointsTooltipSaysItsProbe) {
    const demos::RooflineShape classroom{1024, 2816, 16, 2};
    const demos::ExpertRoofline rl = demos::roofline_lines(classroom, demos::recorded_ceilings());
    demos::RooflinePoint p;
    p.tokens_per_expert = 8;
    p.impl = "mid";
    p.median_ms = 0.080, p.p95_ms = 0.082, p.floor_ms = 0.060;
    p.source = demos::lesson::Source::MeasuredGpu;
    EXPECT_EQ(moelab_gui::roofline::point_text(p, rl).find("probe"), std::string::npos);
    p.probe = "stream", p.probe_ms = 0.0675;
    const std::string s = moelab_gui::roofline::point_text(p, rl);
    EXPECT_NE(s.find("probe, the same work alone"), std::string::npos) << s;
    EXPECT_NE(s.find("(89% of the roofline)"), std::string::npos) << s;
    EXPECT_NE(s.find("the weights read as the FFN reads them"), std::string::npos) << s;
    p.probe = "dense", p.probe_ms = 0.075;
    EXPECT_NE(moelab_gui::roofline::point_text(p, rl).find("cuBLAS over all rows"), std::string::npos);
    EXPECT_EQ(moelab_gui::roofline::point_text(p, rl).find("every expert the same tokens"), std::string::npos);
    p.balanced_ms = 0.0666;
    const std::string b = moelab_gui::roofline::point_text(p, rl);
    EXPECT_NE(b.find("every expert the same tokens"), std::string::npos) << b;
    EXPECT_NE(b.find("(90% of the roofline)"), std::string::npos) << b;
}

// A saved sweep's point also names the PyTorch peer of its run, and how far ahead or behind auto is.
TEST(RooflineSession, APointsTooltipSaysThePeer) {
    const demos::ExpertRoofline rl = demos::roofline_lines({1024, 2816, 16, 2}, demos::recorded_ceilings());
    demos::RooflinePoint p;
    p.tokens_per_expert = 8;
    p.median_ms = 0.080, p.p95_ms = 0.082, p.floor_ms = 0.060;
    EXPECT_EQ(moelab_gui::roofline::point_text(p, rl).find("PyTorch"), std::string::npos);
    p.peer = "torch._grouped_mm", p.peer_ms = 0.140;
    const std::string s = moelab_gui::roofline::point_text(p, rl);
    EXPECT_NE(s.find("PyTorch (torch._grouped_mm) on the same FFN and tokens, same run"), std::string::npos) << s;
    EXPECT_NE(s.find("auto is 1.75× faster"), std::string::npos) << s;
    p.peer_ms = 0.040;
    EXPECT_NE(moelab_gui::roofline::point_text(p, rl).find("auto is 2.00× slower"), std::string::npos);
}

// Without a GPU the session holds the run of record for the shapes it swept, and nothing for others.
TEST(RooflineSession, TheRunOfRecordIsThereForItsShapes) {
    moelab_gui::SessionOptions o;
    o.background = false;
    moelab_gui::Session s(o);
    const demos::ExpertRoofline* rl = s.saved_roofline({1024, 2816, 16, 2});
    ASSERT_NE(rl, nullptr);
    EXPECT_EQ(rl->shape_name, "classroom");
    EXPECT_FALSE(rl->recorded.empty());
    EXPECT_EQ(s.saved_roofline({256, 512, 16, 2}), nullptr);
    // --roofline FILE replaces it.
    o.saved_rooflines =
        std::vector<demos::ExpertRoofline>{demos::roofline_lines({256, 512, 16, 2}, demos::recorded_ceilings())};
    moelab_gui::Session t(o);
    EXPECT_NE(t.saved_roofline({256, 512, 16, 2}), nullptr);
    EXPECT_EQ(t.saved_roofline({1024, 2816, 16, 2}), nullptr);
}

// A sweep opened while the app runs (dropped on the window) replaces the one held; a bad file says why and keeps it.
TEST(RooflineSession, ASweepFileReplacesTheHeldOneOrSaysWhyNot) {
    moelab_gui::SessionOptions o;
    o.background = false;
    moelab_gui::Session s(o);
    const std::string dir = ::testing::TempDir() + "moelab_roofline_open_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/bad.json") << "[1, 2]";
    std::string msg;
    EXPECT_FALSE(s.load_rooflines(dir + "/bad.json", &msg));
    EXPECT_NE(msg.find("Could not load: roofline file " + dir + "/bad.json: not a saved benchmark"), std::string::npos)
        << msg;
    EXPECT_NE(s.saved_roofline({1024, 2816, 16, 2}), nullptr);  // the run of record is still held
    std::ofstream(dir + "/sweep.json")
        << R"({"ceilings": {"read_gbps": 4000, "gemm_tflops": 800}, "device": "GPU X", "rows": [)"
        << R"({"stage": "experts", "skew": "uniform", "shape": "tiny", "hidden": 256, "ffn": 512, "experts": 16, )"
        << R"("top_k": 2, "tokens_per_expert": 8, "variant": "auto:mid", "median_ms": 0.05, "floor_ms": 0.04}]})";
    EXPECT_TRUE(s.load_rooflines(dir + "/sweep.json", &msg)) << msg;
    EXPECT_NE(msg.find("Roofline sweep from GPU X"), std::string::npos) << msg;
    EXPECT_NE(msg.find("none is this scenario's shape"), std::string::npos) << msg;  // the default is the classroom's
    EXPECT_NE(s.saved_roofline({256, 512, 16, 2}), nullptr);
    EXPECT_EQ(s.saved_roofline({1024, 2816, 16, 2}), nullptr);
    std::filesystem::remove_all(dir);
}
