// Presenter mode's second half (peer instruction): the class's first vote has been counted against the run, the
// answer is still hidden. The instructor sees how many were right and the suggested next step, types the second
// vote after discussion, sees the shift between the two (right-share before → after, votes per choice as two bars),
// then reveals. The counting and the wording are the terminal's (demos::count_class_votes, vote_shift).
#include <GLFW/glfw3.h>

#include <algorithm>
#include <cstdio>

#include "app/gui/view_lesson.hpp"

namespace moelab_gui::lesson_class {
namespace {

void colored_wrapped(const std::string& text, ImU32 color) {
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(color));
    ImGui::TextWrapped("%s", text.c_str());
    ImGui::PopStyleColor();
}

double pct(const demos::ClassVotes& v) { return v.total > 0 ? 100.0 * v.right / v.total : 0.0; }

}  // namespace

void shift(const LessonSession& P, const demos::Lesson& L, bool revealed) {
    if (!P.has_second) return;
    ImGui::PushFont(skin().fonts.big);
    ImGui::Text("right: %.0f%% then %.0f%%", pct(P.first), pct(P.second));  // the big face has no arrows
    ImGui::PopFont();
    anchor("lesson:shift");
    ImGui::TextWrapped("%s", demos::vote_shift(P.first, P.second).c_str());
    // Per choice for a choice question; else the answers given, right and wrong.
    std::vector<std::string> labels;
    std::vector<int> a, b;
    int right = -1;
    const demos::LessonQuestion& q = L.question;
    if (q.kind == demos::QuestionKind::Choice) {
        for (std::size_t i = 0; i < q.choices.size(); ++i) {
            labels.push_back(q.choices[i].key + ")");
            a.push_back(i < P.first.per_choice.size() ? P.first.per_choice[i] : 0);
            b.push_back(i < P.second.per_choice.size() ? P.second.per_choice[i] : 0);
            if (revealed && q.choices[i].key == P.grade.right_key) right = int(i);
        }
    } else {
        labels = {"right", "wrong"};
        a = {P.first.right, P.first.total - P.first.right};
        b = {P.second.right, P.second.total - P.second.right};
        right = revealed ? 0 : -1;
    }
    lesson_draw::vote_bars(labels, a, b, right, skin().fonts.body_px * 8);
    ImGui::TextDisabled("outlined: the first vote; filled: the second, after discussion");
}

void hidden(const LessonSession& P, ViewState& vs, Commands& cmd, const demos::Lesson& L) {
    LessonDraft& D = vs.lesson;
    ImGui::Separator();
    ImGui::PushFont(skin().fonts.big);
    ImGui::Text("First vote: %d of %d right (%.0f%%)", P.first.right, P.first.total, pct(P.first));
    ImGui::PopFont();
    anchor("lesson:first_vote");
    ImGui::Text("The class's confidence: %.1f / 5", P.class_confidence);
    ImGui::TextWrapped("%s", demos::class_suggestion(P.first.right, P.first.total).c_str());
    anchor("lesson:suggestion");
    if (P.class_confidence >= 4 && 2 * P.first.right < P.first.total)
        colored_wrapped(
            "A confident class that is mostly wrong: the misconception is strong. Discussion is where it "
            "moves.",
            skin().pal.warn);
    ImGui::Separator();
    ImGui::TextUnformatted(P.has_second ? "Second vote, after discussion (locked):"
                                        : "Second vote, after discussion (optional):");
    lesson_input::class_votes(D.votes2, D.guesses2, sizeof D.guesses2, L, P.has_second, "votes2");
    if (!P.has_second) {
        const std::string problem = lesson_input::votes_problem(L, D.votes2, D.guesses2);
        if (!problem.empty()) ImGui::BeginDisabled();
        if (ImGui::Button("Lock the second vote")) {
            Command c;
            c.kind = CommandKind::SecondVote;
            c.votes = D.votes2;
            c.text = D.guesses2;
            cmd.push(std::move(c));
        }
        if (!problem.empty()) ImGui::EndDisabled();
        anchor("lesson:second_commit");
    }
    if (!P.vote_error.empty()) colored_wrapped(P.vote_error, skin().pal.bad);
    shift(P, L, false);
    ImGui::Separator();
    ImGui::TextDisabled("The answer stays hidden until you reveal it.");
    if (ImGui::Button("Reveal") || (ImGui::GetIO().KeyCtrl && ImGui::IsKeyPressed(GLFW_KEY_ENTER, false))) {
        cmd.simple(CommandKind::RevealLesson);
        open_reveal_view(vs, L.view);
    }
    anchor("lesson:reveal");
}

}  // namespace moelab_gui::lesson_class
