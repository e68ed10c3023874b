// A lesson: a predict-then-reveal exercise on the live engine, loaded from a TOML file (lessons/README.md
// has the format). Lessons are data: the built-in ones are embedded at build time, a folder can add or override.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "demos/embedded_file.hpp"
#include "demos/scenario.hpp"

namespace demos {

enum class QuestionKind { Choice, Numeric, Slider, Bars, Timeline };
const char* question_kind_name(QuestionKind k);  // choice | numeric | slider | bars | timeline

// An expression from the file and the line it sits on, for error messages.
struct LessonExpr {
    std::string text;
    int line = 0;
};

struct LessonChoice {
    std::string key;   // what the student types: "a", "b", ...
    std::string text;
    LessonExpr when;   // true on the engine's numbers exactly when this choice is right
    bool correct = false;
    std::string feedback;  // for a wrong choice: the misconception it comes from
    int line = 0;
};

struct Misconception {
    LessonExpr when;  // over `guess` (and, for bars, guess_max, guess_hottest) and the run's numbers
    std::string feedback;
};

struct LessonQuestion {
    QuestionKind kind = QuestionKind::Choice;
    std::string prompt;
    std::vector<LessonChoice> choices;       // choice
    // choice: `key = "run"`: no choice is marked correct; the one whose `when` holds on the run is right (the truth
    // moves with the hardware, e.g. a GPU's measured times against the CPU model's), so every choice has feedback.
    bool key_from_run = false;
    LessonExpr answer;                       // numeric, slider, timeline: an expression; bars: a vector's name
    double tolerance = 0, rel_tolerance = 0; // correct when |guess − answer| ≤ max(tolerance, rel·|answer|)
    double min = 0, max = 0, step = 0;       // input range (slider, timeline axis, bars); min == max: any number
    std::string unit;
    bool has_expect = false;                 // the lesson text assumes the answer lies in [expect_lo, expect_hi]
    double expect_lo = 0, expect_hi = 0;
    int expect_line = 0;
    std::vector<Misconception> misconceptions;
    int line = 0;
};

// A named run beside the lesson's own: the scenario with some keys overridden.
struct LessonRun {
    std::string name;
    std::string overrides;  // TOML text of the overridden scenario keys, applied on top of the current scenario
    int line = 0;
};

struct TryNext {
    std::string prompt;
    std::string overrides;                  // scenario keys, TOML text
    std::map<std::string, double> params;  // lesson parameters to change
    int line = 0;
};

struct NamedExpr {
    std::string name;
    LessonExpr expr;
};

struct Lesson {
    std::string id, title;
    int concept_number = 0;  // TOML key `concept`: 1..16 in PEDAGOGY.md's list; 0 for lessons outside it
    int order = 0;    // position in the list
    std::string intro;
    std::string note;    // what is emulated or modelled here, shown on screen
    std::string source;  // "built-in:NAME.toml" or the file's path
    Scenario scenario;
    std::map<std::string, double> params;
    std::vector<LessonRun> runs;
    std::vector<NamedExpr> values;  // computed after the runs, in file order
    LessonQuestion question;
    Demo demo = Demo::Routing;
    std::string experiment;         // "" or one of experiment_names(): timed beside the runs (demos/experiments.hpp)
    std::string view = "loads";     // loads | comm | dispatch | timeline | pipeline
    std::vector<std::string> show;  // expressions whose numbers the reveal prints
    std::string formula, explanation;
    std::vector<TryNext> try_next;
    std::vector<LessonExpr> checks;  // further claims the lesson's text makes; the tests hold the engine to them
};

// Slide-ready text (PEDAGOGY.md): what a student reads before committing (intro + prompt) is at most this many
// words, and the explanation's first paragraph (up to the first blank line) at most kMaxOpeningWords; the rest of
// the explanation sits behind "more".
constexpr int kMaxBeforeWords = 60, kMaxOpeningWords = 80;
int word_count(const std::string& text);
std::string explanation_opening(const std::string& text);  // the first paragraph, trimmed
std::string explanation_more(const std::string& text);     // the rest, trimmed ("" when there is none)

// One problem in one file: `file:line: message`.
struct LessonProblem {
    std::string file;
    int line = 0;
    std::string message;
    std::string str() const;
};

struct LessonSet {
    std::vector<Lesson> lessons;          // sorted by order, then id
    std::vector<LessonProblem> problems;  // every file that failed, each with all of its problems
    std::vector<std::string> files;       // every file read, built-in ones as "built-in:NAME.toml"
    const Lesson* find(const std::string& id) const;
};

// Parses one lesson file. Appends every problem found (never stops at the first) and returns false when any.
bool parse_lesson(const std::string& text, const std::string& source, Lesson* out,
                  std::vector<LessonProblem>* problems);

// The lessons folder: `flag` when given, else $MOELAB_LESSONS_DIR, else ./lessons when it exists, else "".
std::string lessons_dir(const std::string& flag);

// The built-in lessons, then every *.toml in `dir` (when not empty): a file whose id matches a built-in one
// replaces it, others are added. A bad file is reported in `problems` and never stops the others.
LessonSet load_lessons(const std::string& dir);

// The scenario with `overrides` (TOML text of scenario keys) applied. Throws BadInput naming the key.
Scenario apply_overrides(const Scenario& base, const std::string& overrides, const std::string& where);

// Built-in lesson files, generated at build time from lessons/*.toml (demos/embed_files.cmake).
using EmbeddedLesson = EmbeddedFile;
const EmbeddedLesson* embedded_lessons(int* count);

}  // namespace demos
