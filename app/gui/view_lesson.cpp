// The lesson view: pick a lesson, predict and say how sure you are, commit; only then does the reveal run (on the
// session's one runner, sharing runs with the other views). Then the ghost, the score, the misconception, the
// explanation and try-next.
#include "app/gui/view_lesson.hpp"

#include <GLFW/glfw3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "app/gui/roofline_chart.hpp"
#include "demos/lesson_expr.hpp"
#include "demos/lesson_numbers.hpp"

namespace moelab_gui {
namespace {

using demos::QuestionKind;

// A fresh draft for the session's current round: nothing predicted yet.
void sync_draft(LessonDraft& D, const LessonSession& P) {
    if (D.round == P.round) return;
    const bool presenter_layout = D.presenter_layout;
    D = LessonDraft{};
    D.round = P.round;
    D.presenter_layout = presenter_layout;
    const demos::Lesson* L = P.lesson();
    if (!L) return;
    const demos::LessonQuestion& q = L->question;
    D.slider = float(q.min);
    if (q.kind == QuestionKind::Bars) {
        // Everyone starts from the balanced picture: that is the belief to test.
        const int n = demos::bars_count(q, P.scenario);
        D.bars.assign(std::size_t(n), float(double(P.scenario.tokens) * P.scenario.top_k / std::max(1, n)));
    }
    D.votes.assign(q.choices.size(), 0);
    D.votes2.assign(q.choices.size(), 0);
}


void wrapped(const std::string& text, ImU32 color = 0) {
    if (color) ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(color));
    ImGui::TextWrapped("%s", text.c_str());
    if (color) ImGui::PopStyleColor();
}

void lesson_list(const LessonSession& P, Commands& cmd) {
    int played = 0;
    for (auto& l : P.set.lessons) played += P.progress.done(l.id);
    ImGui::Text("%d of %zu played", played, P.set.lessons.size());
    ImGui::ProgressBar(P.set.lessons.empty() ? 0.f : float(played) / float(P.set.lessons.size()), ImVec2(-1, 0), "");
    ImGui::Separator();
    for (std::size_t i = 0; i < P.set.lessons.size(); ++i) {
        const demos::Lesson& l = P.set.lessons[i];
        auto it = P.progress.lessons.find(l.id);
        // A class's votes alone (presenter mode) are not a student's attempt: the lesson stays unplayed.
        const char* mark = !P.progress.done(l.id) ? "·" : (it->second.last_correct ? "✓" : "✗");
        const std::string number = l.concept_number > 0 ? std::to_string(l.concept_number) + ". " : "";
        std::string label = std::string(mark) + " " + number + l.title;
        // The whole title, wrapped to the list's width: the item is as tall as its wrapped text.
        const float w = ImGui::GetContentRegionAvail().x;
        const float pad = ImGui::GetStyle().FramePadding.x;
        const ImVec2 ts = ImGui::CalcTextSize(label.c_str(), nullptr, false, std::max(1.0f, w - 2 * pad));
        const ImVec2 at = ImGui::GetCursorScreenPos();
        ImGui::PushID(int(i));
        if (ImGui::Selectable("##lesson_item", P.current == int(i), 0, ImVec2(w, ts.y))) cmd.start_lesson(int(i), 0);
        ImGui::PopID();
        ImGui::GetWindowDrawList()->AddText(ImGui::GetFont(), ImGui::GetFontSize(), ImVec2(at.x + pad, at.y),
                                            ImGui::GetColorU32(ImGuiCol_Text), label.c_str(), nullptr,
                                            std::max(1.0f, w - 2 * pad));
        anchor("lesson:item:" + l.id);
        if (ImGui::IsItemHovered()) {
            std::string tip = l.id + " · " + demos::question_kind_name(l.question.kind) + " question";
            if (it != P.progress.lessons.end() && it->second.votes_total > 0)
                tip += "\nclass votes: " + std::to_string(it->second.votes_first) + " of " +
                       std::to_string(it->second.votes_total) + " right" +
                       (it->second.votes_second >= 0 ? ", then " + std::to_string(it->second.votes_second) : "");
            if (P.progress.done(l.id))
                tip += "\nplayed " + std::to_string(it->second.attempts) + "×, right " +
                       std::to_string(it->second.correct) + "×, last confidence " +
                       std::to_string(it->second.last_confidence) + "/5";
            if (l.source.rfind("built-in:", 0) != 0) tip += "\nfrom " + l.source;
            wrapped_tooltip(tip.c_str());
        }
    }
    if (!P.set.problems.empty()) {
        ImGui::Separator();
        ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(skin().pal.warn), "%zu lesson file problem(s)",
                           P.set.problems.size());
        if (ImGui::IsItemHovered()) {
            std::string t;
            for (auto& p : P.set.problems) t += p.str() + "\n";
            wrapped_tooltip(t.c_str());
        }
    }
}

