// The lessons' pieces and tools: the experiments' placement and models, the terminal player from a pipe, instructors'
// lesson files (file:line for a malformed one, the rest spared), expressions, answers and progress.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "demos/experiments.hpp"
#include "demos/lesson.hpp"
#include "demos/lesson_expr.hpp"
#include "demos/lesson_numbers.hpp"
#include "demos/lesson_play.hpp"
#include "demos/lesson_progress.hpp"
#include "kernels/common/error.hpp"
#include "tests/support/lesson_support.hpp"

namespace {

using moelab_test::builtins;
using moelab_test::fresh_dir;
using moelab_test::play;
using moelab_test::read_text;
using moelab_test::shell;
using moelab_test::Shell;

}  // namespace

// ---- experiments ----------------------------------------------------------------------------------------

TEST(Experiments, GreedyPlacementSplitsHotExpertsOverGpus) {
    // Two hot experts among eight, four GPUs, contiguous placement puts both on GPU 0.
    std::vector<std::int64_t> loads{800, 600, 100, 100, 100, 100, 100, 100};
    auto before = demos::contiguous_placement(loads, 4);
    EXPECT_EQ(demos::busiest_gpu_rows(before), 1400);
    auto none = demos::greedy_placement(loads, 4, 0);
    EXPECT_EQ(demos::busiest_gpu_rows(none), 800);  // placement alone: the hottest expert is a GPU of its own
    auto after = demos::greedy_placement(loads, 4, 2);
    // 800 → 2×400; then 600 has the most per copy → 2×300.
    EXPECT_EQ(demos::busiest_gpu_rows(after), 500);
    std::int64_t total = 0;
    int copies_of_0 = 0;
    for (auto& gpu : after) {
        std::set<int> seen;
        for (auto& c : gpu) {
            total += c.rows;
            EXPECT_TRUE(seen.insert(c.expert).second) << "two copies of one expert on one GPU";
            copies_of_0 += c.expert == 0;
        }
    }
    EXPECT_EQ(total, 2000) << "every row computed exactly once";
    EXPECT_EQ(copies_of_0, 2);
    // An expert never gets more copies than there are GPUs.
    auto capped = demos::greedy_placement({1000, 1}, 2, 10);
    int zero = 0;
    for (auto& gpu : capped)
        for (auto& c : gpu) zero += c.expert == 0;
    EXPECT_EQ(zero, 2);
}

// The reference FFN's fp32 sums may group rows differently once a segment is split, so a copy's output may differ
// from the unsplit expert's by one bf16 rounding, never more.
TEST(Experiments, ReplicatedExpertsComputeTheSameOutputs) {
    const int E = 4, d = 64, F = 96;
    std::vector<std::int32_t> counts{37, 5, 0, 22};
    const std::int64_t rows = 64;
    std::vector<moe::bf16_t> x(std::size_t(rows) * d), w1(std::size_t(E) * 2 * F * d), w2(std::size_t(E) * d * F);
    moe::route::make_x(7, rows, d, x.data());
    moe::experts::make_w1(8, E, F, d, w1.data());
    moe::experts::make_w2(9, E, d, F, w2.data());
    std::vector<std::int32_t> off{0, 37, 42, 42, 64};
    std::vector<moe::bf16_t> plain(std::size_t(rows) * d);
    moe::experts::ffn(x.data(), nullptr, nullptr, counts.data(), off.data(), E, d, F, w1.data(), w2.data(),
                      plain.data(), 1);
    std::vector<std::int64_t> loads(counts.begin(), counts.end());
    auto placement = demos::greedy_placement(loads, 3, 3);
    std::vector<moe::bf16_t> rep = demos::replicated_ffn_cpu(x, counts, placement, d, F, w1, w2);
    ASSERT_EQ(rep.size(), plain.size());
    std::size_t differ = 0;
    for (std::size_t i = 0; i < rep.size(); ++i) {
        ASSERT_LE(std::abs(int(rep[i]) - int(plain[i])), 1) << "element " << i << ": more than one bf16 rounding";
        differ += rep[i] != plain[i];
    }
    EXPECT_LT(differ, rep.size() / 50) << "copies must compute the same rows";
}

