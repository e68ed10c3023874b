// The lessons against the engine: the built-in set loads clean with a lesson per concept, every lesson's answer key
// is what the CPU reference computes and grades fairly, and the checker catches a lesson that does not.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "demos/lesson.hpp"
#include "demos/lesson_expr.hpp"
#include "demos/lesson_play.hpp"
#include "tests/support/lesson_support.hpp"

namespace {

using moelab_test::builtins;
using moelab_test::fresh_dir;
using moelab_test::play;
using moelab_test::read_text;
using moelab_test::Shell;

}  // namespace

// ---- the set ----------------------------------------------------------------------------------------------

TEST(Lessons, BuiltInSetLoadsCleanWithOneLessonPerConcept) {
    const demos::LessonSet& set = builtins();
    for (auto& p : set.problems) ADD_FAILURE() << p.str();
    ASSERT_GE(set.lessons.size(), 15u);
    std::set<int> concepts;
    std::set<std::string> kinds;
    for (auto& l : set.lessons) {
        concepts.insert(l.concept_number);
        kinds.insert(demos::question_kind_name(l.question.kind));
        EXPECT_EQ(l.source.rfind("built-in:", 0), 0u) << l.id;
        EXPECT_FALSE(l.try_next.empty()) << l.id << " has no try-next variation";
    }
    for (int c = 1; c <= 15; ++c) EXPECT_TRUE(concepts.count(c)) << "no lesson for concept " << c;
    for (const char* k : {"choice", "numeric", "slider", "bars", "timeline"})
        EXPECT_TRUE(kinds.count(k)) << "no lesson asks a " << k << " question";
    // The concept page's own example, exactly.
    const demos::Lesson* s = set.find("straggler");
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->scenario.experts, 16);
    EXPECT_EQ(s->scenario.tokens, 4096);
    EXPECT_EQ(s->scenario.top_k, 1);
    EXPECT_EQ(s->scenario.skew, "hot:6.667");
}

// ---- truthfulness: one test per lesson, so a drifting lesson names itself ----------------------------------

class LessonTruth : public ::testing::TestWithParam<std::string> {};

// The grader on one play (the lesson or a variation): a choice question has exactly one choice whose condition
// holds, that one grades right and every other wrong with its feedback; a numeric one grades right across the whole
// band and wrong, with a named misconception, just past it and far from it.
static void expect_fair_grading(const demos::Lesson& l, const demos::Scenario& scenario,
                         const std::map<std::string, double>& params, const std::string& what, bool main) {
    demos::LessonReveal r;
    demos::run_lesson(l, scenario, params, "cpu", {}, &r);
    EXPECT_EQ(r.backend(), "cpu");
    demos::LessonAnswer a;
    a.confidence = 3;
    const demos::LessonQuestion& q = l.question;
    if (q.kind == demos::QuestionKind::Choice) {
        int right = 0;
        for (auto& c : q.choices) {
            const bool holds = r.eval(c.when.text).value != 0;
            if (main && !q.key_from_run) {
                EXPECT_EQ(holds, c.correct) << what << " choice " << c.key << ": " << c.when.text;
            }
            a.choice = c.key;
            demos::LessonGrade g = demos::grade(l, r, a);
            EXPECT_EQ(g.correct, holds) << what << " choice " << c.key;
            if (!holds && (!c.correct || q.key_from_run)) {
                EXPECT_FALSE(g.feedback.empty()) << what << " choice " << c.key << " has no feedback";
                EXPECT_EQ(g.feedback.find('{'), std::string::npos) << what << ": " << g.feedback;
            }
            right += holds;
        }
        EXPECT_EQ(right, 1) << what;
    } else if (q.kind == demos::QuestionKind::Bars) {
        a.bars = r.numbers[0].vectors.at(q.answer.text);
        EXPECT_TRUE(demos::grade(l, r, a).correct) << what << ": the measured bars themselves must score right";
    } else {
        const double truth = r.eval(q.answer.text).value;
        const double tol = std::max(q.tolerance, q.rel_tolerance * std::fabs(truth));
        // The whole band grades right, and just past it wrong with a named misconception.
        for (double f : {-0.99, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 0.99}) {
            a.value = truth + f * tol;
            if (q.max > q.min && (a.value < q.min || a.value > q.max)) continue;
            demos::LessonGrade g = demos::grade(l, r, a);
            EXPECT_TRUE(g.correct) << what << " at " << a.value;
            EXPECT_DOUBLE_EQ(g.score, 1.0) << what;
        }
        for (double f : {-1.05, 1.05, -3.0, 3.0}) {
            a.value = truth + f * tol;
            if (q.max > q.min && (a.value < q.min || a.value > q.max)) continue;
            demos::LessonGrade g = demos::grade(l, r, a);
            EXPECT_FALSE(g.correct) << what << " at " << a.value;
            EXPECT_FALSE(g.feedback.empty()) << what;
            if (!main) continue;  // variations may leave far regions to the generic "too high"
            EXPECT_TRUE(g.feedback.rfind("Too low:", 0) == std::string::npos &&
                        g.feedback.rfind("Too high:", 0) == std::string::npos)
                << what << " at " << a.value << ": a wrong region without a named misconception";
        }
    }
}