// The timed figure behind a shown number ("ffn_ms", "prefill.hot_expert_ms"): the experiment of that run keeps each
// one with its min, median and p95. nullptr for anything else.
const demos::TimedFigure* timed_figure(const demos::LessonReveal& rv, const std::string& expr) {
    const std::size_t dot = expr.find('.');
    const std::string run = dot == std::string::npos ? "" : expr.substr(0, dot);
    const std::string name = dot == std::string::npos ? expr : expr.substr(dot + 1);
    for (std::size_t i = 0; i < rv.run_names.size() && i < rv.experiments.size(); ++i) {
        if (rv.run_names[i] != run) continue;
        for (const demos::TimedFigure& t : rv.experiments[i].timings)
            if (t.name == name) return &t;
    }
    return nullptr;
}

// Unit and meaning of a number the engine or an experiment provides.
const demos::lesson::MetricInfo* metric_of(const std::string& expr) {
    const std::string base = expr.substr(expr.find('.') == std::string::npos ? 0 : expr.find('.') + 1);
    for (auto& mi : demos::lesson::metric_catalog())
        if (base == mi.name) return &mi;
    for (auto& em : demos::experiment_metrics())
        if (base == em.info.name) return &em.info;
    return nullptr;
}

void numbers_table(const LessonSession& P, const demos::Lesson& L) {
    if (L.show.empty()) return;
    if (!ImGui::BeginTable("##lesson_numbers", 3, ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_RowBg)) return;
    ImGui::PushTextWrapPos(-1.0f);  // cells never wrap
    for (auto& expr : L.show) {
        demos::lesson::Number n;
        try {
            n = P.reveal.eval(expr);
        } catch (const std::exception&) {
            continue;
        }
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(expr.c_str());
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(demos::lesson::format_number(n.value).c_str());
        ImGui::TableNextColumn();
        source_badge(skin().pal, n.source);
        // A timed figure shows its run-to-run noise beside its median (PEDAGOGY.md: min, median and p95).
        if (const demos::TimedFigure* t = timed_figure(P.reveal, expr)) {
            ImGui::SameLine();
            if (t->source == demos::lesson::Source::Modeled || t->repeats == 0)
                ImGui::TextDisabled("modelled: no run-to-run noise");
            else
                ImGui::Text("min %s · median %s · p95 %s ms (%d repeats)",
                            demos::lesson::format_number(t->min_ms).c_str(),
                            demos::lesson::format_number(t->median_ms).c_str(),
                            demos::lesson::format_number(t->p95_ms).c_str(), t->repeats);
            anchor("lesson:noise:" + expr);
        }
        if (const demos::lesson::MetricInfo* m = metric_of(expr)) {
            ImGui::SameLine();
            ImGui::TextDisabled("%s %s", m->unit, m->help);
        }
    }
    ImGui::PopTextWrapPos();
    ImGui::EndTable();
}

