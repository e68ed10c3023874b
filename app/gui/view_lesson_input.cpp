// The lesson view's inputs: the prediction for each kind of question (choice, number, slider, bars to drag,
// a mark on the timeline), the confidence from 1 to 5, and the class's votes that an instructor types in.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "app/gui/view_lesson.hpp"
#include "demos/lesson_expr.hpp"
#include "demos/lesson_numbers.hpp"

namespace moelab_gui::lesson_input {
namespace {

using demos::QuestionKind;

void error_text(const ViewState& vs, const std::string& text) {
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(vs.pal.bad));
    ImGui::TextWrapped("%s", text.c_str());
    ImGui::PopStyleColor();
}

}  // namespace

// The input for the question; updates P.answer and P.answer_valid.
void prediction(LessonPlayer& P, ViewState& vs, const demos::Lesson& L, bool locked) {
    const demos::LessonQuestion& q = L.question;
    const float body = vs.fonts.body_px;
    if (locked) ImGui::BeginDisabled();
    bool typed = false;
    auto text_field = [&](const char* hint) {
        ImGui::SetNextItemWidth(std::min(ImGui::GetContentRegionAvail().x, body * 28));
        typed = ImGui::InputTextWithHint("##lesson_answer", hint, P.text, sizeof P.text);
        anchor(vs, "lesson:answer");
    };
    switch (q.kind) {
        case QuestionKind::Choice:
            for (std::size_t i = 0; i < q.choices.size(); ++i) {
                std::string label = q.choices[i].key + ")  " + q.choices[i].text;
                if (ImGui::RadioButton(label.c_str(), P.choice == int(i))) P.choice = int(i);
                anchor(vs, "lesson:choice:" + q.choices[i].key);
            }
            P.answer_valid = P.choice >= 0;
            if (P.answer_valid) P.answer.choice = q.choices[std::size_t(P.choice)].key;
            break;
        case QuestionKind::Slider: {
            ImGui::SetNextItemWidth(std::min(ImGui::GetContentRegionAvail().x, body * 28));
            const char* fmt = q.step >= 1 ? "%.0f" : (q.step >= 0.1 ? "%.1f" : "%.2f");
            if (ImGui::SliderFloat("##lesson_slider", &P.slider, float(q.min), float(q.max), fmt)) {
                if (q.step > 0) P.slider = float(q.min + std::round((P.slider - q.min) / q.step) * q.step);
                std::snprintf(P.text, sizeof P.text, fmt, double(P.slider));
            }
            anchor(vs, "lesson:slider");
            ImGui::SameLine();
            ImGui::TextUnformatted(q.unit.c_str());
            text_field("or type the value");
            if (typed) {
                double v = std::strtod(P.text, nullptr);
                P.slider = float(std::clamp(v, q.min, q.max));
            }
            break;
        }
        case QuestionKind::Numeric:
            text_field(demos::answer_hint(q, P.scenario).c_str());
            break;
        case QuestionKind::Timeline: {
            double t1 = q.max > q.min ? q.max : 10;
            if (lesson_draw::timeline(vs, nullptr, q.min, t1, &P.marker, -1, body * 9, !locked))
                std::snprintf(P.text, sizeof P.text, "%.2f", P.marker);
            text_field("click the lanes, or type a time in ms");
            if (typed) P.marker = std::strtod(P.text, nullptr);
            break;
        }
        case QuestionKind::Bars: {
            // A fixed scale from the scenario (six times the balanced load), so dragging never moves the axis.
            const double total = double(P.scenario.tokens) * P.scenario.top_k;
            const double mean = total / std::max<std::size_t>(1, P.bars.size());
            float y_max = float(q.max > q.min ? std::min(q.max, 6 * mean) : 6 * mean);
            if (lesson_draw::edit_bars(vs, &P.bars, y_max, body * 10)) {
                std::string s;
                for (float b : P.bars) s += (s.empty() ? "" : ",") + demos::lesson::format_number(std::round(b));
                std::snprintf(P.text, sizeof P.text, "%s", s.c_str());
            }
            text_field("drag the bars, or type loads: 1260,190*15");
            if (typed) {
                demos::LessonAnswer a;
                if (demos::parse_answer(q, P.scenario, P.text, &a).empty()) {
                    // Only ratios matter: typed bars are drawn scaled to the scenario's total.
                    double typed_total = 0;
                    for (double b : a.bars) typed_total += b;
                    P.bars.clear();
                    for (double b : a.bars) P.bars.push_back(float(typed_total > 0 ? b * total / typed_total : 0));
                }
            }
            std::vector<double> v(P.bars.begin(), P.bars.end());
            ImGui::Text("your bars imply max/mean = %.2f", demos::lesson::max_over_mean(v));
            break;
        }
    }
    if (q.kind != QuestionKind::Choice) {
        demos::LessonAnswer a = P.answer;
        P.answer_error = P.text[0] ? demos::parse_answer(q, P.scenario, P.text, &a) : "";
        P.answer_valid = P.text[0] && P.answer_error.empty();
        if (P.answer_valid) {
            P.answer.value = a.value;
            P.answer.bars = a.bars;
        }
        if (!P.answer_error.empty()) error_text(vs, P.answer_error);
    }
    if (locked) ImGui::EndDisabled();
}

void confidence(LessonPlayer& P, ViewState& vs, bool locked) {
    if (locked) ImGui::BeginDisabled();
    ImGui::TextUnformatted("How sure are you?");
    static const char* labels[] = {"1 a guess", "2", "3", "4", "5 certain"};
    for (int c = 1; c <= 5; ++c) {
        ImGui::SameLine();
        if (ImGui::RadioButton(labels[c - 1], P.answer.confidence == c)) P.answer.confidence = c;
        anchor(vs, "lesson:confidence:" + std::to_string(c));
    }
    if (locked) ImGui::EndDisabled();
}

// Presenter mode: the instructor types the class's votes; nothing is shown until Reveal.
void class_votes(LessonPlayer& P, ViewState& vs, const demos::Lesson& L, bool locked) {
    const demos::LessonQuestion& q = L.question;
    ImGui::TextUnformatted("Class votes (typed by the instructor):");
    if (locked) ImGui::BeginDisabled();
    if (q.kind == QuestionKind::Choice) {
        for (std::size_t i = 0; i < q.choices.size(); ++i) {
            ImGui::PushID(int(i));
            ImGui::TextUnformatted((q.choices[i].key + ")").c_str());
            ImGui::SameLine();
            ImGui::SetNextItemWidth(vs.fonts.body_px * 4);
            ImGui::InputInt("##votes", &P.votes[i], 0, 0);
            anchor(vs, "lesson:votes:" + q.choices[i].key);
            ImGui::SameLine(0, 2);
            if (ImGui::SmallButton("+")) ++P.votes[i];  // one click per raised hand
            P.votes[i] = std::max(0, P.votes[i]);
            ImGui::PopID();
            if (i + 1 < q.choices.size()) ImGui::SameLine(0, vs.fonts.body_px);
        }
    } else {
        ImGui::SetNextItemWidth(-1);
        ImGui::InputTextWithHint("##lesson_guesses", "the class's answers, comma-separated: 4.5, 6, 2, 5", P.guesses,
                                 sizeof P.guesses);
        anchor(vs, "lesson:votes");
    }
    if (locked) ImGui::EndDisabled();
}

}  // namespace moelab_gui::lesson_input
