// Issue 12, hostile input: one regression test per item. Each drives the real binary (or the parser it reaches)
// with the input that crashed, hung or misled before, and expects a clear message, the documented exit code
// (2 for bad input), and no partial file left behind.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "demos/atomic_file.hpp"
#include "demos/lesson.hpp"
#include "demos/lesson_check.hpp"
#include "demos/lesson_expr.hpp"
#include "demos/lesson_play.hpp"
#include "demos/lesson_progress.hpp"
#include "demos/params.hpp"
#include "demos/scenario.hpp"
#include "kernels/common/error.hpp"
#include "tests/support/scratch.hpp"
#include "tests/support/test_support.hpp"

namespace fs = std::filesystem;

namespace {

moelab_test::Shell moelab(const std::string& args) {
    // `timeout` turns a hang into a failure instead of a stuck suite (exit 124).
    return moelab_test::shell("timeout 60 " + std::string(MOELAB_BIN) + " " + args);
}

// A fresh folder per test.
std::string fresh_dir(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("moelab_hostile_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    moelab_test::scratch(d.parent_path().string());
    return d.string();
}

std::string write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
    return path;
}

std::string repeat(const std::string& s, std::size_t n) {
    std::string out;
    out.reserve(s.size() * n);
    for (std::size_t i = 0; i < n; ++i) out += s;
    return out;
}

std::string deep_header() { return "[" + repeat("a.", 39999) + "a]\nx = 1\n"; }
std::string deep_dotted() { return repeat("a.", 39999) + "a = 1\n"; }
std::string deep_inline() { return "x = " + repeat("[", 5000) + repeat("]", 5000) + "\n"; }

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// A valid built-in lesson with a numeric answer, under a new id and with its answer expression replaced;
// `*line` gets the answer's line and `*experts` the lesson's E.
std::string lesson_with(const std::string& id, const std::string& answer, int* line = nullptr, int* experts = nullptr) {
    std::vector<fs::path> files;
    for (auto& e : fs::directory_iterator(std::string(MOELAB_SOURCE_DIR) + "/lessons"))
        if (e.path().extension() == ".toml") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
        std::ifstream in(f);
        std::string text, l, out;
        int n = 0, at = 0;
        bool numeric = false;
        while (std::getline(in, l)) {
            ++n;
            numeric = numeric || l == "kind = \"numeric\"";
            if (l.rfind("id = \"", 0) == 0) l = "id = \"" + id + "\"";
            if (l.rfind("answer = \"", 0) == 0 && at == 0) {
                l = "answer = \"" + answer + "\"";
                at = n;
            }
            out += l + "\n";
        }
        if (!numeric || at == 0) continue;
        // Only a lesson that is valid as shipped, so the one problem found is the one this test plants.
        std::ifstream again(f);
        std::stringstream orig;
        orig << again.rdbuf();
        demos::Lesson les;
        std::vector<demos::LessonProblem> problems;
        if (!demos::parse_lesson_checked(orig.str(), "x", &les, &problems)) continue;
        if (line) *line = at;
        if (experts) *experts = les.scenario.experts;
        return out;
    }
    ADD_FAILURE() << "no built-in lesson with a numeric answer";
    return "";
}

}  // namespace

// ---- Crashes ----------------------------------------------------------------------------------------------

