// The Session's background jobs beyond the app's runs (label gui, no window): the lesson's experiment measured on
// the runner instead of in poll(), dropped when the student leaves the lesson; the loads view's per-expert times;
// and presenter mode's two votes, counted and saved as the terminal's --class player saves them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "app/gui/session.hpp"
#include "tests/gui/session_support.hpp"
#include "tests/support/scratch.hpp"

namespace {

using namespace std::chrono_literals;
using moelab_gui::LessonPhase;
using moelab_gui::Session;

using moelab_gui_test::poll_until;
using moelab_gui_test::tiny;

class SessionLesson : public ::testing::Test {
  protected:
    void SetUp() override {
        progress_ = moelab_test::scratch((std::filesystem::temp_directory_path() /
                                          ("moelab_session_lesson_" + std::to_string(::getpid()) + "_" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".toml"))
                                             .string());
        std::filesystem::remove(progress_);
        moelab_gui::SessionOptions o;
        o.scenario = tiny();
        o.progress_path = progress_;
        s_ = std::make_unique<Session>(o);
        moelab_gui::RunPlan loads_only;
        loads_only.dispatch = loads_only.sweep = loads_only.full_layer = loads_only.pipeline = false;
        s_->set_plan(loads_only);
        s_->load_lessons();
        ASSERT_TRUE(poll_until(*s_, [&] { return s_->lesson().loaded && !s_->busy(); }));
    }
    void TearDown() override { std::filesystem::remove(progress_); }
    int index_of(const std::string& id) const {
        for (std::size_t i = 0; i < s_->lesson().set.lessons.size(); ++i)
            if (s_->lesson().set.lessons[i].id == id) return int(i);
        return -1;
    }
    std::string progress_text() const {
        std::ifstream f(progress_);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }
    std::string progress_;
    std::unique_ptr<Session> s_;
};

}  // namespace

TEST_F(SessionLesson, TheRevealMeasuresItsExperimentOnTheRunnerNotInPoll) {
    const int idx = index_of("straggler");
    ASSERT_GE(idx, 0) << "the built-in lesson 'straggler'";
    const demos::Lesson& L = s_->lesson().set.lessons[std::size_t(idx)];
    ASSERT_FALSE(L.experiment.empty()) << "lesson 1 names an experiment";
    s_->start_lesson(idx, 0);
    demos::LessonAnswer a;
    a.bars.assign(16, 1.0);
    a.bars[0] = 6;
    a.confidence = 3;
    s_->commit_lesson(a, false, {}, "");
    // Every phase the session is in after a poll: the experiment runs while the session says Measuring, and its
    // result can only come back in a later poll.
    bool measuring = false;
    ASSERT_TRUE(poll_until(*s_, [&] {
        measuring |= s_->lesson().phase == LessonPhase::Measuring;
        return s_->lesson().phase == LessonPhase::Revealed || !s_->lesson().run_error.empty();
    })) << "the reveal never arrived";
    ASSERT_EQ(s_->lesson().run_error, "");
    EXPECT_TRUE(measuring) << "the experiment was not a job of its own";
    const demos::LessonReveal& rv = s_->lesson().reveal;
    ASSERT_EQ(rv.experiments.size(), rv.results.size());
    for (const auto& x : rv.experiments) {
        EXPECT_EQ(x.name, L.experiment);
        ASSERT_TRUE(x.scalars.count("hot_expert_ms"));
        // Measured on the GPU when the run was there, else modelled, and labelled so.
        const auto want = rv.backend() == "cuda" ? demos::lesson::Source::MeasuredGpu : demos::lesson::Source::Modeled;
        EXPECT_EQ(x.scalars.at("hot_expert_ms").source, want);
    }
    // The experiment's numbers reached the grade's inputs.
    EXPECT_GT(rv.eval("hot_expert_ms").value, 0);
    EXPECT_NE(progress_text().find("[lessons.straggler]"), std::string::npos);
}