void revealed(const Session& ses, const LessonSession& P, Commands& cmd, const demos::Lesson& L) {
    const demos::LessonQuestion& q = L.question;
    const demos::LessonGrade& g = P.grade;
    const float body = skin().fonts.body_px;
    const bool presenter = P.presenter;
    ImGui::Separator();
    if (presenter) {
        const demos::ClassVotes& last = P.has_second ? P.second : P.first;
        ImGui::PushFont(skin().fonts.big);
        ImGui::Text("%d of %d right%s", last.right, last.total, P.has_second ? " (2nd vote)" : "");
        ImGui::PopFont();
        anchor("lesson:score");
        lesson_class::shift(P, L, true);
    } else {
        ImGui::PushFont(skin().fonts.big);
        ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(g.correct ? skin().pal.ok : skin().pal.bad), "%s",
                           g.correct ? "Right" : "Not this time");
        ImGui::PopFont();
        anchor("lesson:score");
        anchor(g.correct ? "lesson:result:right" : "lesson:result:wrong");
        // What the percentage measures: closeness, not a grade of the reasoning.
        if (q.kind != demos::QuestionKind::Choice) {
            ImGui::Text("closeness %.0f%%", 100 * g.score);
            ImGui::SameLine();
            ImGui::TextDisabled("100%% within the tolerance (±%s), falling to 0%% at three tolerances away",
                                demos::lesson::format_number(g.tolerance).c_str());
            anchor("lesson:closeness");
        }
    }
    ImGui::Text("The engine: %s", g.truth_text.c_str());
    ImGui::SameLine();
    source_badge(skin().pal, g.truth_source);
    ImGui::TextDisabled("ran on %s", P.reveal.backend() == "cuda" ? "the GPU" : "the CPU reference");
    for (auto& n : g.notes) wrapped(n, skin().pal.warn);
    if (!presenter) {
        if (!g.feedback.empty()) wrapped(g.feedback, skin().pal.warn);
        if (!g.confidence_note.empty()) wrapped(g.confidence_note);
        anchor("lesson:feedback");
    } else if (q.kind == QuestionKind::Choice) {
        // The most popular wrong choice of the last vote gets its misconception on screen.
        const std::vector<int>& votes = (P.has_second ? P.second : P.first).per_choice;
        int best = -1;
        for (std::size_t i = 0; i < q.choices.size() && i < votes.size(); ++i)
            if (q.choices[i].key != g.right_key && votes[i] > 0 && (best < 0 || votes[i] > votes[std::size_t(best)]))
                best = int(i);
        if (best >= 0)
            wrapped("Most chosen wrong answer, " + q.choices[std::size_t(best)].key + ") (" +
                        std::to_string(votes[std::size_t(best)]) +
                        " votes): " + P.reveal.fill(q.choices[std::size_t(best)].feedback),
                    skin().pal.warn);
    }
    // The prediction as a ghost over the result.
    const demos::Result& r0 = P.reveal.results.at(0);
    if (q.kind == QuestionKind::Bars && !presenter) {
        lesson_draw::ghost_bars(g.truth_bars, P.answer.bars, body * 10);
        ImGui::TextDisabled("filled: measured; dashed: your prediction, scaled to the same total");
    } else if (q.kind == QuestionKind::Timeline) {
        double t1 = std::max(q.max, r0.pipeline.total_ms);
        double marker = presenter ? -1 : P.answer.value;
        lesson_draw::timeline(&r0, q.min, t1, &marker, g.truth, body * 9, false);
        ImGui::TextDisabled("solid line: the engine's answer; dashed: your mark; hatched spans are modelled");
    } else if (q.kind != QuestionKind::Choice && !presenter) {
        lesson_draw::ghost_number(q.min, q.max > q.min ? q.max : g.truth * 2, g.truth, g.tolerance, g.guess,
                                  q.unit.empty() ? "" : " " + q.unit, body * 4);
    }
    numbers_table(P, L);
    // The expert-ffn experiment's sweep, when it ran; without a GPU also the engine's FFN as saved on one.
    const demos::ExpertRoofline* saved =
        P.reveal.results.empty() ? nullptr : ses.saved_roofline(demos::roofline_shape(P.reveal.results[0].scenario));
    roofline::lesson_reveal_chart(P.reveal, body * 14, saved);
    ImGui::Separator();
    ImGui::PushFont(skin().fonts.bold);
    wrapped(P.reveal.fill(L.formula));
    ImGui::PopFont();
    // Slide-ready: the explanation's opening, the rest behind "more"; the method's note after the reveal.
    const std::string expl = P.reveal.fill(L.explanation);
    wrapped(demos::explanation_opening(expl));
    anchor("lesson:explanation");
    const std::string more = demos::explanation_more(expl);
    if (!more.empty() && ImGui::TreeNode("more")) {
        wrapped(more);
        ImGui::TreePop();
    }
    if (!L.note.empty()) wrapped("How this was measured: " + P.reveal.fill(L.note), skin().pal.text_dim);
    if (!L.try_next.empty()) {
        ImGui::Separator();
        ImGui::TextUnformatted("Try next");
        for (std::size_t i = 0; i < L.try_next.size(); ++i) {
            ImGui::PushID(int(i));
            if (ImGui::Button("Predict")) {
                cmd.start_lesson(P.current, int(i) + 1);
                ImGui::PopID();
                return;
            }
            anchor("lesson:try:" + std::to_string(i + 1));
            ImGui::SameLine();
            if (ImGui::Button("Load into controls")) {
                demos::Scenario s = demos::apply_overrides(L.scenario, L.try_next[i].overrides, L.source);
                cmd.set_scenario(s, "", true);
            }
            anchor("lesson:load:" + std::to_string(i + 1));
            ImGui::SameLine();
            wrapped(L.try_next[i].prompt);
            ImGui::PopID();
        }
    }
    ImGui::Separator();
    if (ImGui::Button("Play again")) cmd.start_lesson(P.current, P.variation);
    ImGui::SameLine();
    if (P.current + 1 < int(P.set.lessons.size()) && ImGui::Button("Next lesson")) cmd.start_lesson(P.current + 1, 0);
    anchor("lesson:next");
}

