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

void error_text(const std::string& text) {
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(skin().pal.bad));
    ImGui::TextWrapped("%s", text.c_str());
    ImGui::PopStyleColor();
}

}  // namespace

// The input for the question; updates D.answer and D.answer_valid.
void prediction(LessonDraft& D, const demos::Scenario& scen, const demos::Lesson& L, bool locked) {
    const demos::LessonQuestion& q = L.question;
    const float body = skin().fonts.body_px;
    if (locked) ImGui::BeginDisabled();
    bool typed = false;
    auto text_field = [&](const char* hint) {
        ImGui::SetNextItemWidth(std::min(ImGui::GetContentRegionAvail().x, body * 28));
        typed = ImGui::InputTextWithHint("##lesson_answer", hint, D.text, sizeof D.text);
        anchor("lesson:answer");
    };
    switch (q.kind) {
        case QuestionKind::Choice:
            for (std::size_t i = 0; i < q.choices.size(); ++i) {
                std::string text = q.choices[i].text;
                try {
                    text = demos::fill_before(L, scen, L.params, text);  // numbers from the inputs, true in variations
                } catch (const std::exception&) {
                }
                std::string label = q.choices[i].key + ")  " + text;
                if (ImGui::RadioButton(label.c_str(), D.choice == int(i))) D.choice = int(i);
                anchor("lesson:choice:" + q.choices[i].key);
            }
            D.answer_valid = D.choice >= 0;
            if (D.answer_valid) D.answer.choice = q.choices[std::size_t(D.choice)].key;
            break;
        case QuestionKind::Slider: {
            ImGui::SetNextItemWidth(std::min(ImGui::GetContentRegionAvail().x, body * 28));
            const char* fmt = q.step >= 1 ? "%.0f" : (q.step >= 0.1 ? "%.1f" : "%.2f");
            if (ImGui::SliderFloat("##lesson_slider", &D.slider, float(q.min), float(q.max), fmt)) {
                if (q.step > 0) D.slider = float(q.min + std::round((D.slider - q.min) / q.step) * q.step);
                std::snprintf(D.text, sizeof D.text, fmt, double(D.slider));
            }
            anchor("lesson:slider");
            ImGui::SameLine();
            ImGui::TextUnformatted(q.unit.c_str());
            text_field("or type the value");
            if (typed) {
                double v = std::strtod(D.text, nullptr);
                D.slider = float(std::clamp(v, q.min, q.max));
            }
            break;
        }
        case QuestionKind::Numeric:
            text_field(demos::answer_hint(q, scen).c_str());
            break;
        case QuestionKind::Timeline: {
            double t1 = q.max > q.min ? q.max : 10;
            if (lesson_draw::timeline(nullptr, q.min, t1, &D.marker, -1, body * 9, !locked))
                std::snprintf(D.text, sizeof D.text, "%.2f", D.marker);
            text_field("click the lanes, or type a time in ms");
            if (typed) D.marker = std::strtod(D.text, nullptr);
            break;
        }
        case QuestionKind::Bars: {
            // A fixed scale from the scenario (six times the balanced load), so dragging never moves the axis.
            const double total = double(scen.tokens) * scen.top_k;
            const double mean = total / std::max<std::size_t>(1, D.bars.size());
            float y_max = float(q.max > q.min ? std::min(q.max, 6 * mean) : 6 * mean);
            if (lesson_draw::edit_bars(&D.bars, y_max, body * 10)) {
                std::string s;
                for (float b : D.bars) s += (s.empty() ? "" : ",") + demos::lesson::format_number(std::round(b));
                std::snprintf(D.text, sizeof D.text, "%s", s.c_str());
            }
            text_field("drag the bars, or type loads: 1260,190*15");
            if (typed) {
                demos::LessonAnswer a;
                if (demos::parse_answer(q, scen, D.text, &a).empty()) {
                    // Only ratios matter: typed bars are drawn scaled to the scenario's total.
                    double typed_total = 0;
                    for (double b : a.bars) typed_total += b;
                    D.bars.clear();
                    for (double b : a.bars) D.bars.push_back(float(typed_total > 0 ? b * total / typed_total : 0));
                }
            }
            std::vector<double> v(D.bars.begin(), D.bars.end());
            ImGui::Text("your bars imply max/mean = %.2f", demos::lesson::max_over_mean(v));
            break;
        }
    }
    if (q.kind != QuestionKind::Choice) {
        demos::LessonAnswer a = D.answer;
        D.answer_error = D.text[0] ? demos::parse_answer(q, scen, D.text, &a) : "";
        D.answer_valid = D.text[0] && D.answer_error.empty();
        if (D.answer_valid) {
            D.answer.value = a.value;
            D.answer.bars = a.bars;
        }
        if (!D.answer_error.empty()) error_text(D.answer_error);
    }
    if (locked) ImGui::EndDisabled();
}