TEST_P(LessonTruth, AnswerKeyIsWhatTheEngineComputes) {
    const demos::Lesson* l = builtins().find(GetParam());
    ASSERT_NE(l, nullptr);
    for (auto& p : demos::verify_lesson(*l)) ADD_FAILURE() << p;
    // And spelled out for the grader, on the CPU reference: the lesson itself and every try-next variation.
    expect_fair_grading(*l, l->scenario, l->params, l->id, true);
    for (int i = 1; i <= int(l->try_next.size()); ++i) {
        demos::Scenario s;
        std::map<std::string, double> params;
        demos::variation(*l, i, &s, &params);
        expect_fair_grading(*l, s, params, l->id + " --try " + std::to_string(i), false);
    }
}

// Slide-ready (PEDAGOGY.md): intro + prompt ≤ 60 words, filled from the inputs; the explanation opens with ≤ 80.
TEST_P(LessonTruth, TextFitsOnASlide) {
    const demos::Lesson* l = builtins().find(GetParam());
    ASSERT_NE(l, nullptr);
    std::string intro = demos::fill_before(*l, l->scenario, l->params, l->intro);
    std::string prompt = demos::fill_before(*l, l->scenario, l->params, l->question.prompt);
    EXPECT_LE(demos::word_count(intro) + demos::word_count(prompt), demos::kMaxBeforeWords) << intro << prompt;
    EXPECT_EQ(intro.find('{'), std::string::npos) << intro;
    demos::LessonReveal r;
    demos::run_lesson(*l, l->scenario, l->params, "cpu", {}, &r);
    std::string opening = demos::explanation_opening(r.fill(l->explanation));
    EXPECT_LE(demos::word_count(opening), demos::kMaxOpeningWords) << opening;
    EXPECT_FALSE(opening.empty());
    // Choices state outcomes; their text is filled from inputs only and says nothing the run would.
    for (auto& c : l->question.choices) EXPECT_LE(demos::word_count(c.text), 14) << l->id << " " << c.key;
    // A timed number shows its noise: every X_ms an experiment gives has X_min_ms and X_p95_ms.
    for (auto& x : r.experiments)
        for (auto& t : x.timings) {
            EXPECT_LE(t.min_ms, t.median_ms) << t.name;
            EXPECT_LE(t.median_ms, t.p95_ms) << t.name;
            std::string base = t.name.substr(0, t.name.size() - 3);
            EXPECT_TRUE(x.scalars.count(base + "_min_ms")) << t.name;
            EXPECT_TRUE(x.scalars.count(base + "_p95_ms")) << t.name;
        }
}