// While the reveal's runs and then its experiment compute on the runner: what is running, how far, and any error.
void computing(const Session& ses, const LessonSession& P, Commands& cmd, const demos::Lesson& L) {
    if (!P.run_error.empty()) {
        wrapped("The run failed: " + P.run_error, skin().pal.bad);
        anchor("lesson:error");
        if (ImGui::Button("Try again")) cmd.simple(CommandKind::RetryLesson);
        anchor("lesson:retry");
        return;
    }
    const RunnerStatus& st = ses.status();
    if (P.phase == LessonPhase::Measuring) {
        const bool gpu = !P.results.empty() && P.results[0] && P.results[0]->backend == "cuda";
        wrapped("Measuring " + L.experiment + (gpu ? " on the GPU…" : " (no GPU: the model, labelled)…"));
        anchor("lesson:measuring");
    } else {
        ImGui::TextDisabled("Running the scenario…");
        anchor("lesson:running");
    }
    if (st.busy) {
        ImGui::ProgressBar(st.fraction, ImVec2(std::min(ImGui::GetContentRegionAvail().x, skin().fonts.body_px * 24), 0),
                           st.what.c_str());
    }
}

void player(const Session& ses, const LessonSession& P, ViewState& vs, Commands& cmd) {
    LessonDraft& D = vs.lesson;
    const demos::Lesson* lp = P.lesson();
    if (!lp) {
        ImGui::TextWrapped(
            "Pick a lesson on the left. Each one asks you to predict what the engine will show, and "
            "how sure you are, before it runs the scenario for real.");
        return;
    }
    const demos::Lesson& L = *lp;
    // Committed rounds keep the mode they were committed in.
    const bool presenter = P.phase == LessonPhase::Predict ? vs.presenter : P.presenter;
    ImGui::PushFont(skin().fonts.bold);
    wrapped(L.title + (P.variation > 0 ? "  (try next " + std::to_string(P.variation) + ")" : ""));
    ImGui::PopFont();
    if (L.concept_number > 0)
        ImGui::TextDisabled("concept %d · %s question", L.concept_number, demos::question_kind_name(L.question.kind));
    // Text before the reveal is filled from the scenario's inputs, so it stays true in every variation.
    auto before = [&](const std::string& text) {
        try {
            return demos::fill_before(L, P.scenario, P.params, text);
        } catch (const std::exception&) {
            return text;
        }
    };
    wrapped(before(L.intro));
    if (P.variation > 0) wrapped("Variation: " + L.try_next[std::size_t(P.variation - 1)].prompt, skin().pal.warn);
    char line[256];
    const demos::Scenario& s = P.scenario;
    std::snprintf(line, sizeof line, "T=%lld  E=%d  k=%d  d=%d  skew=%s  cf=%g  ranks=%d  m=%d  L=%d  n_a=%d",
                  static_cast<long long>(s.tokens), s.experts, s.top_k, s.hidden, s.skew.c_str(), s.capacity_factor,
                  s.ranks, s.micro_batches, s.layers, s.attention_replicas);
    ImGui::TextDisabled("%s", line);
    ImGui::Separator();
    ImGui::PushFont(skin().fonts.bold);  // presenter mode already scales every font up
    wrapped(before(L.question.prompt));
    ImGui::PopFont();
    anchor("lesson:prompt");

    const bool locked = P.phase != LessonPhase::Predict;
    if (presenter) {
        if (L.question.kind == QuestionKind::Choice)
            for (auto& c : L.question.choices) wrapped(c.key + ")  " + before(c.text));
        ImGui::TextUnformatted("First vote (typed by the instructor):");
        lesson_input::class_votes(D.votes, D.guesses, sizeof D.guesses, L, locked, "votes");
        lesson_input::class_confidence(&D.class_confidence, locked);
    } else {
        lesson_input::prediction(D, P.scenario, L, locked);
        lesson_input::confidence(D, locked);
    }
    if (P.phase == LessonPhase::Predict) {
        const std::string vote_problem = presenter ? lesson_input::votes_problem(L, D.votes, D.guesses) : "";
        bool ready = presenter ? vote_problem.empty() && D.class_confidence >= 1
                               : D.answer_valid && D.answer.confidence >= 1;
        if (!ready) ImGui::BeginDisabled();
        const bool go = ImGui::Button(presenter ? "Lock the votes" : "Commit prediction and run") ||
                        (ready && ImGui::GetIO().KeyCtrl && ImGui::IsKeyPressed(GLFW_KEY_ENTER, false));
        if (!ready) ImGui::EndDisabled();
        anchor("lesson:commit");
        if (!ready) {
            ImGui::SameLine();
            ImGui::TextDisabled("%s", !presenter                ? "predict and choose a confidence first"
                                      : !vote_problem.empty() ? vote_problem.c_str()
                                                              : "enter the class's confidence first");
        }
        if (go && ready) {
            // The session runs the reveal and, outside presenter mode, puts the scenario into the controls only
            // now: before, the other views would give the answer away.
            Command c;
            c.kind = CommandKind::CommitLesson;
            c.answer = D.answer;
            c.presenter = presenter;
            c.votes = D.votes;
            c.text = D.guesses;
            c.confidence = D.class_confidence;
            cmd.push(std::move(c));
            if (!presenter) open_reveal_view(vs, L.view);
        }
        return;
    }
    if (P.phase == LessonPhase::Running || P.phase == LessonPhase::Measuring) {
        computing(ses, P, cmd, L);
        return;
    }
    if (P.phase == LessonPhase::Hidden) {
        lesson_class::hidden(P, vs, cmd, L);
        return;
    }
    revealed(ses, P, cmd, L);
}