TEST(Hostile, DeeplyNestedTomlIsRefusedBeforeParsing) {
    for (const std::string& text : {deep_header(), deep_dotted(), deep_inline()}) {
        try {
            demos::Scenario::from_toml(text, "deep.toml");
            FAIL() << "accepted";
        } catch (const moe::Error& e) {
            EXPECT_EQ(e.kind(), moe::ErrorKind::BadInput);
            EXPECT_TRUE(contains(e.what(), "deep.toml:")) << e.what();
            EXPECT_TRUE(contains(e.what(), "nested more than 32 levels")) << e.what();
        }
    }
    std::string d = fresh_dir("deep");
    auto r = moelab("run routing --scenario " + write(d + "/deep.toml", deep_header()));
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_TRUE(contains(r.out, "deep.toml:1: nested more than")) << r.out;
    // Real files stay well inside the limit: a lesson's nesting, arrays of tables, inline tables.
    EXPECT_EQ(demos::toml_limits_problem("[a.b.c]\nx = [[1, 2], [3]]\ny = {p = {q = 1}}\n\"dot.ted\" = 'a.b'\n"), "");
    EXPECT_NE(demos::toml_limits_problem(std::string(2 << 20, '#')), "");  // 2 MiB: over the size limit
}

TEST(Hostile, DeepProgressFileDoesNotCrashTheLessonCommands) {
    std::string d = fresh_dir("progress");
    std::string prog = write(d + "/progress.toml", deep_dotted());
    auto r = moelab("lessons --progress " + prog);
    EXPECT_EQ(r.rc, 0) << r.out;  // the list still shows, with a warning naming the file
    EXPECT_TRUE(contains(r.out, "progress.toml:1: nested more than")) << r.out;
    EXPECT_THROW(demos::Progress::load(prog), moe::Error);
    // `lesson` reads progress.toml after the student answers: the answer is graded, and the save is refused with
    // a warning naming the file instead of a crash. The file is left as it was.
    auto played = moelab_test::shell("printf 'b\\n4\\n\\n' | timeout 120 " + std::string(MOELAB_BIN) +
                                     " lesson dispatch-bytes --progress " + prog);
    EXPECT_EQ(played.rc, 0) << played.out;
    EXPECT_TRUE(contains(played.out, "progress not saved: " + prog + ":1: nested more than 32 levels")) << played.out;
    std::ifstream in(prog);
    std::stringstream left;
    left << in.rdbuf();
    EXPECT_EQ(left.str(), deep_dotted());
}

TEST(Hostile, DeepExpressionsAreRefusedWithTheirLimit) {
    using demos::lesson::Expr;
    for (const std::string& text :
         {repeat("-", 100000) + "1", repeat("!", 100000) + "1", repeat("(", 10000) + "1" + repeat(")", 10000),
          "1" + repeat("+1", 1000), "min(" + repeat("1,", 100) + "1)"}) {
        try {
            Expr::parse(text);
            FAIL() << "accepted " << text.substr(0, 40);
        } catch (const moe::Error& e) {
            EXPECT_EQ(e.kind(), moe::ErrorKind::BadInput);
        }
    }
    // Long but legal: within the depth limit.
    EXPECT_NO_THROW(Expr::parse(repeat("(", 90) + "1" + repeat(")", 90)));
    EXPECT_NO_THROW(Expr::parse("1" + repeat("+1", 90)));
    // A 200,000-term sum: refused by length before any tree is built.
    try {
        Expr::parse("1" + repeat("+1", 100000));
        FAIL();
    } catch (const moe::Error& e) {
        EXPECT_TRUE(contains(e.what(), "at most 4096")) << e.what();
    }
}