void confidence(LessonDraft& D, bool locked) {
    if (locked) ImGui::BeginDisabled();
    ImGui::TextUnformatted("How sure are you?");
    static const char* labels[] = {"1 a guess", "2", "3", "4", "5 certain"};
    for (int c = 1; c <= 5; ++c) {
        ImGui::SameLine();
        if (ImGui::RadioButton(labels[c - 1], D.answer.confidence == c)) D.answer.confidence = c;
        anchor("lesson:confidence:" + std::to_string(c));
    }
    if (locked) ImGui::EndDisabled();
}

// Presenter mode: the instructor types one vote of the class; nothing is shown until Reveal. `tag` names the vote
// ("votes" for the first, "votes2" for the second): widget ids and the anchors scripts click on.
void class_votes(std::vector<int>& votes, char* guesses, std::size_t guesses_size, const demos::Lesson& L,
                 bool locked, const char* tag) {
    const demos::LessonQuestion& q = L.question;
    const std::string name = std::string("lesson:") + tag;
    ImGui::PushID(tag);
    if (locked) ImGui::BeginDisabled();
    if (q.kind == QuestionKind::Choice) {
        votes.resize(q.choices.size(), 0);
        for (std::size_t i = 0; i < q.choices.size(); ++i) {
            ImGui::PushID(int(i));
            ImGui::TextUnformatted((q.choices[i].key + ")").c_str());
            ImGui::SameLine();
            ImGui::SetNextItemWidth(skin().fonts.body_px * 4);
            ImGui::InputInt("##votes", &votes[i], 0, 0);
            anchor(name + ":" + q.choices[i].key);
            ImGui::SameLine(0, 2);
            if (ImGui::SmallButton("+")) ++votes[i];  // one click per raised hand
            votes[i] = std::max(0, votes[i]);
            ImGui::PopID();
            if (i + 1 < q.choices.size()) ImGui::SameLine(0, skin().fonts.body_px);
        }
    } else {
        ImGui::SetNextItemWidth(-1);
        ImGui::InputTextWithHint("##lesson_guesses", "the class's answers, comma-separated: 4.5, 6, 2, 5", guesses,
                                 guesses_size);
        anchor(name);
    }
    if (locked) ImGui::EndDisabled();
    ImGui::PopID();
}

void class_confidence(float* confidence, bool locked) {
    if (locked) ImGui::BeginDisabled();
    ImGui::TextUnformatted("The class's confidence, 1 to 5 (a show of fingers; the mean):");
    ImGui::SameLine();
    ImGui::SetNextItemWidth(skin().fonts.body_px * 7);
    ImGui::InputFloat("##class_confidence", confidence, 0.5f, 1.0f, "%.1f");
    anchor("lesson:class_confidence");
    *confidence = std::clamp(*confidence, 0.0f, 5.0f);
    if (locked) ImGui::EndDisabled();
}

std::string votes_problem(const demos::Lesson& L, const std::vector<int>& votes, const char* guesses) {
    // Only the line's form is checked here: the count against the answer needs the run.
    demos::ClassVotes v;
    return demos::count_class_votes(L, demos::LessonGrade{}, class_votes_line(L, votes, guesses), &v);
}

}  // namespace moelab_gui::lesson_input