// Until the prediction is committed (in presenter mode: until the reveal) the other views would give the answer
// away, so a curtain covers everything but the lesson window and the menu bar. It hides; it does not block input.
void curtain(ImVec2 a, ImVec2 b) {
    const Palette& pal = skin().pal;
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    const ImVec2 o = vp->WorkPos, e(vp->WorkPos.x + vp->WorkSize.x, vp->WorkPos.y + vp->WorkSize.y);
    a = ImVec2(std::clamp(a.x, o.x, e.x), std::clamp(a.y, o.y, e.y));
    b = ImVec2(std::clamp(b.x, o.x, e.x), std::clamp(b.y, o.y, e.y));
    ImDrawList* dl = ImGui::GetForegroundDrawList();
    // Opaque, in the colour the window clears to, so nothing shows through.
    const ImU32 c = pal.light ? IM_COL32(237, 237, 237, 255) : IM_COL32(15, 17, 19, 255);
    dl->AddRectFilled(o, ImVec2(e.x, a.y), c);
    dl->AddRectFilled(ImVec2(o.x, b.y), e, c);
    dl->AddRectFilled(ImVec2(o.x, a.y), ImVec2(a.x, b.y), c);
    dl->AddRectFilled(ImVec2(b.x, a.y), ImVec2(e.x, b.y), c);
    const char* lines[] = {"Predict first.", "The other views show the answer:", "they come back when you commit."};
    const bool left = a.x - o.x >= e.x - b.x;
    const float x0 = left ? o.x : b.x, x1 = left ? a.x : e.x;
    float y = o.y + (e.y - o.y) * 0.4f;
    for (const char* l : lines) {
        ImVec2 ts = ImGui::CalcTextSize(l);
        if (ts.x < x1 - x0 - 16) dl->AddText(ImVec2((x0 + x1 - ts.x) * 0.5f, y), pal.text_dim, l);
        y += ts.y * 1.4f;
    }
}

}  // namespace