TEST(Hostile, OneDeepLessonFileNeverTakesDownTheOthers) {
    std::string d = fresh_dir("deeplesson");
    write(d + "/bad.toml", lesson_with("deep", repeat("-", 200) + "1"));
    write(d + "/long.toml", lesson_with("long", repeat("-", 100000) + "1"));
    write(d + "/nest.toml", deep_header());
    auto r = moelab("lessons --lessons-dir " + d);
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_TRUE(contains(r.out, "lessons (built in")) << r.out;
    auto c = moelab("lessons check --lessons-dir " + d);
    EXPECT_NE(c.rc, 0) << c.out;
    EXPECT_NE(c.rc, 124) << c.out;
    EXPECT_TRUE(contains(c.out, "bad.toml:")) << c.out;
    EXPECT_TRUE(contains(c.out, "nests more than 100 levels")) << c.out;
    EXPECT_TRUE(contains(c.out, "long.toml:")) << c.out;
    EXPECT_TRUE(contains(c.out, "the expression is 100001 characters; at most 4096")) << c.out;
    // The long expression is quoted by its start only, not echoed whole.
    EXPECT_TRUE(contains(c.out, "(100001 characters)")) << c.out.substr(0, 2000);
    EXPECT_LT(c.out.size(), 20000u) << c.out.substr(0, 2000);
    EXPECT_TRUE(contains(c.out, "nest.toml:1: nested more than 32 levels")) << c.out;
    // The same files in an auto-found ./lessons (the working folder), as a student would have them.
    std::string cwd = fresh_dir("autofound");
    fs::rename(d, cwd + "/lessons");
    const std::string in_cwd = "cd " + cwd + " && env -u MOELAB_LESSONS_DIR timeout 60 " + MOELAB_BIN;
    auto list = moelab_test::shell(in_cwd + " lessons");
    EXPECT_EQ(list.rc, 0) << list.out;
    EXPECT_TRUE(contains(list.out, "dispatch-bytes")) << list.out;
    auto check = moelab_test::shell(in_cwd + " lessons check");
    EXPECT_EQ(check.rc, 2) << check.out;  // problems in lesson files are bad input
    EXPECT_TRUE(contains(check.out, "nests more than 100 levels")) << check.out;
}

TEST(Hostile, ProgressCountsOutOfRangeFallBackToTheDefault) {
    // Found by fuzz_progress: toml++ casts a float count such as 1e31 to an integer unchecked (undefined
    // behaviour), and a count of 2^31-1 overflowed on the next play. Both now read as no count.
    std::string d = fresh_dir("progress_counts");
    std::string prog = write(d + "/progress.toml",
                             "[lessons.a]\nattempts = 11111111111111111111111111111115.0\ncorrect = 2147483647\n"
                             "votes_first = 3.5\nvotes_total = 9223372036854775807\n[lessons.b]\nattempts = 2\n");
    demos::Progress p = demos::Progress::load(prog);
    EXPECT_EQ(p.lessons["a"].attempts, 0);
    EXPECT_EQ(p.lessons["a"].correct, 0);
    EXPECT_EQ(p.lessons["a"].votes_first, -1);
    EXPECT_EQ(p.lessons["a"].votes_total, 0);
    EXPECT_EQ(p.lessons["b"].attempts, 2);  // good counts still load
    p.record("a", true, 1.0, 3, "4");
    EXPECT_EQ(p.lessons["a"].attempts, 1);
    EXPECT_EQ(p.lessons["a"].correct, 1);
}

// ---- Hangs ------------------------------------------------------------------------------------------------

TEST(Hostile, AFifoInTheLessonsFolderIsSkippedNotRead) {
    std::string d = fresh_dir("fifo");
    ASSERT_EQ(::mkfifo((d + "/x.toml").c_str(), 0644), 0);
    auto r = moelab("lessons --lessons-dir " + d);
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_TRUE(contains(r.out, "x.toml: not a regular file (a FIFO)")) << r.out;
}

TEST(Hostile, FramesMustNotBeNegative) {
    auto r = moelab("--frames -1");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_TRUE(contains(r.out, "--frames")) << r.out;
}

