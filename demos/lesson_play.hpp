// Playing a lesson, shared by the terminal player, the app's lesson view and the tests: read an answer,
// run the lesson's scenarios, grade the prediction against the engine, and check a lesson against the truth.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "demos/engine.hpp"
#include "demos/experiments.hpp"
#include "demos/lesson.hpp"
#include "demos/lesson_numbers.hpp"

namespace demos {

struct LessonAnswer {
    std::string choice;        // choice: the key
    double value = 0;          // numeric, slider, timeline
    std::vector<double> bars;  // bars: one per element of the answer vector
    int confidence = 0;        // 1..5
};

// How many bars a bars question asks for under `s` (experts for expert vectors, ranks for rank_loads).
int bars_count(const LessonQuestion& q, const Scenario& s);

// Reads a typed answer (terminal, or the app's text field). Returns "" and fills `out`, or a message saying
// what a valid answer looks like. Bars are comma-separated; "N*R" repeats N R times ("1260,190*15").
std::string parse_answer(const LessonQuestion& q, const Scenario& s, const std::string& text, LessonAnswer* out);
std::string parse_confidence(const std::string& text, int* out);
// What the player prints before asking: "a-d", "a number from 1 to 16", ...
std::string answer_hint(const LessonQuestion& q, const Scenario& s);

// The numbers of one play: index 0 is the lesson's scenario (or a variation's), then one per LessonRun.
struct LessonReveal {
    Scenario scenario;
    std::map<std::string, double> params;
    std::vector<std::string> run_names;  // "" for the lesson's own run
    std::vector<Result> results;
    std::vector<lesson::RunNumbers> numbers;  // one per result
    std::map<std::string, lesson::Number> values;
    std::vector<ExperimentResult> experiments;  // one per result when the lesson names an experiment

    // Evaluates an expression on these numbers; `extra` adds names (the student's guess). Throws BadInput.
    lesson::Number eval(const std::string& expr, const std::map<std::string, double>* extra = nullptr) const;
    std::string fill(const std::string& text, const std::map<std::string, double>* extra = nullptr) const;
    std::string backend() const { return results.empty() ? "" : results[0].backend; }
};

// The numbers known before anything runs (the scenario's inputs and the params), for text shown before the reveal:
// intro, prompt, choices and try-next prompts are filled from it, so they stay true in every variation.
LessonReveal preview(const Lesson& l, const Scenario& base, const std::map<std::string, double>& params);
// `text` filled from preview(); throws BadInput naming a placeholder that needs the run.
std::string fill_before(const Lesson& l, const Scenario& base, const std::map<std::string, double>& params,
                        const std::string& text);

// The scenario and params of try-next variation `index` (1-based; 0 is the lesson itself). Throws BadInput.
void variation(const Lesson& l, int index, Scenario* scenario, std::map<std::string, double>* params);

// The scenarios to run, in the order of LessonReveal::results. `backend` (when not empty) replaces theirs.
std::vector<Scenario> lesson_scenarios(const Lesson& l, const Scenario& base, const std::string& backend = "");
// Fills `out` from finished results (the app runs them on its runner thread; run_lesson runs them here). When the
// lesson names an experiment, it runs here on each result (on the GPU when the result ran there), unless
// `out->experiments` already holds one per result (run_lesson_experiments on a worker thread).
void make_reveal(const Lesson& l, const Scenario& base, const std::map<std::string, double>& params,
                 std::vector<Result> results, LessonReveal* out);
std::vector<ExperimentResult> run_lesson_experiments(const Lesson& l, const std::vector<Result>& results,
                                                    const std::map<std::string, double>& params);
void run_lesson(const Lesson& l, const Scenario& base, const std::map<std::string, double>& params,
                const std::string& backend, const RunControl& ctl, LessonReveal* out);

struct LessonGrade {
    bool correct = false;
    double score = 0;         // 0..1: 1 within tolerance, falling to 0 at three tolerances away
    std::string truth_text;   // "b) …" or "4.95 ×"
    double truth = 0;         // numeric kinds: the engine's answer; bars: its max/mean
    double guess = 0;         // numeric kinds: the student's; bars: the bars' max/mean
    double tolerance = 0;
    lesson::Source truth_source = lesson::Source::Input;
    std::vector<double> truth_bars;  // bars: the measured vector
    std::string right_key;           // choice: the key whose predicate holds on this run ("" if not exactly one)
    std::string feedback;            // the misconception behind a wrong answer, filled with live numbers
    std::string confidence_note;     // a confident miss, or a right answer held with doubt
    std::vector<std::string> notes;  // e.g. this run disagrees with the lesson's key
};
LessonGrade grade(const Lesson& l, const LessonReveal& r, const LessonAnswer& a);

// A class's votes (presenter mode): for a choice question one count per choice ("3,7,1,0"), else the answers given,
// comma-separated, each graded against the run's truth and tolerance. Returns "" or what a valid line looks like.
struct ClassVotes {
    int right = 0, total = 0;
    std::vector<int> per_choice;  // choice questions
};
std::string count_class_votes(const Lesson& l, const LessonGrade& g, const std::string& text, ClassVotes* out);
// "right: 3 of 10 (30%) → 7 of 10 (70%), +40 points" and what the shift means for the class.
std::string vote_shift(const ClassVotes& first, const ClassVotes& second);

// Peer instruction (Vickrey et al. 2015): under 35% correct re-teach, 35–70% discuss in pairs, above explain.
std::string class_suggestion(int correct, int total);

// Runs the lesson (and each try-next variation) on the CPU reference, or on `backend` when given (cuda: the same
// check on the GPU), and returns, as "file:line: message", every way its key, expectations, misconceptions or
// checks disagree with what the engine computes.
std::vector<std::string> verify_lesson(const Lesson& l, const std::string& backend = "cpu");

}  // namespace demos
