// The app's runner without a window (label gui): edits are debounced into one run, a newer generation drops the
// results of older ones, errors come back as data naming the flag, and the job plan follows the open views.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "app/gui/app.hpp"
#include "app/gui/runner.hpp"
#include "tests/gui/session_support.hpp"
#include "tests/support/scratch.hpp"

namespace {

using namespace std::chrono_literals;

using moelab_gui_test::poll_until;
using moelab_gui_test::tiny;

moelab_gui::Job routing_job(const demos::Scenario& s) {
    return {moelab_gui::Slot::Routing, demos::Demo::Routing, s, 0, 0};
}

// Waits until the runner has nothing queued or running, collecting what it publishes.
std::vector<moelab_gui::JobResult> drain(moelab_gui::Runner& r) {
    std::vector<moelab_gui::JobResult> out;
    for (int i = 0; i < 600; ++i) {
        for (auto& x : r.take_results()) out.push_back(std::move(x));
        auto st = r.status();
        if (!st.busy && !st.pending && i > 2) break;
        std::this_thread::sleep_for(10ms);
    }
    for (auto& x : r.take_results()) out.push_back(std::move(x));
    return out;
}

}  // namespace

TEST(GuiRunner, EditsInQuickSuccessionRunOnceWithTheLastScenario) {
    moelab_gui::Runner r;
    std::uint64_t last = 0;
    for (int k = 1; k <= 5; ++k) {
        demos::Scenario s = tiny();
        s.top_k = k;
        last = r.submit({routing_job(s)}, 150);
        std::this_thread::sleep_for(10ms);  // faster than the debounce
    }
    auto results = drain(r);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].generation, last);
    ASSERT_TRUE(results[0].ok) << results[0].error;
    EXPECT_EQ(results[0].result.scenario.top_k, 5);
}

TEST(GuiRunner, ANewerGenerationDropsTheOlderOnesResults) {
    moelab_gui::Runner r;
    demos::Scenario big = tiny();
    big.tokens = 1 << 16;
    std::vector<moelab_gui::Job> slow(6, routing_job(big));
    r.submit(slow, 0);
    std::this_thread::sleep_for(20ms);  // let it start
    demos::Scenario s = tiny();
    s.top_k = 3;
    const std::uint64_t gen = r.submit({routing_job(s)}, 0);
    auto results = drain(r);
    ASSERT_FALSE(results.empty());
    for (const auto& x : results) {
        EXPECT_EQ(x.generation, gen);
        EXPECT_EQ(x.result.scenario.top_k, 3);
    }
}

TEST(GuiRunner, ErrorsComeBackAsDataNamingTheFlag) {
    demos::Scenario s = tiny();
    s.top_k = 40;
    moelab_gui::JobResult r = moelab_gui::run_job(routing_job(s), 7, nullptr, {});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error_kind, moe::ErrorKind::BadInput);
    EXPECT_EQ(r.error.rfind("--top-k", 0), 0u) << r.error;
}

TEST(GuiRunner, CancelStopsTheBatchAndPublishesNothing) {
    moelab_gui::Runner r;
    demos::Scenario big = tiny();
    big.tokens = 1 << 16;
    r.submit(std::vector<moelab_gui::Job>(20, routing_job(big)), 0);
    std::this_thread::sleep_for(30ms);
    r.cancel();
    auto results = drain(r);
    EXPECT_TRUE(results.empty());
    EXPECT_FALSE(r.status().busy);
}

TEST(GuiRunner, ThePlanFollowsTheOpenViews) {
    moelab_gui::ViewState vs;
    demos::Scenario s = tiny();
    vs.show_dispatch = false;
    vs.run_full_layer = false;
    vs.show_timeline = false;  // on a GPU, the measured pipeline joins while the timeline is open
    auto jobs = moelab_gui::plan_jobs(s, moelab_gui::run_plan(vs));
    ASSERT_EQ(jobs.size(), 1u);  // routing + the pipeline model: what loads, comm and timeline need
    EXPECT_EQ(jobs[0].demo, demos::Demo::Pipeline);
    vs.show_dispatch = true;
    vs.sweep_on = true;
    vs.run_full_layer = true;
    jobs = moelab_gui::plan_jobs(s, moelab_gui::run_plan(vs));
    int sweep = 0, layer = 0, dispatch = 0;
    for (const auto& j : jobs) {
        sweep += j.slot == moelab_gui::Slot::Sweep;
        layer += j.slot == moelab_gui::Slot::Layer;
        dispatch += j.slot == moelab_gui::Slot::Dispatch;
    }
    EXPECT_EQ(dispatch, 1);
    EXPECT_GE(sweep, 4);
    EXPECT_EQ(layer, 1);
    EXPECT_EQ(jobs.back().slot, moelab_gui::Slot::Layer);  // the slow one last, so loads arrive first
}

