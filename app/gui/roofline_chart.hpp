// The expert FFN's roofline as a chart: time per FFN against tokens per expert, both axes logarithmic, the two
// floors as dashed lines, the roofline (their max) solid, timed points labelled with the implementation that ran, and
// beside each a hollow diamond where its probe was timed (the same work without the FFN around it).
// One drawing function for the roofline panel (view_roofline.cpp) and the lesson's expert-ffn reveal.
#pragma once
#include <imgui.h>

#include <string>
#include <vector>

#include "demos/lesson_play.hpp"
#include "demos/roofline.hpp"

namespace moelab_gui::roofline {

// A vertical marker: the current scenario's tokens per expert, or a lesson run's ("decode", "prefill").
struct Mark {
    double tokens_per_expert = 0;
    std::string label;
};

// Draws `rl` in `size` at the cursor; the hovered point's details (or the floors under the mouse) as a tooltip.
// `id` keeps two charts in one window apart. Anchored `anchor_name` for scripts and tests.
void chart(const demos::ExpertRoofline& rl, const std::vector<Mark>& marks, ImVec2 size, const char* id,
           const std::string& anchor_name);

// What the chart and the panel say about the roofline (plain text, for the caption and tooltips).
std::string point_text(const demos::RooflinePoint& p, const demos::ExpertRoofline& rl);

// The lesson's expert-ffn reveal (view_roofline.cpp): the first run's sweep of one expert as a roofline, each run's
// tokens per expert marked, and where its numbers came from. Nothing when the reveal has no such sweep. Where that
// sweep was not measured on a GPU here and `saved` (the engine's whole FFN on the runs' shape, saved on a GPU machine:
// Session::saved_roofline) is given, that too, with the same marks.
void lesson_reveal_chart(const demos::LessonReveal& rv, float height, const demos::ExpertRoofline* saved = nullptr);

}  // namespace moelab_gui::roofline
