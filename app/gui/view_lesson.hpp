// The lesson view: a list with progress; a prediction and a confidence committed before the reveal can run; the
// prediction drawn as a ghost over the result; feedback, explanation and try-next; a presenter tally. The lesson's
// state lives in the Session (LessonSession); the draft answer in ViewState (LessonDraft); the view acts through
// Commands (start, commit, second vote, reveal, load into the controls).
#pragma once
#include <imgui.h>

#include <string>
#include <vector>

#include "app/gui/app_state.hpp"
#include "demos/lesson.hpp"
#include "demos/lesson_play.hpp"

namespace moelab_gui {

// show_lesson (app_state.hpp) draws the view when *p_open. F3 toggles it (shortcuts.cpp).

// Opens the view a lesson's reveal names (loads, comm, dispatch, timeline).
void open_reveal_view(ViewState& vs, const std::string& view);

// Presenter mode (view_lesson_class.cpp): the class's first vote is in and the run is done, the answer hidden.
namespace lesson_class {
// How many were right and the suggested next step, the second vote after discussion, the shift, and Reveal.
void hidden(const LessonSession& P, ViewState& vs, Commands& cmd, const demos::Lesson& L);
// The shift between the two votes (when there is a second): right-share before → after and the votes per choice
// as two bars; `revealed` marks the right choice. Anchored "lesson:shift".
void shift(const LessonSession& P, const demos::Lesson& L, bool revealed);
}  // namespace lesson_class

// The inputs (view_lesson_input.cpp): each writes into the draft and records anchors for scripts.
namespace lesson_input {
// The prediction for the question's kind under scenario `scen`; sets D.answer and D.answer_valid.
void prediction(LessonDraft& D, const demos::Scenario& scen, const demos::Lesson& L, bool locked);
void confidence(LessonDraft& D, bool locked);
// Presenter mode: one vote of the class, typed by the instructor (counts per choice, or the answers given, in
// `guesses`); `tag` is "votes" for the first vote and "votes2" for the second (ids and anchors).
void class_votes(std::vector<int>& votes, char* guesses, std::size_t guesses_size, const demos::Lesson& L,
                 bool locked, const char* tag);
// The class's confidence with its first vote, 1..5 (0: not given). Anchored "lesson:class_confidence".
void class_confidence(float* confidence, bool locked);
// What is wrong with a vote line ("" when it can be counted), as the terminal says it.
std::string votes_problem(const demos::Lesson& L, const std::vector<int>& votes, const char* guesses);
}  // namespace lesson_input

// The drawing pieces (view_lesson_draw.cpp): plain data in, ImDrawList out.
namespace lesson_draw {
// Editable bars in [0, y_max]; returns true when a bar changed. Anchored as "lesson:bars".
bool edit_bars(std::vector<float>* bars, float y_max, float height);
// Measured bars with the prediction (scaled to the same total) as dashed ghost outlines.
void ghost_bars(const std::vector<double>& measured, const std::vector<double>& guess, float height);
// A number line with the tolerance band around the truth, the truth solid and the guess as a dashed ghost.
void ghost_number(double lo, double hi, double truth, double tol, double guess, const std::string& unit, float height);
// Two votes of a class side by side: per label (a choice, or right / wrong) the first vote's count as an outlined
// bar and the second's filled; `right` (a label index, -1 while the answer is hidden) is marked. Anchored
// "lesson:vote_bars".
void vote_bars(const std::vector<std::string>& labels, const std::vector<int>& first, const std::vector<int>& second,
               int right, float height);
// The pipeline lanes (empty before the reveal) on a fixed axis; a click sets *marker. Anchored "lesson:timeline".
bool timeline(const demos::Result* r, double t0, double t1, double* marker, double truth, float height, bool editable);
}  // namespace lesson_draw

}  // namespace moelab_gui
