// The lesson player view: a list with progress; a prediction and a confidence committed before the reveal can
// run; the prediction drawn as a ghost over the result; feedback, explanation and try-next; a presenter tally.
#pragma once
#include <imgui.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/gui/app_state.hpp"
#include "demos/lesson.hpp"
#include "demos/lesson_play.hpp"
#include "demos/lesson_progress.hpp"

namespace moelab_gui {

class App;
class Runner;

enum class LessonPhase { Predict, Running, Hidden, Revealed };

// The view's own state, owned by the App (App::lesson). Plain data apart from its runner.
struct LessonPlayer {
    LessonPlayer();
    ~LessonPlayer();

    demos::LessonSet set;
    bool loaded = false;
    demos::Progress progress;
    std::string progress_path;
    std::string progress_error;

    int current = -1;    // index into set.lessons
    int variation = 0;   // 0: the lesson; i: try_next[i-1]
    demos::Scenario scenario;
    std::map<std::string, double> params;
    LessonPhase phase = LessonPhase::Predict;
    bool presenter_layout = false;  // the layout last placed (presenter mode fills the screen)

    // The prediction, as edited; `answer` is filled once the input is valid.
    demos::LessonAnswer answer;
    bool answer_valid = false;
    std::string answer_error;
    int choice = -1;
    float slider = 0;
    double marker = -1;  // timeline: the marked time, ms
    std::vector<float> bars;
    char text[512] = {};

    // Presenter mode: the class's votes, typed in by the instructor.
    std::vector<int> votes;  // choice: one count per choice
    char guesses[1024] = {};  // other kinds: the class's answers, comma-separated
    int class_right = 0, class_total = 0;

    // The reveal's runs, on the player's own runner thread (never the UI thread).
    std::unique_ptr<Runner> runner;
    std::uint64_t generation = 0;
    std::vector<std::optional<demos::Result>> results;
    std::string run_error;
    demos::LessonReveal reveal;
    demos::LessonGrade grade;
};

// Draws the lesson view when *p_open, toggles it with F3, and advances a running reveal. Call every frame.
void show_lesson(App& app, bool* p_open);

// The inputs (view_lesson_input.cpp): each writes into the player and records anchors for scripts.
namespace lesson_input {
// The prediction for the question's kind; sets P.answer and P.answer_valid.
void prediction(LessonPlayer& P, ViewState& vs, const demos::Lesson& L, bool locked);
void confidence(LessonPlayer& P, ViewState& vs, bool locked);
// Presenter mode: the class's votes, typed by the instructor (counts per choice, or the answers given).
void class_votes(LessonPlayer& P, ViewState& vs, const demos::Lesson& L, bool locked);
}  // namespace lesson_input

// The drawing pieces (view_lesson_draw.cpp): plain data in, ImDrawList out.
namespace lesson_draw {
// Editable bars in [0, y_max]; returns true when a bar changed. Anchored as "lesson:bars".
bool edit_bars(ViewState& vs, std::vector<float>* bars, float y_max, float height);
// Measured bars with the prediction (scaled to the same total) as dashed ghost outlines.
void ghost_bars(const ViewState& vs, const std::vector<double>& measured, const std::vector<double>& guess,
                float height);
// A number line with the tolerance band around the truth, the truth solid and the guess as a dashed ghost.
void ghost_number(const ViewState& vs, double lo, double hi, double truth, double tol, double guess,
                  const std::string& unit, float height);
// The pipeline lanes (empty before the reveal) on a fixed axis; a click sets *marker. Anchored "lesson:timeline".
bool timeline(ViewState& vs, const demos::Result* r, double t0, double t1, double* marker, double truth,
              float height, bool editable);
}  // namespace lesson_draw

}  // namespace moelab_gui