TEST(Experiments, ModelsWithoutAGpuAreLabelledModelled) {
    EXPECT_DOUBLE_EQ(demos::chunked_ms(1.0, 4.0, 1), 5.0);
    EXPECT_DOUBLE_EQ(demos::chunked_ms(0.5, 4.0, 4), 0.5 + 3 * 1.0 + 1.0);  // GEMM-bound chunks
    EXPECT_DOUBLE_EQ(demos::chunked_ms(2.0, 4.0, 4), 2.0 + 3 * 2.0 + 1.0);  // link-bound chunks
    // Util grows with message size and stays below 1.
    double prev = 0;
    for (double b = 4096; b < 1e9; b *= 8) {
        double t = demos::modeled_a2a_ms(b, 2);
        double util = b / 2 / (t * 1e-3) / 280e9;
        EXPECT_GT(util, prev);
        EXPECT_LT(util, 1.0);
        prev = util;
    }
    const demos::Lesson* l = builtins().find("decode-prefill");
    ASSERT_NE(l, nullptr);
    demos::LessonReveal r;
    demos::run_lesson(*l, l->scenario, l->params, "cpu", {}, &r);
    ASSERT_EQ(r.experiments.size(), 2u);
    EXPECT_EQ(r.eval("ffn_ms").source, demos::lesson::Source::Modeled);
    EXPECT_EQ(r.eval("mean_load").source, demos::lesson::Source::MeasuredCpu);
    EXPECT_GT(r.eval("prefill.ffn_ms").value, r.eval("ffn_ms").value);
    ASSERT_FALSE(r.experiments[0].curve.empty());
    EXPECT_THROW(demos::run_experiment("no-such", r.results[0], {}), moe::Error);
}

// ---- the terminal player, from a pipe ---------------------------------------------------------------------

