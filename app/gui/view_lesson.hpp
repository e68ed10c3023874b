// The lesson view: a list with progress; a prediction and a confidence committed before the reveal can run; the
// prediction drawn as a ghost over the result; feedback, explanation and try-next; a presenter tally. The lesson's
// state lives in the Session (LessonSession); the draft answer in ViewState (LessonDraft); the view acts through
// Commands (start, commit, reveal, vote again, load into the controls).
#pragma once
#include <imgui.h>

#include <string>
#include <vector>

#include "app/gui/app_state.hpp"
#include "demos/lesson.hpp"
#include "demos/lesson_play.hpp"

namespace moelab_gui {

// show_lesson (app_state.hpp) draws the view when *p_open. F3 toggles it (shortcuts.cpp).

// The inputs (view_lesson_input.cpp): each writes into the draft and records anchors for scripts.
namespace lesson_input {
// The prediction for the question's kind under scenario `scen`; sets D.answer and D.answer_valid.
void prediction(LessonDraft& D, const demos::Scenario& scen, const demos::Lesson& L, bool locked);
void confidence(LessonDraft& D, bool locked);
// Presenter mode: the class's votes, typed by the instructor (counts per choice, or the answers given).
void class_votes(LessonDraft& D, const demos::Lesson& L, bool locked);
}  // namespace lesson_input

// The drawing pieces (view_lesson_draw.cpp): plain data in, ImDrawList out.
namespace lesson_draw {
// Editable bars in [0, y_max]; returns true when a bar changed. Anchored as "lesson:bars".
bool edit_bars(std::vector<float>* bars, float y_max, float height);
// Measured bars with the prediction (scaled to the same total) as dashed ghost outlines.
void ghost_bars(const std::vector<double>& measured, const std::vector<double>& guess, float height);
// A number line with the tolerance band around the truth, the truth solid and the guess as a dashed ghost.
void ghost_number(double lo, double hi, double truth, double tol, double guess, const std::string& unit, float height);
// The pipeline lanes (empty before the reveal) on a fixed axis; a click sets *marker. Anchored "lesson:timeline".
bool timeline(const demos::Result* r, double t0, double t1, double* marker, double truth, float height, bool editable);
}  // namespace lesson_draw

}  // namespace moelab_gui