TEST(GuiRunner, ASupersededFirstJobFinishesAndKeepsItsResult) {
    // The loads of a value passed over while dragging still show: a newer batch lets that job finish.
    moelab_gui::Runner r;
    demos::Scenario big = tiny();
    big.tokens = 1 << 17;
    moelab_gui::Job first = routing_job(big);
    first.finish_when_superseded = true;
    first.id = 7;  // status().keeper_id names it while it runs
    r.submit({first}, 0);
    // Supersede it only once it runs (or is done): a job still queued is replaced, not finished. A fixed sleep
    // lost that race on a loaded machine.
    std::vector<moelab_gui::JobResult> results;
    bool started = false;
    for (int i = 0; i < 2000 && !started; ++i) {
        for (auto& x : r.take_results()) started = true, results.push_back(std::move(x));
        started = started || r.status().keeper_id != 0;
        if (!started) std::this_thread::sleep_for(1ms);
    }
    ASSERT_TRUE(started) << "the first job neither started nor finished within about 2 s";
    demos::Scenario s = tiny();
    s.top_k = 3;
    r.submit({routing_job(s)}, 0);
    for (auto& x : drain(r)) results.push_back(std::move(x));
    bool old_kept = false, new_arrived = false;
    for (const auto& x : results) {
        old_kept |= x.result.scenario.tokens == big.tokens;
        new_arrived |= x.result.scenario.top_k == 3;
    }
    EXPECT_TRUE(old_kept);
    EXPECT_TRUE(new_arrived);
}

TEST(GuiSession, TheDebounceFollowsTheCostOfTheLastRun) {
    EXPECT_EQ(moelab_gui::debounce_for(-1), 0);  // nothing measured yet
    EXPECT_EQ(moelab_gui::debounce_for(3), 0);   // under 20 ms: at once
    EXPECT_EQ(moelab_gui::debounce_for(19.9), 0);
    EXPECT_GE(moelab_gui::debounce_for(60), 20);
    EXPECT_LE(moelab_gui::debounce_for(60), 60);
    EXPECT_EQ(moelab_gui::debounce_for(5000), 150);
}


TEST(GuiSession, OneWriterValidatesAndKeepsThePresetNameOnlyWhileItMatches) {
    moelab_gui::SessionOptions o;
    o.scenario = demos::presets().front().scenario;
    o.scenario.backend = "cpu";
    o.preset = demos::presets().front().name;
    o.background = false;
    moelab_gui::Session s(o);
    EXPECT_EQ(s.preset(), o.preset);
    demos::Scenario e = s.scenario();
    e.top_k = e.experts + 1;
    s.set_scenario(e, s.preset());
    EXPECT_EQ(s.preset(), "");
    ASSERT_FALSE(s.invalid().empty());
    EXPECT_EQ(s.invalid().front().rfind("--top-k", 0), 0u) << s.invalid().front();
}