// Every lesson plays to the end from a pipe, names where it ran, and keeps the method's note for after the reveal.
TEST_P(LessonTruth, PlaysFromAPipe) {
    const demos::Lesson* l = builtins().find(GetParam());
    ASSERT_NE(l, nullptr);
    const demos::LessonQuestion& q = l->question;
    std::string answer;
    if (q.kind == demos::QuestionKind::Choice)
        answer = q.choices.front().key;
    else if (q.kind == demos::QuestionKind::Bars)
        answer = "1*" + std::to_string(demos::bars_count(q, l->scenario));
    else
        answer = demos::lesson::format_number(q.max > q.min ? q.min : 1);
    Shell r = play(l->id, answer + "\\n5\\nbecause the busiest one sets the pace\\n", "--backend cpu");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("Ran on: the CPU reference"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("The engine:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Why? In one line"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find('{'), std::string::npos) << "an unfilled placeholder:\n" << r.out;
    if (!l->note.empty()) {
        std::size_t note_at = r.out.find("How this was measured");
        ASSERT_NE(note_at, std::string::npos) << r.out;
        EXPECT_GT(note_at, r.out.find("Reveal")) << "the note shows after the reveal";
    }
}

std::vector<std::string> lesson_ids() {
    std::vector<std::string> ids;
    for (auto& l : builtins().lessons) ids.push_back(l.id);
    return ids;
}

INSTANTIATE_TEST_SUITE_P(BuiltIn, LessonTruth, ::testing::ValuesIn(lesson_ids()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                             std::string n = i.param;
                             for (auto& c : n)
                                 if (c == '-') c = '_';
                             return n;
                         });

// A key that contradicts the engine is caught: flip the straggler lesson's expectation.
TEST(Lessons, VerifyCatchesAWrongKey) {
    demos::Lesson l = *builtins().find("dispatch-bytes");
    for (auto& c : l.question.choices) c.correct = c.key == "c";  // "quadruples"
    auto problems = demos::verify_lesson(l);
    ASSERT_GE(problems.size(), 2u);
    EXPECT_NE(problems[0].find("built-in:02-dispatch-bytes.toml:"), std::string::npos) << problems[0];

    demos::Lesson s = *builtins().find("straggler");
    s.question.expect_lo = 6.0;
    s.question.expect_hi = 7.0;
    problems = demos::verify_lesson(s);
    ASSERT_FALSE(problems.empty());
    EXPECT_NE(problems[0].find("expects the answer"), std::string::npos) << problems[0];
}

// The checker holds a lesson to fair grading: a misconception inside the band graded right, a variation that
// no choice answers, and text too long for a slide are all reported.
TEST(Lessons, VerifyCatchesUnfairGrading) {
    demos::Lesson p = *builtins().find("pingpong");
    p.question.tolerance = 0.25;  // 1.8 ms, "the pipeline filling", would be graded right
    auto problems = demos::verify_lesson(p);
    bool band = false;
    for (auto& x : problems) band = band || x.find("inside the band graded right") != std::string::npos;
    EXPECT_TRUE(band) << ::testing::PrintToString(problems);

    demos::Lesson m = *builtins().find("more-experts");
    m.question.choices[0].when.text = "ratio >= 0.35 && ratio < 0.7";  // the old gap between choices
    m.question.choices[3].when.text = "ratio >= 1.03 && ratio <= 1.05";  // the 100 GB/s variation's 1.01 falls out
    problems = demos::verify_lesson(m);
    bool gap = false;
    for (auto& x : problems) gap = gap || x.find("choices hold on the engine's numbers") != std::string::npos;
    EXPECT_TRUE(gap) << ::testing::PrintToString(problems);

    demos::Lesson s = *builtins().find("capacity");
    s.intro += " And a great many more words that nobody reads before they commit, because slides are short.";
    problems = demos::verify_lesson(s);
    bool words = false;
    for (auto& x : problems) words = words || x.find("a student reads at most 60") != std::string::npos;
    EXPECT_TRUE(words) << ::testing::PrintToString(problems);
}

TEST(Lessons, TextBeforeTheRevealMayNameOnlyInputs) {
    std::string text = read_text(std::string(MOELAB_SOURCE_DIR) + "/lessons/09-capacity.toml");
    text.replace(text.find("What percentage of all"), 22, "With {dropped} dropped, what percentage of all");
    demos::Lesson l;
    std::vector<demos::LessonProblem> problems;
    EXPECT_FALSE(demos::parse_lesson(text, "x.toml", &l, &problems));
    ASSERT_FALSE(problems.empty());
    EXPECT_NE(problems[0].message.find("'dropped' is not known before the run"), std::string::npos)
        << problems[0].str();
}
