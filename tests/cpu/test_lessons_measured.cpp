// The lessons' measured side without a GPU: the packing lesson grades on bytes (deterministic on the CPU), the
// load-drift experiment counts loads from the router and re-applies stale plans, and a choice key taken from the run
// (key = "run") is held to exactly one true choice on every run.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "demos/experiments.hpp"
#include "demos/lesson.hpp"
#include "demos/lesson_drift.hpp"
#include "demos/lesson_play.hpp"
#include "kernels/common/error.hpp"

namespace {

const demos::LessonSet& builtins() {
    static const demos::LessonSet set = demos::load_lessons("");
    return set;
}

demos::Lesson lesson(const std::string& id) {
    const demos::Lesson* l = builtins().find(id);
    EXPECT_NE(l, nullptr) << id;
    return l ? *l : demos::Lesson{};
}

}  // namespace

// On the CPU every strategy runs the same code, so timing noise must not decide the answer: the graded times are
// the strategies' bytes (modelled), identical from one play to the next, and skew does not change the bytes.
TEST(LessonsMeasured, PackingGradesBytesWithoutAGpuAndIsDeterministic) {
    demos::Lesson l = lesson("packing");
    ASSERT_EQ(l.experiment, "packing");
    std::vector<double> seen;
    for (int play = 0; play < 2; ++play) {
        demos::LessonReveal r;
        demos::run_lesson(l, l.scenario, l.params, "cpu", {}, &r);
        for (const char* v : {"sort_slow", "atomic_slow", "scan_slow"}) {
            demos::lesson::Number n = r.eval(v);
            EXPECT_EQ(n.source, demos::lesson::Source::Modeled) << v;
            EXPECT_DOUBLE_EQ(n.value, 1.0) << v << ": the same rows move, skewed or not";
            seen.push_back(n.value);
        }
        EXPECT_EQ(r.eval("n_slow").value, 0);
        // sort moves its keys too; every strategy moves more than no-pack's plan.
        EXPECT_GT(r.eval("packing_sort_bytes").value, r.eval("packing_atomic_bytes").value);
        EXPECT_GT(r.eval("packing_scan_bytes").value, r.eval("packing_nopack_bytes").value);
        EXPECT_EQ(r.eval("pack_sort_ms").source, demos::lesson::Source::MeasuredCpu) << "the noisy timings stay shown";
    }
    EXPECT_EQ(seen[0], seen[3]);
    // Dropping rows changes the bytes, and so the modelled times.
    demos::Scenario capped = l.scenario;
    capped.capacity_factor = 1.0;
    demos::LessonReveal r;
    demos::run_lesson(l, capped, l.params, "cpu", {}, &r);
    EXPECT_LT(r.eval("packing_sort_ms").value, r.eval("uniform.packing_sort_ms").value);
    // The experiment needs the dispatch demo's strategies.
    demos::Result bare;
    EXPECT_THROW(demos::run_experiment("packing", bare, {}), moe::Error);
}

TEST(LessonsMeasured, LoadShiftAndStalePlans) {
    EXPECT_DOUBLE_EQ(demos::load_shift({10, 10}, {20, 20}), 0.0);
    EXPECT_DOUBLE_EQ(demos::load_shift({10, 0}, {0, 10}), 1.0);
    EXPECT_DOUBLE_EQ(demos::load_shift({30, 10}, {10, 30}), 0.5);
    // A plan made for expert 0 being hot, applied to loads where expert 3 is hot: the copies no longer help.
    auto plan = demos::greedy_placement({800, 100, 100, 100}, 2, 1);
    auto stale = demos::apply_placement(plan, {100, 100, 100, 800});
    std::int64_t total = 0;
    for (auto& gpu : stale)
        for (auto& c : gpu) total += c.rows;
    EXPECT_EQ(total, 1100) << "every row of the new batch computed once";
    EXPECT_GT(demos::busiest_gpu_rows(stale), demos::busiest_gpu_rows(demos::greedy_placement({100, 100, 100, 800}, 2, 1)));
    EXPECT_EQ(demos::busiest_gpu_rows(demos::apply_placement(plan, {800, 100, 100, 100})), demos::busiest_gpu_rows(plan));
}

TEST(LessonsMeasured, DecodeLoadsMoveLessThanPrefillLoads) {
    demos::Scenario s;
    s.tokens = 4096;
    s.experts = 16;
    s.top_k = 2;
    s.skew = "zipf:0.6";
    demos::DriftWorkload w;
    auto decode = demos::drift_loads(s, w, false);
    auto prefill = demos::drift_loads(s, w, true);
    ASSERT_EQ(decode.size(), std::size_t(w.steps));
    ASSERT_EQ(prefill.size(), std::size_t(w.steps));
    for (auto* batches : {&decode, &prefill})
        for (auto& b : *batches) EXPECT_EQ(std::accumulate(b.begin(), b.end(), std::int64_t(0)), s.tokens * s.top_k);
    EXPECT_EQ(demos::drift_loads(s, w, true), prefill) << "counted from a seeded router: the same every time";
    double dshift = 0, pshift = 0;
    for (int t = 1; t < w.steps; ++t) {
        dshift += demos::load_shift(decode[std::size_t(t) - 1], decode[std::size_t(t)]);
        pshift += demos::load_shift(prefill[std::size_t(t) - 1], prefill[std::size_t(t)]);
    }
    EXPECT_LT(dshift * 3, pshift) << "decode averages over many sequences, prefill over a few prompts";
    // Many short prompts make prefill look like decode.
    w.prompts = 512;
    auto many = demos::drift_loads(s, w, true);
    double mshift = 0;
    for (int t = 1; t < w.steps; ++t) mshift += demos::load_shift(many[std::size_t(t) - 1], many[std::size_t(t)]);
    EXPECT_LT(mshift * 2, pshift);
}