void open_reveal_view(ViewState& vs, const std::string& view) {
    if (view == "loads") vs.show_loads = true;
    if (view == "comm") vs.show_comm = true;
    if (view == "dispatch") vs.show_dispatch = true;
    if (view == "timeline" || view == "pipeline") vs.show_timeline = true;
}

void show_lesson(const Session& ses, ViewState& vs, Commands& cmd, bool* p_open) {
    if (vs.snapshot || !*p_open) return;
    const LessonSession& P = ses.lesson();
    sync_draft(vs.lesson, P);
    LessonDraft& D = vs.lesson;
    const Fonts& fonts = skin().fonts;

    // Beside the views at first; in presenter mode the lesson takes the whole screen, the class reads it.
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    const ImGuiCond cond = D.presenter_layout != vs.presenter ? ImGuiCond_Always : ImGuiCond_FirstUseEver;
    D.presenter_layout = vs.presenter;
    if (vs.presenter) {
        ImGui::SetNextWindowPos(vp->WorkPos, cond);
        ImGui::SetNextWindowSize(vp->WorkSize, cond);
    } else {
        // The right of the work area, full height: the curtain covers the rest until the prediction is in.
        ImGui::SetNextWindowPos(ImVec2(vp->WorkPos.x + vp->WorkSize.x * 0.30f, vp->WorkPos.y), cond);
        ImGui::SetNextWindowSize(ImVec2(vp->WorkSize.x * 0.70f, vp->WorkSize.y), cond);
    }
    ImVec2 win_a(0, 0), win_b(0, 0);
    if (begin_view(vs, ViewId::Lesson, p_open)) {
        win_a = ImGui::GetWindowPos();
        win_b = ImVec2(win_a.x + ImGui::GetWindowSize().x, win_a.y + ImGui::GetWindowSize().y);
        if (!P.loaded) {
            ImGui::TextDisabled("Reading the lessons…");
        } else {
            const float list_w = std::min(ImGui::GetContentRegionAvail().x * 0.3f, fonts.body_px * 16);
            ImGui::BeginChild("##lesson_list", ImVec2(list_w, 0), true);
            lesson_list(P, cmd);
            if (!P.progress_error.empty()) wrapped(P.progress_error, skin().pal.warn);
            ImGui::EndChild();
            ImGui::SameLine();
            ImGui::BeginChild("##lesson_player", ImVec2(0, 0), false);
            ImGui::PushTextWrapPos(0);
            player(ses, P, vs, cmd);
            ImGui::PopTextWrapPos();
            ImGui::EndChild();
        }
    }
    ImGui::End();
    D.curtain = *p_open && win_b.x > win_a.x && P.lesson() && P.phase != LessonPhase::Revealed;
    if (D.curtain) curtain(win_a, win_b);
}

}  // namespace moelab_gui