TEST(GuiSession, TheLessonRevealSharesTheAppsRunInsteadOfRunningTwice) {
    moelab_gui::SessionOptions o;
    o.scenario = tiny();
    o.progress_path = moelab_test::scratch((std::filesystem::temp_directory_path() /
                                            ("moelab-session-test-progress-" + std::to_string(::getpid()) + ".toml"))
                                               .string());
    moelab_gui::Session s(o);
    moelab_gui::RunPlan loads_only;
    loads_only.dispatch = loads_only.sweep = loads_only.full_layer = loads_only.pipeline = false;
    s.set_plan(loads_only);
    s.load_lessons();
    ASSERT_TRUE(poll_until(s, [&] { return s.lesson().loaded && !s.busy(); }));
    int index = -1;
    for (std::size_t i = 0; i < s.lesson().set.lessons.size(); ++i)
        if (s.lesson().set.lessons[i].id == "straggler") index = int(i);
    ASSERT_GE(index, 0) << "the built-in lesson 'straggler'";
    s.start_lesson(index, 0);
    ASSERT_EQ(s.lesson().phase, moelab_gui::LessonPhase::Predict);
    demos::LessonAnswer a;
    a.choice = "a";
    a.value = 2;
    a.confidence = 3;
    s.commit_lesson(a, false, {}, "");
    ASSERT_TRUE(poll_until(s, [&] { return s.lesson().phase == moelab_gui::LessonPhase::Revealed && !s.busy(); }))
        << s.lesson().run_error;
    // The lesson's scenario went into the controls (the user's backend kept) and the app shows its loads.
    demos::Scenario want = s.lesson().scenario;
    want.backend = "cpu";
    EXPECT_EQ(s.scenario(), want);
    ASSERT_TRUE(s.results().routing.has_value());
    // The same run fed both: measured stage times are never equal twice on the CPU, and these are.
    const demos::Result& app = *s.results().routing;
    const demos::Result& lesson = s.lesson().reveal.results.at(0);
    ASSERT_FALSE(app.stages.empty());
    ASSERT_EQ(app.stages.size(), lesson.stages.size());
    for (std::size_t i = 0; i < app.stages.size(); ++i)
        EXPECT_EQ(app.stages[i].median_ms, lesson.stages[i].median_ms) << app.stages[i].stage;
}

TEST(GuiRunner, AnAddedJobRunsNextWithoutRestartingTheBatch) {
    // The lesson's experiment joins the batch that runs (the app's runs go on, none is run twice).
    moelab_gui::Runner r;
    demos::Scenario big = tiny();
    big.tokens = 1 << 16;
    std::vector<moelab_gui::Job> batch;
    for (int k = 1; k <= 4; ++k) {
        demos::Scenario s = big;
        s.top_k = k;
        batch.push_back(routing_job(s));
    }
    const std::uint64_t gen = r.submit(batch, 0);
    for (int i = 0; i < 500 && !r.status().busy; ++i) std::this_thread::sleep_for(1ms);
    demos::Scenario extra = tiny();
    extra.top_k = 7;
    EXPECT_EQ(r.add(routing_job(extra)), gen);
    auto results = drain(r);
    ASSERT_EQ(results.size(), 5u);
    int pos = -1;
    for (std::size_t i = 0; i < results.size(); ++i) {
        EXPECT_EQ(results[i].generation, gen);
        if (results[i].result.scenario.top_k == 7) pos = int(i);
    }
    ASSERT_GE(pos, 1) << "the added job ran, after the one that was running";
    EXPECT_LT(pos, 4) << "it ran next, not after the whole batch";
    // With nothing running it is a batch of its own.
    const std::uint64_t alone = r.add(routing_job(extra));
    EXPECT_GT(alone, gen);
    auto more = drain(r);
    ASSERT_EQ(more.size(), 1u);
    EXPECT_EQ(more[0].result.scenario.top_k, 7);
}

TEST(GuiRunner, AFailedRunEndsTheBatchButTheLessonsExperimentStillRuns) {
    // The reveal waits for its experiment: a failed app run before it must not drop it (the lesson would measure
    // forever), while the app's runs after the failure are dropped as before.
    moelab_gui::JobResult routed = moelab_gui::run_job(routing_job(tiny()), 1, nullptr, {});
    ASSERT_TRUE(routed.ok) << routed.error;
    auto in = std::make_shared<moelab_gui::Job::ExperimentInput>();
    in->lesson.experiment = "expert-ffn";
    in->results = {routed.result};
    moelab_gui::Job experiment{moelab_gui::Slot::LessonExperiment, demos::Demo::Routing, tiny()};
    experiment.owners = moelab_gui::kOwnerLesson;
    experiment.experiment = in;
    demos::Scenario bad = tiny();
    bad.top_k = 40;
    demos::Scenario after = tiny();
    after.top_k = 2;
    moelab_gui::Runner r;
    r.submit({routing_job(bad), experiment, routing_job(after)}, 0);
    auto results = drain(r);
    ASSERT_EQ(results.size(), 2u);
    EXPECT_FALSE(results[0].ok);
    EXPECT_EQ(results[1].job.slot, moelab_gui::Slot::LessonExperiment);
    ASSERT_TRUE(results[1].ok) << results[1].error;
    ASSERT_EQ(results[1].experiments.size(), 1u);
    EXPECT_EQ(results[1].experiments[0].name, "expert-ffn");
    EXPECT_TRUE(results[1].experiments[0].scalars.count("hot_expert_ms"));
}