TEST(LessonsMeasured, LoadDriftLessonLabelsItsNumbers) {
    demos::Lesson l = lesson("load-drift");
    demos::LessonReveal r;
    demos::run_lesson(l, l.scenario, l.params, "cpu", {}, &r);
    EXPECT_EQ(r.eval("decode_kept").source, demos::lesson::Source::MeasuredCpu);
    EXPECT_EQ(r.eval("prefill_stale_ms").source, demos::lesson::Source::Modeled);
    EXPECT_GT(r.eval("decode_kept").value, 0.8);
    EXPECT_LT(r.eval("prefill_kept").value, 0.3);
    EXPECT_GT(r.eval("prefill_stale_rows").value, r.eval("prefill_fresh_rows").value);
    std::map<std::string, double> bad = l.params;
    bad["prompts"] = 0;
    EXPECT_THROW(demos::run_experiment("load-drift", r.results[0], bad), moe::Error);
}

// key = "run": no choice is marked; the checker wants exactly one true choice on the lesson's own run as on every
// variation, and every choice needs feedback.
TEST(LessonsMeasured, KeyFromTheRunIsCheckedLikeAVariation) {
    demos::Lesson l = lesson("overlap-chunks");
    ASSERT_TRUE(l.question.key_from_run);
    for (auto& c : l.question.choices) EXPECT_FALSE(c.correct);
    EXPECT_TRUE(demos::verify_lesson(l).empty()) << ::testing::PrintToString(demos::verify_lesson(l));
    // Whichever choice the run picks is graded right, the others wrong with their feedback, on the CPU model as on a
    // GPU: here the model's answer and then a forced "c = 1" (what the H200 measured).
    demos::LessonReveal r;
    demos::run_lesson(l, l.scenario, l.params, "cpu", {}, &r);
    demos::LessonAnswer a;
    a.choice = "a";
    demos::LessonGrade g = demos::grade(l, r, a);
    EXPECT_EQ(g.correct, r.eval("best_chunks").value == 1);
    EXPECT_TRUE(g.notes.empty()) << "no marked key to disagree with";
    r.numbers[0].scalars["best_chunks"].value = 1;
    r.numbers[0].scalars["best_overlap_ms"] = r.numbers[0].scalars["serial_ms"];
    g = demos::grade(l, r, a);
    EXPECT_TRUE(g.correct);
    EXPECT_EQ(g.right_key, "a");
    a.choice = "b";
    g = demos::grade(l, r, a);
    EXPECT_FALSE(g.correct);
    EXPECT_NE(g.feedback.find("did not pay off"), std::string::npos) << g.feedback;

    // Two conditions that overlap are caught on the lesson's own run.
    demos::Lesson overlap = l;
    overlap.question.choices[1].when.text = "best_chunks >= 1";
    bool caught = false;
    for (auto& p : demos::verify_lesson(overlap)) caught = caught || p.find("exactly one must") != std::string::npos;
    EXPECT_TRUE(caught);

    // The parser: key = "run" with a marked choice, or an unknown key, is refused with its line.
    std::string text = "id = \"k\"\ntitle = \"t\"\nintro = \"i\"\n[scenario]\ntokens = 64\n[question]\nkind = \"choice\"\n"
                       "key = \"run\"\nprompt = \"p\"\n[[question.choices]]\nkey = \"a\"\ntext = \"x\"\nwhen = \"1\"\n"
                       "correct = true\n[[question.choices]]\nkey = \"b\"\ntext = \"y\"\nwhen = \"0\"\n[reveal]\n"
                       "demo = \"routing\"\n[explanation]\ntext = \"e\"\n[[try_next]]\nprompt = \"t\"\n"
                       "scenario = { tokens = 128 }\n";
    demos::Lesson out;
    std::vector<demos::LessonProblem> problems;
    EXPECT_FALSE(demos::parse_lesson(text, "k.toml", &out, &problems));
    std::string all;
    for (auto& p : problems) all += p.str() + "\n";
    EXPECT_NE(all.find("no choice may say correct = true"), std::string::npos) << all;
    EXPECT_NE(all.find("'b' (key = \"run\": every choice)"), std::string::npos) << all;
    problems.clear();
    std::string odd = text;
    odd.replace(odd.find("key = \"run\""), 11, "key = \"vote\"");
    EXPECT_FALSE(demos::parse_lesson(odd, "k.toml", &out, &problems));
    all.clear();
    for (auto& p : problems) all += p.str() + "\n";
    EXPECT_NE(all.find("k.toml:8: [question] key 'vote'"), std::string::npos) << all;
}