TEST(LessonPlayer, PipedRightAnswerRevealsRealNumbers) {
    Shell r = play("dispatch-bytes", "b\\n4\\n");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("Right"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("CPU reference"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("k=2 → 32 MiB"), std::string::npos) << r.out;  // 2·4096·k·1024·2
    EXPECT_NE(r.out.find("k=4 → 64 MiB"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("[modeled]"), std::string::npos);
    EXPECT_NE(r.out.find("moelab lesson dispatch-bytes --try 1"), std::string::npos);
}

TEST(LessonPlayer, WrongConfidentAnswerNamesTheMisconception) {
    Shell r = play("straggler", "1*16\\n5\\n");  // flat bars: "sparse means balanced"
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("Not this time"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Sparse FLOPs don't mean low latency"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("confident miss"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("e0 "), std::string::npos) << "the measured bars with the ghost";
}

TEST(LessonPlayer, BadInputIsAskedAgain) {
    Shell r = play("capacity", "lots\\n250\\n24\\n0\\nsure\\n3\\n");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("'lots' is not a number"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("250 is out of range"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("0 is out of range; type 1 (a guess) to 5"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("'sure' is not a whole number"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Right"), std::string::npos) << r.out;
}

TEST(LessonPlayer, TimelineAndVariationPlayToTheEnd) {
    Shell r = play("pingpong", "2.0\\n2\\n");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("Right"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("attention "), std::string::npos) << "the text timeline";
    r = play("pingpong", "2.0\\n2\\n", "--try 2");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("Variation 2"), std::string::npos) << r.out;
}

TEST(LessonPlayer, EndOfInputExitsTwo) {
    Shell r = play("dispatch-bytes", "b\\n");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("stdin ended before an answer was given"), std::string::npos) << r.out;
    r = play("no-such-lesson", "");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("straggler"), std::string::npos) << "lists the lessons there are";
}

TEST(LessonPlayer, ProgressIsRecordedAndListed) {
    std::string dir = fresh_dir("progress");
    std::string bin = MOELAB_BIN;
    Shell r = shell("cd " + dir + " && printf 'c\\n4\\n' | " + bin + " lesson decode-prefill --progress p.toml");
    ASSERT_EQ(r.rc, 0) << r.out;
    demos::Progress p = demos::Progress::load(dir + "/p.toml");
    ASSERT_TRUE(p.done("decode-prefill"));
    EXPECT_EQ(p.lessons["decode-prefill"].attempts, 1);
    EXPECT_TRUE(p.lessons["decode-prefill"].last_correct);
    EXPECT_EQ(p.lessons["decode-prefill"].last_confidence, 4);
    r = shell("cd " + dir + " && " + bin + " lessons --progress p.toml");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("✓ 1×"), std::string::npos) << r.out;
    for (auto& e : std::filesystem::directory_iterator(dir))
        EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << "left a temp file behind";
}

// ---- instructors' files -----------------------------------------------------------------------------------

TEST(LessonFiles, MalformedFilesGiveFileAndLineAndSpareTheRest) {
    std::string dir = fresh_dir("bad");
    // A good lesson of the instructor's own (a copy of a built-in one under a new id).
    std::string good = read_text(std::string(MOELAB_SOURCE_DIR) + "/lessons/09-capacity.toml");
    std::string::size_type at = good.find("id = \"capacity\"");
    ASSERT_NE(at, std::string::npos);
    good.replace(at, 15, "id = \"my-capacity\"");
    std::ofstream(dir + "/a-good.toml") << good;
    // Malformed TOML on line 3.
    std::ofstream(dir + "/b-syntax.toml") << "id = \"x\"\ntitle = \"x\"\nintro = \"unterminated\n";
    // Well-formed TOML with a typo'd key on line 4 and a misplaced top-level key on line 6.
    std::ofstream(dir + "/c-typo.toml") << "id = \"typo\"\ntitle = \"t\"\nintro = \"i\"\nconcpet = 3\n[scenario]\n"
                                           "checks = [\"1\"]\ntokens = 64\n";
    // An expression naming a number that does not exist, on line 13.
    std::string bad_name = read_text(std::string(MOELAB_SOURCE_DIR) + "/lessons/09-capacity.toml");
    bad_name.replace(bad_name.find("id = \"capacity\""), 15, "id = \"bad-name\"");
    bad_name.replace(bad_name.find("answer = \"dropped_pct\""), 22, "answer = \"droped_pct\"");
    std::ofstream(dir + "/d-name.toml") << bad_name;
    int name_line = 1;
    for (std::size_t i = 0; i < bad_name.find("answer = \"droped_pct\""); ++i) name_line += bad_name[i] == '\n';

    demos::LessonSet set = demos::load_lessons(dir);
    EXPECT_NE(set.find("my-capacity"), nullptr) << "the good file still loads";
    EXPECT_NE(set.find("straggler"), nullptr) << "the built-ins still load";
    EXPECT_EQ(set.find("typo"), nullptr);
    std::string all;
    for (auto& p : set.problems) all += p.str() + "\n";
    EXPECT_NE(all.find(dir + "/b-syntax.toml:3: malformed TOML"), std::string::npos) << all;
    EXPECT_NE(all.find(dir + "/c-typo.toml:4: unknown key 'concpet'"), std::string::npos) << all;
    EXPECT_NE(all.find(dir + "/c-typo.toml:6: [scenario] unknown key 'checks'"), std::string::npos) << all;
    EXPECT_NE(all.find("must come before the first [table] header"), std::string::npos) << all;
    EXPECT_NE(all.find(dir + "/d-name.toml:" + std::to_string(name_line) + ": [question] answer: unknown name "
                                                                            "'droped_pct'"),
              std::string::npos)
        << all;

    // The CLI: check reports every file and exits 2; the list still shows the good lessons.
    Shell r = shell(std::string(MOELAB_BIN) + " lessons check --lessons-dir " + dir);
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("b-syntax.toml:3:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("c-typo.toml:4:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("d-name.toml:"), std::string::npos) << r.out;
    r = shell(std::string(MOELAB_BIN) + " lessons --lessons-dir " + dir + " --progress " + dir + "/p.toml");
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("my-capacity"), std::string::npos) << r.out;
    r = shell("printf '24.7\\n3\\n' | " + std::string(MOELAB_BIN) + " lesson my-capacity --no-progress --lessons-dir " +
              dir);
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("Right"), std::string::npos) << r.out;
}

TEST(LessonFiles, AFolderReplacesABuiltInById) {
    std::string dir = fresh_dir("override");
    std::string text = read_text(std::string(MOELAB_SOURCE_DIR) + "/lessons/01-straggler.toml");
    text.replace(text.find("title = \""), 9, "title = \"Instructor's version: ");
    std::ofstream(dir + "/straggler.toml") << text;
    demos::LessonSet set = demos::load_lessons(dir);
    EXPECT_TRUE(set.problems.empty());
    const demos::Lesson* l = set.find("straggler");
    ASSERT_NE(l, nullptr);
    EXPECT_EQ(l->title.rfind("Instructor's version", 0), 0u);
    EXPECT_EQ(l->source, dir + "/straggler.toml");
    EXPECT_EQ(set.lessons.size(), builtins().lessons.size());
    // The repository's own folder is byte-identical to the built-ins: nothing is replaced, nothing reported.
    demos::LessonSet same = demos::load_lessons(std::string(MOELAB_SOURCE_DIR) + "/lessons");
    EXPECT_TRUE(same.problems.empty());
    for (auto& x : same.lessons) EXPECT_EQ(x.source.rfind("built-in:", 0), 0u) << x.id;
}

TEST(LessonFiles, ReadmeListsEveryNumber) {
    std::string readme = read_text(std::string(MOELAB_SOURCE_DIR) + "/lessons/README.md");
    for (auto& m : demos::lesson::metric_catalog())
        EXPECT_NE(readme.find(std::string("| `") + m.name + "` |"), std::string::npos) << m.name;
    for (auto& m : demos::experiment_metrics())
        EXPECT_NE(readme.find(std::string("| `") + m.info.name + "` |"), std::string::npos) << m.info.name;
    for (auto& l : builtins().lessons) EXPECT_NE(readme.find("`" + l.id + "`"), std::string::npos) << l.id;
}

// ---- the small pieces -------------------------------------------------------------------------------------

TEST(LessonExpr, PrecedenceNamesAndErrors) {
    using demos::lesson::Expr;
    auto lookup = [](const std::string& n) -> std::optional<double> {
        if (n == "a") return 2.0;
        if (n == "run.b") return 3.0;
        return std::nullopt;
    };
    EXPECT_DOUBLE_EQ(Expr::parse("1 + 2 * 3").eval(lookup), 7);
    EXPECT_DOUBLE_EQ(Expr::parse("-(1 + 2) * a").eval(lookup), -6);
    EXPECT_DOUBLE_EQ(Expr::parse("a < 3 && run.b >= 3").eval(lookup), 1);
    EXPECT_DOUBLE_EQ(Expr::parse("!(a == 2) || a != 2").eval(lookup), 0);
    EXPECT_DOUBLE_EQ(Expr::parse("max(1, a, run.b) + min(4, 5) + abs(-1) + ceil(1.2) + pow(2, 3)").eval(lookup), 18);
    EXPECT_DOUBLE_EQ(Expr::parse("1e3 / 4").eval(lookup), 250);
    EXPECT_EQ(Expr::parse("a + run.b * a").names(), (std::vector<std::string>{"a", "run.b"}));
    try {
        Expr::parse("a + * 2");
        ADD_FAILURE() << "no error";
    } catch (const moe::Error& e) {
        EXPECT_NE(std::string(e.what()).find("column 5"), std::string::npos) << e.what();
    }
    EXPECT_THROW(Expr::parse("(a + 1"), moe::Error);
    EXPECT_THROW(Expr::parse("a b"), moe::Error);
    EXPECT_THROW(Expr::parse("zzz").eval(lookup), moe::Error);
    EXPECT_THROW(Expr::parse("nosuch(1)").eval(lookup), moe::Error);
}

TEST(LessonExpr, TemplatesFillAndFormat) {
    using demos::lesson::format_number;
    EXPECT_EQ(format_number(1268), "1268");
    EXPECT_EQ(format_number(4.953125), "4.95");
    EXPECT_EQ(format_number(4.953125, 1), "5.0");
    EXPECT_EQ(format_number(0.0419), "0.0419");
    auto v = [](const demos::lesson::Expr& e) { return e.text() == "x" ? 2.5 : 10.0; };
    EXPECT_EQ(demos::lesson::fill_template("x={x} y={y:1} {{literal}}", v), "x=2.5 y=10.0 {literal}");
    EXPECT_THROW(demos::lesson::fill_template("{x", v), moe::Error);
    EXPECT_THROW(demos::lesson::fill_template("x}", v), moe::Error);
}

TEST(LessonAnswers, ParsingAndClassSuggestion) {
    const demos::Lesson* l = builtins().find("straggler");
    ASSERT_NE(l, nullptr);
    demos::LessonAnswer a;
    EXPECT_EQ(demos::parse_answer(l->question, l->scenario, "1260, 190*15", &a), "");
    ASSERT_EQ(a.bars.size(), 16u);
    EXPECT_EQ(a.bars[0], 1260);
    EXPECT_EQ(a.bars[15], 190);
    EXPECT_NE(demos::parse_answer(l->question, l->scenario, "1,2,3", &a).find("that is 3 bars"), std::string::npos);
    EXPECT_NE(demos::parse_answer(l->question, l->scenario, "0*16", &a), "");
    int c = 0;
    EXPECT_EQ(demos::parse_confidence(" 5 ", &c), "");
    EXPECT_EQ(c, 5);
    EXPECT_NE(demos::parse_confidence("6", &c), "");
    EXPECT_NE(demos::parse_confidence("2.5", &c), "");
    const demos::Lesson* d = builtins().find("dispatch-bytes");
    EXPECT_EQ(demos::parse_answer(d->question, d->scenario, "B)", &a), "");
    EXPECT_EQ(a.choice, "b");
    EXPECT_NE(demos::parse_answer(d->question, d->scenario, "e", &a), "");

    EXPECT_NE(demos::class_suggestion(3, 10).find("re-teach"), std::string::npos);
    EXPECT_NE(demos::class_suggestion(5, 10).find("neighbour"), std::string::npos);
    EXPECT_NE(demos::class_suggestion(7, 10).find("neighbour"), std::string::npos);
    EXPECT_NE(demos::class_suggestion(8, 10).find("move on"), std::string::npos);
}

TEST(LessonProgress, ConfidentMissComesBackAsAVariationAndWhyIsSaved) {
    std::string dir = fresh_dir("retest");
    std::string bin = MOELAB_BIN;
    // dispatch-bytes: 'c' (quadruples) is wrong; confidence 5 makes it a confident miss.
    Shell r = shell("cd " + dir + " && printf 'c\\n5\\nk appears once, not twice\\n' | " + bin +
                    " lesson dispatch-bytes --progress p.toml");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("comes back later as a variation"), std::string::npos) << r.out;
    demos::Progress p = demos::Progress::load(dir + "/p.toml");
    const demos::LessonProgress& lp = p.lessons["dispatch-bytes"];
    EXPECT_TRUE(lp.confident_miss);
    EXPECT_EQ(lp.retest_try, 1);
    EXPECT_EQ(lp.why, "k appears once, not twice");
    r = shell("cd " + dir + " && " + bin + " lessons --progress p.toml");
    EXPECT_NE(r.out.find("! 1×"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("re-test: moelab lesson dispatch-bytes --try 1"), std::string::npos) << r.out;
    // The re-test, answered right: the mark clears.
    r = shell("cd " + dir + " && printf 'b\\n4\\n' | " + bin + " lesson dispatch-bytes --try 1 --progress p.toml");
    ASSERT_EQ(r.rc, 0) << r.out;
    p = demos::Progress::load(dir + "/p.toml");
    EXPECT_FALSE(p.lessons["dispatch-bytes"].confident_miss);
    EXPECT_EQ(p.lessons["dispatch-bytes"].retest_try, 0);
    EXPECT_EQ(p.lessons["dispatch-bytes"].why, "k appears once, not twice") << "a skipped why keeps the last one";
    // Presenter votes round-trip.
    p.record_votes("dispatch-bytes", 4, 9, 12);
    p.save(dir + "/p.toml");
    demos::Progress q = demos::Progress::load(dir + "/p.toml");
    EXPECT_EQ(q.lessons["dispatch-bytes"].votes_first, 4);
    EXPECT_EQ(q.lessons["dispatch-bytes"].votes_second, 9);
    EXPECT_EQ(q.lessons["dispatch-bytes"].votes_total, 12);
}

// Presenter mode in the terminal: two votes, the class's confidence, the shift before the answer, votes saved.
TEST(LessonPlayer, ClassVotesTwiceAndSeesTheShift) {
    std::string dir = fresh_dir("class");
    Shell r = shell("cd " + dir + " && printf '6,3,1,0\\n4.5\\nx\\n1,9,0,0\\n' | " + std::string(MOELAB_BIN) +
                    " lesson dispatch-bytes --class --progress p.toml");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("First vote: 3 of 10 right, class confidence 4.5/5"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("re-teach"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("confident class that is mostly wrong"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("'x' is not a number"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("right: 3 of 10 (30%) → 9 of 10 (90%), +60 points"), std::string::npos) << r.out;
    // The answer comes only after both votes.
    EXPECT_GT(r.out.find("The engine:"), r.out.find("+60 points")) << r.out;
    EXPECT_NE(r.out.find("The most popular wrong answer, a)"), std::string::npos) << r.out;
    demos::Progress p = demos::Progress::load(dir + "/p.toml");
    EXPECT_EQ(p.lessons["dispatch-bytes"].votes_first, 3);
    EXPECT_EQ(p.lessons["dispatch-bytes"].votes_second, 9);
    EXPECT_EQ(p.lessons["dispatch-bytes"].attempts, 0) << "a class tally is not a student's attempt";
    // A numeric question counts the answers given against the tolerance.
    r = shell("printf '24,25,80,3\\n2\\n\\n' | " + std::string(MOELAB_BIN) + " lesson capacity --class --no-progress");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("First vote: 2 of 4 right"), std::string::npos) << r.out;
}

TEST(LessonProgress, AtomicSaveRoundTrips) {
    std::string dir = fresh_dir("prog");
    std::string path = dir + "/sub/progress.toml";
    demos::Progress p;
    p.record("straggler", false, 0.25, 5, "1*16");
    p.record("straggler", true, 1.0, 4, "1260,190*15");
    p.save(path);
    demos::Progress q = demos::Progress::load(path);
    ASSERT_TRUE(q.done("straggler"));
    EXPECT_FALSE(q.done("capacity"));
    const demos::LessonProgress& s = q.lessons["straggler"];
    EXPECT_EQ(s.attempts, 2);
    EXPECT_EQ(s.correct, 1);
    EXPECT_TRUE(s.last_correct);
    EXPECT_DOUBLE_EQ(s.best_score, 1.0);
    EXPECT_EQ(s.last_answer, "1260,190*15");
    std::ofstream(path) << "[lessons\n";
    EXPECT_THROW(demos::Progress::load(path), moe::Error);
}