TEST(Hostile, ScenarioFromDevZeroOrAFolderIsRefused) {
    auto z = moelab("run routing --scenario /dev/zero");
    EXPECT_EQ(z.rc, 2) << z.out;
    EXPECT_TRUE(contains(z.out, "--scenario /dev/zero: not a regular file (a character device)")) << z.out;
    std::string d = fresh_dir("scdir");
    auto r = moelab("run routing --scenario " + d);
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_TRUE(contains(r.out, "not a regular file (a folder)")) << r.out;
    std::string fifo = d + "/f.toml";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
    auto f = moelab("run routing --scenario " + fifo);
    EXPECT_EQ(f.rc, 2) << f.out;
    EXPECT_TRUE(contains(f.out, "(a FIFO)")) << f.out;
    // A file over the size limit is refused before it is read whole.
    std::string big = write(d + "/big.toml", "# " + std::string(2 << 20, 'x') + "\n");
    auto b = moelab("run routing --scenario " + big);
    EXPECT_EQ(b.rc, 2) << b.out;
    EXPECT_TRUE(contains(b.out, "the limit is 1048576")) << b.out;
}

// ---- Accepted silently, or with the wrong exit code ---------------------------------------------------------

TEST(Hostile, SeedsOutsideZeroToTwoToTheSixtyFourAreRefused) {
    for (const char* bad : {"-1", "18446744073709551616", "1e3", "''", "0x10"}) {
        auto r = moelab(std::string("run routing --tokens 64 --seed ") + bad);
        EXPECT_EQ(r.rc, 2) << bad << "\n" << r.out;
        EXPECT_TRUE(contains(r.out, "--seed")) << r.out;
        EXPECT_TRUE(contains(r.out, "0..18446744073709551615")) << r.out;
    }
}

TEST(Hostile, EverySeedRoundTripsThroughTomlAndTheCli) {
    for (std::uint64_t seed : {std::uint64_t(0), std::uint64_t(1), std::uint64_t(9223372036854775807ull),
                               std::uint64_t(9223372036854775808ull), std::uint64_t(18446744073709551615ull)}) {
        demos::Scenario s;
        s.seed = seed;
        std::string toml = s.to_toml();
        EXPECT_EQ(demos::Scenario::from_toml(toml, "mem").seed, seed) << toml;
        // Small seeds stay plain integers; 2^63 and up are decimal strings.
        bool quoted = contains(toml, "seed = \"");
        EXPECT_EQ(quoted, seed > 9223372036854775807ull) << toml;
    }
    std::string d = fresh_dir("seed");
    auto r = moelab("run routing --tokens 64 -q --seed 18446744073709551615 --save-scenario " + d + "/s.toml");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(demos::Scenario::load(d + "/s.toml").seed, 18446744073709551615ull);
    auto again = moelab("run routing --scenario " + d + "/s.toml -q");
    EXPECT_EQ(again.rc, 0) << again.out;
    // A negative seed in a file is refused with the allowed range.
    EXPECT_THROW(demos::Scenario::from_toml("seed = -1\n", "mem"), moe::Error);
    EXPECT_THROW(demos::Scenario::from_toml("seed = \"18446744073709551616\"\n", "mem"), moe::Error);
    EXPECT_THROW(demos::Scenario::from_toml("seed = \"-5\"\n", "mem"), moe::Error);
}

TEST(Hostile, DumpFailuresAreLoudAndLeaveNoPartialSet) {
    const std::string args = "run layer --tokens 32 --experts 4 --top-k 2 --hidden 16 --ffn 8 -q --dump ";
    // scenario.toml cannot be written: a folder is in its place.
    std::string d1 = fresh_dir("dump1");
    fs::create_directories(d1 + "/scenario.toml");
    auto r1 = moelab(args + d1);
    EXPECT_EQ(r1.rc, 2) << r1.out;
    EXPECT_TRUE(contains(r1.out, "scenario.toml")) << r1.out;
    EXPECT_FALSE(fs::exists(d1 + "/x.npy")) << "a partial set was left";
    // A later file cannot be written: nothing of the set is left.
    std::string d2 = fresh_dir("dump2");
    fs::create_directories(d2 + "/inverse_map.npy");
    auto r2 = moelab(args + d2);
    EXPECT_EQ(r2.rc, 2) << r2.out;
    EXPECT_TRUE(contains(r2.out, "inverse_map.npy")) << r2.out;
    for (const char* f : {"x.npy", "logits.npy", "topk_ids.npy", "scenario.toml"})
        EXPECT_FALSE(fs::is_regular_file(d2 + "/" + f)) << f << " left behind";
    // No staging folder is left beside either.
    for (auto& e : fs::directory_iterator(fs::path(d1).parent_path()))
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
    // The good case writes the whole set, scenario.toml included, and it loads back.
    std::string d3 = fresh_dir("dump3") + "/out";
    auto r3 = moelab(args + d3);
    ASSERT_EQ(r3.rc, 0) << r3.out;
    EXPECT_TRUE(fs::exists(d3 + "/combine_output.npy"));
    EXPECT_EQ(demos::Scenario::load(d3 + "/scenario.toml").tokens, 32);
}