TEST_F(SessionLesson, LeavingTheLessonWhileItMeasuresDropsTheMeasurement) {
    const int idx = index_of("straggler"), other = index_of("dispatch-bytes");
    ASSERT_GE(idx, 0);
    ASSERT_GE(other, 0);
    s_->start_lesson(idx, 0);
    demos::LessonAnswer a;
    a.bars.assign(16, 1.0);
    a.confidence = 2;
    s_->commit_lesson(a, false, {}, "");
    ASSERT_TRUE(poll_until(*s_, [&] { return s_->lesson().phase == LessonPhase::Measuring; }))
        << "phase " << int(s_->lesson().phase) << ": " << s_->lesson().run_error;
    // The student leaves while it measures: the measurement stops or finishes unseen, the new round is untouched.
    s_->start_lesson(other, 0);
    ASSERT_TRUE(poll_until(*s_, [&] { return !s_->busy(); }));
    for (int i = 0; i < 20; ++i) {
        s_->poll();
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(s_->lesson().current, other);
    EXPECT_EQ(s_->lesson().phase, LessonPhase::Predict);
    EXPECT_TRUE(s_->lesson().reveal.experiments.empty());
    EXPECT_TRUE(s_->lesson().reveal.results.empty());
    EXPECT_EQ(s_->lesson().run_error, "");
    // Nothing of the abandoned round reached the progress file.
    EXPECT_EQ(progress_text().find("straggler"), std::string::npos);
}

TEST_F(SessionLesson, ExpertTimesAreTimedInTheBackgroundForTheLoadsShown) {
    demos::Scenario sc = tiny();
    sc.hidden = 1024;  // routing alone ignores the sizes; the expert times read them (a GPU then times real FFNs)
    sc.ffn = 2816;
    sc.experts = 8;
    sc.top_k = 1;
    sc.skew = "hot:6";
    s_->set_scenario(sc);
    ASSERT_TRUE(poll_until(*s_, [&] { return !s_->busy() && s_->results().routing; }));
    const std::uint64_t routed = s_->routing_results();
    moelab_gui::RunPlan plan = s_->plan();
    plan.expert_times = true;
    s_->set_plan(plan);
    ASSERT_TRUE(poll_until(*s_, [&] { return s_->results().expert_times_current && !s_->busy(); }))
        << s_->error().message;
    EXPECT_EQ(s_->routing_results(), routed) << "switching the overlay on ran the app's runs again";
    const moelab_gui::ExpertTimes& t = *s_->results().expert_times;
    const demos::Result& r = *s_->results().loads();
    ASSERT_EQ(t.per_expert.size(), r.expert_loads.size());
    EXPECT_EQ(t.loads, r.expert_loads);
    EXPECT_EQ(t.hottest, r.hottest_expert);
    const auto want = r.backend == "cuda" ? demos::lesson::Source::MeasuredGpu : demos::lesson::Source::Modeled;
    EXPECT_EQ(t.source, want);
    for (const auto& f : t.per_expert) {
        EXPECT_GT(f.median_ms, 0);
        EXPECT_LE(f.min_ms, f.median_ms);
        EXPECT_LE(f.median_ms, f.p95_ms);
    }
    // The hot expert takes longest, though not in proportion to its tokens: its weights are read whatever the load.
    // (Measured, a small expert's time is mostly launch and weight reads, so only the model's order is exact.)
    if (t.source == demos::lesson::Source::Modeled) {
        EXPECT_GT(t.time_ratio(), 1.0);
        EXPECT_LT(t.time_ratio(), r.straggler_factor);
    } else {
        EXPECT_GT(t.time_ratio(), 0.8);
        EXPECT_LT(t.time_ratio(), r.straggler_factor * 1.5);
    }
    // An edit times them again, for the new loads.
    sc.skew = "uniform";
    s_->set_scenario(sc);
    ASSERT_TRUE(poll_until(*s_, [&] { return s_->results().expert_times_current && !s_->busy(); }));
    EXPECT_EQ(s_->results().expert_times->scenario.skew, "uniform");
}

TEST_F(SessionLesson, PresenterCountsTwoVotesAndSavesBoth) {
    const int idx = index_of("dispatch-bytes");
    ASSERT_GE(idx, 0);
    const demos::Lesson& L = s_->lesson().set.lessons[std::size_t(idx)];
    ASSERT_EQ(L.question.kind, demos::QuestionKind::Choice);
    const std::size_t n = L.question.choices.size();
    s_->start_lesson(idx, 0);
    // First vote: 4 on every choice; confidence 4.2.
    s_->commit_lesson({}, true, std::vector<int>(n, 4), "", 4.2);
    ASSERT_TRUE(poll_until(*s_, [&] { return s_->lesson().phase == LessonPhase::Hidden; })) << s_->lesson().run_error;
    const auto& P = s_->lesson();
    EXPECT_EQ(P.first.total, int(4 * n));
    EXPECT_EQ(P.first.right, 4);  // one choice is right
    EXPECT_DOUBLE_EQ(P.class_confidence, 4.2);
    // A second vote that cannot be counted is refused with the terminal's words, and changes nothing.
    s_->second_vote(std::vector<int>(n + 1, 1), "");
    EXPECT_NE(P.vote_error.find("one count per choice"), std::string::npos) << P.vote_error;
    EXPECT_FALSE(P.has_second);
    // After discussion everyone moved to the right answer.
    std::vector<int> second(n, 0);
    for (std::size_t i = 0; i < n; ++i)
        if (L.question.choices[i].key == P.grade.right_key) second[i] = int(4 * n);
    s_->second_vote(second, "");
    ASSERT_TRUE(P.has_second) << P.vote_error;
    EXPECT_EQ(P.second.right, int(4 * n));
    EXPECT_NE(demos::vote_shift(P.first, P.second).find("toward the answer"), std::string::npos);
    // The answer stays hidden until Reveal; then both votes are saved, and no student attempt.
    EXPECT_EQ(progress_text().find("dispatch-bytes"), std::string::npos);
    s_->reveal_lesson();
    EXPECT_EQ(P.phase, LessonPhase::Revealed);
    demos::Progress p = demos::Progress::load(progress_);
    ASSERT_TRUE(p.lessons.count("dispatch-bytes")) << progress_text();
    const demos::LessonProgress& lp = p.lessons.at("dispatch-bytes");
    EXPECT_EQ(lp.votes_first, 4);
    EXPECT_EQ(lp.votes_second, int(4 * n));
    EXPECT_EQ(lp.votes_total, int(4 * n));
    EXPECT_EQ(lp.attempts, 0);
    EXPECT_FALSE(p.done("dispatch-bytes"));
}

TEST_F(SessionLesson, ACancelledMeasurementIsAnErrorTheLessonCanRetry) {
    const int idx = index_of("straggler");
    ASSERT_GE(idx, 0);
    s_->start_lesson(idx, 0);
    demos::LessonAnswer a;
    a.bars.assign(16, 1.0);
    a.bars[0] = 5;
    a.confidence = 4;
    s_->commit_lesson(a, false, {}, "");
    ASSERT_TRUE(poll_until(*s_, [&] { return s_->lesson().phase == LessonPhase::Measuring; }))
        << s_->lesson().run_error;
    // Cancel (Esc) while it measures: the lesson view says why it stopped and offers Try again.
    s_->cancel();
    EXPECT_EQ(s_->lesson().run_error, "cancelled");
    ASSERT_TRUE(poll_until(*s_, [&] { return !s_->busy(); }));
    for (int i = 0; i < 20; ++i) s_->poll();
    EXPECT_EQ(s_->lesson().phase, LessonPhase::Measuring);
    EXPECT_EQ(s_->lesson().run_error, "cancelled");
    EXPECT_TRUE(s_->lesson().reveal.experiments.empty());
    // Try again: the runs and the measurement, to the reveal.
    s_->retry_lesson();
    ASSERT_TRUE(poll_until(*s_, [&] {
        return s_->lesson().phase == LessonPhase::Revealed || !s_->lesson().run_error.empty();
    }));
    EXPECT_EQ(s_->lesson().run_error, "");
    EXPECT_EQ(s_->lesson().reveal.experiments.size(), s_->lesson().reveal.results.size());
    s_->set_scenario(tiny());  // the app still edits and runs afterwards
    ASSERT_TRUE(poll_until(*s_, [&] { return !s_->busy() && s_->results().routing &&
                                             s_->results().routing->scenario == tiny(); }));
}