TEST(Hostile, BenchSizeIsCheckedBeforeLookingForGpus) {
    auto r = moelab("bench alltoall --min-bytes 1Z");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_TRUE(contains(r.out, "--min-bytes '1Z'")) << r.out;
}

TEST(Hostile, WindowSizeHasARange) {
    for (const char* a : {"--width 0", "--width 100000", "--height -5"}) {
        auto r = moelab(a);
        EXPECT_EQ(r.rc, 2) << a << "\n" << r.out;
        EXPECT_TRUE(contains(r.out, "64") && contains(r.out, "8192")) << r.out;
    }
}

TEST(Hostile, LessonsCheckEvaluatesEveryCallStatically) {
    std::string d = fresh_dir("calls");
    int line = 0, E = 0;
    lesson_with("probe", "1", &line, &E);
    ASSERT_GT(E, 1);
    const std::string last = std::to_string(E - 1);
    struct Case {
        std::string answer, message;
    };
    const Case cases[] = {{"min()", "min() takes 1 to 64 arguments, got 0"},
                          {"pow(1)", "pow() takes 2 arguments, got 1"},
                          {"split_hot(0)", "split_hot(r): r = 0 must be at least 1"},
                          {"load(-1)", "load(e): e = -1 must be an expert id from 0 to " + last},
                          {"load(" + std::to_string(E) + ")",
                           "load(e): e = " + std::to_string(E) + " must be an expert id from 0 to " + last},
                          {"roofline_ms(1)", "roofline_ms() takes 2 arguments, got 1"},
                          {"sqrt(0 - 4)", "sqrt(x): x = -4 must be at least 0"},
                          {"max_load / split_hot(2, 3)", "split_hot() takes 1 argument, got 2"}};
    int i = 0;
    for (const Case& c : cases) {
        write(d + "/c" + std::to_string(i) + ".toml", lesson_with("c" + std::to_string(i), c.answer));
        ++i;
    }
    auto r = moelab("lessons check --lessons-dir " + d);
    EXPECT_NE(r.rc, 0) << r.out;
    i = 0;
    for (const Case& c : cases) {
        // file:line of the answer, then the message.
        std::string where = "c" + std::to_string(i++) + ".toml:" + std::to_string(line) + ": [question] answer: ";
        EXPECT_TRUE(contains(r.out, where + c.message)) << where + c.message << "\n" << r.out;
    }
    // Arguments that read the run's numbers are checked for arity only; good calls pass.
    std::string ok = fresh_dir("callsok");
    write(ok + "/g.toml", lesson_with("g", "load(hottest_expert) + split_hot(2) + min(1, 2) + pow(2, 3)"));
    auto g = moelab("lessons check --lessons-dir " + ok);
    EXPECT_FALSE(contains(g.out, "g.toml")) << g.out;
}

TEST(Hostile, StaticCallCheckMatchesTheRuntimeContract) {
    using demos::check_lesson_call;
    EXPECT_EQ(check_lesson_call("split_hot", {1.0}, 8), "");
    EXPECT_NE(check_lesson_call("split_hot", {0.5}, 8), "");
    EXPECT_EQ(check_lesson_call("split_hot", {std::nullopt}, 8), "");  // a run number: checked when it runs
    EXPECT_EQ(check_lesson_call("load", {7.0}, 8), "");
    EXPECT_NE(check_lesson_call("load", {1.5}, 8), "");
    EXPECT_NE(check_lesson_call("roofline_ms", {1.0, 0.0}, 8), "");
    EXPECT_EQ(check_lesson_call("roofline_ms", {1.0, 2.0}, 8), "");
}

TEST(Hostile, OddStringsRoundTripThroughToml) {
    for (const std::string& odd : {std::string("a\nb"), std::string("'''"), std::string("\"\"\""),
                                   std::string("back\\slash"), std::string("tab\there"), std::string("\x01\x7f"),
                                   std::string("é – ✓ 𝄞"), std::string("#not a comment"), std::string("")}) {
        demos::Scenario s;
        s.skew = odd;
        s.dtype = odd + "x";
        demos::Scenario t = demos::Scenario::from_toml(s.to_toml(), "mem");
        EXPECT_EQ(t.skew, odd);
        EXPECT_EQ(t.dtype, odd + "x");
    }
    // Malformed UTF-8 cannot be stored in TOML: it is written as U+FFFD and still loads.
    demos::Scenario s;
    s.skew = "bad\xff\xfe";
    EXPECT_EQ(demos::Scenario::from_toml(s.to_toml(), "mem").skew, "bad\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Hostile, StaleTempFilesOfAKilledRunAreRemoved) {
    std::string d = fresh_dir("stale");
    std::string prog = d + "/progress.toml";
    demos::Progress p;
    p.record("x", true, 1.0, 3, "4");
    p.save(prog);
    // A pid that is not running (pid_max is at most 2^22) and a live one (ours is skipped; use pid 1).
    write(prog + ".tmp.99999999", "half");
    write(prog + ".tmp.1", "live");
    write(prog + ".tmp.abc", "not ours");
    demos::Progress::load(prog);
    EXPECT_FALSE(fs::exists(prog + ".tmp.99999999"));
    EXPECT_TRUE(fs::exists(prog + ".tmp.1"));
    EXPECT_TRUE(fs::exists(prog + ".tmp.abc"));
    // Saving cleans up too.
    write(prog + ".tmp.99999998", "half");
    p.save(prog);
    EXPECT_FALSE(fs::exists(prog + ".tmp.99999998"));
}

TEST(Hostile, SaveScenarioFollowsSymlinksAndWritesToStdout) {
    std::string d = fresh_dir("symlink");
    write(d + "/target.toml", "tokens = 1\n");
    fs::create_symlink("target.toml", d + "/link.toml");
    auto r = moelab("run routing --tokens 77 -q --save-scenario " + d + "/link.toml");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_TRUE(fs::is_symlink(d + "/link.toml"));
    EXPECT_EQ(demos::Scenario::load(d + "/target.toml").tokens, 77);
    // A dangling link creates its target.
    fs::create_symlink("new.toml", d + "/dangling.toml");
    ASSERT_EQ(moelab("run routing --tokens 78 -q --save-scenario " + d + "/dangling.toml").rc, 0);
    EXPECT_TRUE(fs::is_symlink(d + "/dangling.toml"));
    EXPECT_EQ(demos::Scenario::load(d + "/new.toml").tokens, 78);
    // /dev/stdout: the TOML goes to the output.
    auto out = moelab("run routing --tokens 79 -q --json --save-scenario /dev/stdout");
    EXPECT_EQ(out.rc, 0) << out.out;
    EXPECT_TRUE(contains(out.out, "tokens = 79")) << out.out;
    // A folder is refused with a message.
    auto dir = moelab("run routing -q --save-scenario " + d);
    EXPECT_EQ(dir.rc, 2) << dir.out;
    EXPECT_TRUE(contains(dir.out, "is a folder")) << dir.out;
}

// ---- Unclear ----------------------------------------------------------------------------------------------

TEST(Hostile, BadNumbersNameTheFlagAndTheAllowedRange) {
    auto t = moelab("run routing --tokens 1e9");
    EXPECT_EQ(t.rc, 2);
    EXPECT_TRUE(contains(t.out, "--tokens '1e9': expected a whole number; allowed: 1..1048576 tokens")) << t.out;
    auto e = moelab("run routing --tokens ''");
    EXPECT_EQ(e.rc, 2);
    EXPECT_TRUE(contains(e.out, "--tokens '': expected a whole number")) << e.out;
    auto big = moelab("run routing --experts 99999999999");
    EXPECT_EQ(big.rc, 2);
    EXPECT_TRUE(contains(big.out, "allowed: 1..1024")) << big.out;
    auto nan = moelab("run routing --link-gbps nan");
    EXPECT_EQ(nan.rc, 2);
    EXPECT_TRUE(contains(nan.out, "--link-gbps nan: the link bandwidth must be between 0.001 and 100000")) << nan.out;
    auto word = moelab("run routing --capacity-factor many");
    EXPECT_EQ(word.rc, 2);
    EXPECT_TRUE(contains(word.out, "--capacity-factor 'many': expected a number; allowed: 0..64")) << word.out;
}

TEST(Hostile, NonAsciiInAnExpressionIsShownWhole) {
    try {
        demos::lesson::Expr::parse("1 + é");
        FAIL();
    } catch (const moe::Error& e) {
        EXPECT_TRUE(contains(e.what(), "unexpected 'é'")) << e.what();
    }
    try {
        demos::lesson::Expr::parse("1 + \x01");
        FAIL();
    } catch (const moe::Error& e) {
        EXPECT_TRUE(contains(e.what(), "unexpected '\\x01'")) << e.what();
    }
}

TEST(Hostile, HugeNumbersPrintInScientificNotation) {
    using demos::lesson::format_number;
    EXPECT_EQ(format_number(1e300), "1e+300");
    EXPECT_EQ(format_number(-1e300), "-1e+300");
    EXPECT_EQ(format_number(1e300, 2), "1e+300");
    EXPECT_EQ(format_number(123456789012345.0), "123456789012345");
    EXPECT_EQ(demos::lesson::fill_template(
                  "{1e300}",
                  [](const demos::lesson::Expr& e) { return e.eval([](const std::string&) { return std::nullopt; }); }),
              "1e+300");
}

TEST(Hostile, AHugeBarsAnswerIsRefusedBeforeItGrows) {
    demos::LessonQuestion q;
    q.kind = demos::QuestionKind::Bars;
    demos::Scenario s;  // 16 experts: 16 bars
    std::string huge;
    while (huge.size() < 140000) huge += "1*4096,";
    demos::LessonAnswer a;
    std::string why = demos::parse_answer(q, s, huge, &a);
    EXPECT_TRUE(contains(why, "the answer is 140000 characters, more than")) << why;  // by length, unparsed
    EXPECT_TRUE(a.bars.empty());
    // More bars than experts is refused as soon as the count passes, with what is allowed: a short answer that
    // would expand to 8 million bars.
    why = demos::parse_answer(q, s, repeat("1*4096,", 2000), &a);
    EXPECT_TRUE(contains(why, "that is more than 16 bars")) << why;
    EXPECT_TRUE(a.bars.empty());
}

TEST(Hostile, AnUnreadableFileSaysWhy) {
    auto r = moelab("run routing --scenario /nonexistent/s.toml");
    EXPECT_EQ(r.rc, 2);
    EXPECT_TRUE(contains(r.out, "cannot open (No such file or directory)")) << r.out;
    // Other reasons the system gives are passed on too: a symlink loop, a file used as a folder, and (when not
    // root, who reads anything) a file without read permission.
    std::string d = fresh_dir("unreadable");
    fs::create_symlink("loop.toml", d + "/loop.toml");
    auto loop = moelab("run routing --scenario " + d + "/loop.toml");
    EXPECT_EQ(loop.rc, 2);
    EXPECT_TRUE(contains(loop.out, "loop.toml: cannot open (Too many levels of symbolic links)")) << loop.out;
    std::string plain = write(d + "/plain.toml", "tokens = 64\n");
    auto notdir = moelab("run routing --scenario " + plain + "/s.toml");
    EXPECT_EQ(notdir.rc, 2);
    EXPECT_TRUE(contains(notdir.out, "cannot open (Not a directory)")) << notdir.out;
    if (::geteuid() != 0) {
        ::chmod(plain.c_str(), 0);
        auto denied = moelab("run routing --scenario " + plain);
        EXPECT_EQ(denied.rc, 2);
        EXPECT_TRUE(contains(denied.out, "cannot open (Permission denied)")) << denied.out;
    }
    // A lesson file that cannot be opened is named with the reason, without failing the list.
    std::string lessons = fresh_dir("unreadable_lessons");
    fs::create_symlink("l.toml", lessons + "/l.toml");
    auto l = moelab("lessons --lessons-dir " + lessons);
    EXPECT_EQ(l.rc, 0) << l.out;
    EXPECT_TRUE(contains(l.out, "l.toml: cannot open (Too many levels of symbolic links)")) << l.out;
    // A progress file that is a symlink loop is not taken for a first run: the list warns why it was not read.
    auto p = moelab("lessons --progress " + d + "/loop.toml");
    EXPECT_EQ(p.rc, 0) << p.out;
    EXPECT_TRUE(contains(p.out, "loop.toml: cannot open (Too many levels of symbolic links)")) << p.out;
}

TEST(Hostile, BenchPeerFilesAreReadOnlyWhenRegular) {
    // --peer went through std::ifstream: a FIFO hung the bench and a missing file said "cannot open" alone. All
    // benches read it through read_peer_json; alltoall checks it before looking for a GPU, so it is tested here
    // (the stage benches need a CUDA build before they read any file).
    std::string d = fresh_dir("peer");
    ASSERT_EQ(::mkfifo((d + "/peer.json").c_str(), 0644), 0);
    for (const char* what : {"alltoall"}) {
        auto f = moelab(std::string("bench ") + what + " -q --peer " + d + "/peer.json");
        EXPECT_EQ(f.rc, 2) << what << "\n" << f.out;
        EXPECT_TRUE(contains(f.out, "--peer '" + d + "/peer.json': not a regular file (a FIFO)")) << f.out;
        auto m = moelab(std::string("bench ") + what + " -q --peer " + d + "/missing.json");
        EXPECT_EQ(m.rc, 2) << what << "\n" << m.out;
        EXPECT_TRUE(contains(m.out, "missing.json': cannot open (No such file or directory)")) << m.out;
        auto j = moelab(std::string("bench ") + what + " -q --peer " + write(d + "/bad.json", "{\"rows\": [1,"));
        EXPECT_EQ(j.rc, 2) << what << "\n" << j.out;
        EXPECT_TRUE(contains(j.out, "bad.json': not JSON")) << j.out;
    }
}

TEST(Hostile, InternalErrorsNameTheSourceFromTheCheckoutRoot) {
    // MOE_ASSERT and the CUDA checks put __FILE__ in the message; the build maps the checkout's directory away, so a
    // user sees kernels/cuda/device.cu:141, not the path the build ran in.
    try {
        MOE_ASSERT(1 + 1 == 3, "arithmetic");
        FAIL() << "MOE_ASSERT did not throw";
    } catch (const moe::Error& e) {
        const std::string what = e.what();
        EXPECT_EQ(what.rfind("tests/cpu/test_hostile.cpp:", 0), 0u) << what;
    }
}
