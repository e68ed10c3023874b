// The lesson view: pick a lesson, predict and say how sure you are, commit; only then does the reveal run on the
// player's runner thread. Then the ghost, the score, the misconception, the explanation and try-next.
#include "app/gui/view_lesson.hpp"

#include <GLFW/glfw3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "app/gui/app.hpp"
#include "app/gui/runner.hpp"
#include "demos/lesson_expr.hpp"
#include "demos/lesson_numbers.hpp"

namespace moelab_gui {

LessonPlayer::LessonPlayer() = default;
LessonPlayer::~LessonPlayer() = default;

namespace {

using demos::QuestionKind;

const demos::Lesson* current(const LessonPlayer& P) {
    return P.current >= 0 && P.current < int(P.set.lessons.size()) ? &P.set.lessons[std::size_t(P.current)] : nullptr;
}

void load(LessonPlayer& P, const App& app) {
    P.set = demos::load_lessons(demos::lessons_dir(""));
    // Progress lives beside the app's preferences (so --config-dir moves it too).
    if (!app.prefs_path.empty())
        P.progress_path = app.prefs_path.substr(0, app.prefs_path.rfind('/')) + "/progress.toml";
    else
        P.progress_path = demos::default_progress_path();
    try {
        P.progress = demos::Progress::load(P.progress_path);
    } catch (const std::exception& e) {
        P.progress_error = e.what();
    }
    P.loaded = true;
}

// A fresh round on lesson `i`, variation `v` (0: the lesson itself), with nothing predicted yet.
void start(LessonPlayer& P, int i, int v) {
    if (P.runner) P.runner->cancel();
    P.current = i;
    P.variation = v;
    const demos::Lesson& L = P.set.lessons[std::size_t(i)];
    P.scenario = L.scenario;
    P.params = L.params;
    if (v > 0) {
        const demos::TryNext& t = L.try_next[std::size_t(v - 1)];
        P.scenario = demos::apply_overrides(L.scenario, t.overrides, L.source);
        for (auto& [k, x] : t.params) P.params[k] = x;
    }
    const demos::LessonQuestion& q = L.question;
    P.phase = LessonPhase::Predict;
    P.answer = {};
    P.answer_valid = false;
    P.answer_error.clear();
    P.choice = -1;
    P.slider = float(q.min);
    P.marker = -1;
    P.text[0] = 0;
    P.bars.clear();
    if (q.kind == QuestionKind::Bars) {
        // Everyone starts from the balanced picture: that is the belief to test.
        const int n = demos::bars_count(q, P.scenario);
        P.bars.assign(std::size_t(n), float(double(P.scenario.tokens) * P.scenario.top_k / std::max(1, n)));
    }
    P.votes.assign(q.choices.size(), 0);
    P.guesses[0] = 0;
    P.class_right = P.class_total = 0;
    P.results.clear();
    P.run_error.clear();
    P.reveal = demos::LessonReveal{};
    P.grade = demos::LessonGrade{};
}

void load_into_app(App& app, const demos::Scenario& s) {
    const std::string backend = app.st.scenario.backend;  // the user's choice of backend stands
    app.st.scenario = s;
    app.st.scenario.backend = backend;
    app.st.preset.clear();
    app.st.invalid = app.st.scenario.validate();
    app.rerun(0);
}

void open_reveal_view(ViewState& vs, const std::string& view) {
    if (view == "loads") vs.show_loads = true;
    if (view == "comm") vs.show_comm = true;
    if (view == "dispatch") vs.show_dispatch = true;
    if (view == "timeline" || view == "pipeline") vs.show_timeline = true;
}

void run(LessonPlayer& P, App& app) {
    const demos::Lesson& L = *current(P);
    if (!P.runner) P.runner = std::make_unique<Runner>();
    std::vector<demos::Scenario> scenarios = demos::lesson_scenarios(L, P.scenario, app.st.scenario.backend);
    std::vector<Job> jobs;
    for (std::size_t i = 0; i < scenarios.size(); ++i) jobs.push_back({Slot::Routing, L.demo, scenarios[i], 0, int(i)});
    P.results.assign(scenarios.size(), std::nullopt);
    P.run_error.clear();
    P.generation = P.runner->submit(std::move(jobs), 0, 0);
    P.phase = LessonPhase::Running;
}

// The class's answers (presenter mode): how many of them the engine's numbers make right.
void count_class(LessonPlayer& P, const demos::Lesson& L) {
    const demos::LessonQuestion& q = L.question;
    P.class_right = P.class_total = 0;
    if (q.kind == QuestionKind::Choice) {
        for (std::size_t i = 0; i < q.choices.size(); ++i) {
            P.class_total += P.votes[i];
            if (q.choices[i].key == P.grade.right_key) P.class_right += P.votes[i];
        }
        return;
    }
    std::stringstream ss(P.guesses);
    for (std::string item; std::getline(ss, item, ',');) {
        char* end = nullptr;
        double v = std::strtod(item.c_str(), &end);
        if (end == item.c_str()) continue;
        ++P.class_total;
        P.class_right += std::fabs(v - P.grade.truth) <= P.grade.tolerance * (1 + 1e-12);
    }
}

// Collects the runner's results; once all are in, computes the reveal, grades it and records progress.
void advance(LessonPlayer& P, App& app) {
    if (!P.runner || P.phase != LessonPhase::Running) return;
    for (JobResult& r : P.runner->take_results()) {
        if (r.generation != P.generation) continue;
        if (!r.ok) {
            P.run_error = r.error;
            continue;
        }
        if (r.job.sweep_index >= 0 && r.job.sweep_index < int(P.results.size()))
            P.results[std::size_t(r.job.sweep_index)] = std::move(r.result);
    }
    RunnerStatus st = P.runner->status();
    // Scripts wait with wait_idle; let them see the player's runs as the app's.
    app.st.status.busy = app.st.status.busy || st.busy || st.pending;
    if (!P.run_error.empty()) return;
    for (auto& r : P.results)
        if (!r) return;
    const demos::Lesson& L = *current(P);
    try {
        std::vector<demos::Result> results;
        for (auto& r : P.results) results.push_back(std::move(*r));
        demos::make_reveal(L, P.scenario, P.params, std::move(results), &P.reveal);
        if (app.vs.presenter) {
            P.grade = demos::grade(L, P.reveal, demos::LessonAnswer{});
            count_class(P, L);
            P.phase = LessonPhase::Hidden;
            return;
        }
        P.grade = demos::grade(L, P.reveal, P.answer);
        P.phase = LessonPhase::Revealed;
        std::string text = L.question.kind == QuestionKind::Choice ? P.answer.choice : std::string(P.text);
        if (text.empty()) text = demos::lesson::format_number(P.answer.value);
        P.progress.record(L.id, P.grade.correct, P.grade.score, P.answer.confidence, text);
        P.progress.save(P.progress_path);
        P.progress_error.clear();
    } catch (const std::exception& e) {
        if (P.phase == LessonPhase::Running) P.run_error = e.what();
        else P.progress_error = std::string("progress not saved: ") + e.what();
    }
}

void wrapped(const std::string& text, ImU32 color = 0) {
    if (color) ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(color));
    ImGui::TextWrapped("%s", text.c_str());
    if (color) ImGui::PopStyleColor();
}

void source_badge(const ViewState& vs, demos::lesson::Source s) {
    switch (s) {
        case demos::lesson::Source::Input: ImGui::TextDisabled("[input]"); break;
        case demos::lesson::Source::MeasuredGpu: provenance_badge(vs.pal, demos::Provenance::MeasuredGpu); break;
        case demos::lesson::Source::MeasuredCpu: provenance_badge(vs.pal, demos::Provenance::MeasuredCpu); break;
        case demos::lesson::Source::Emulated: provenance_badge(vs.pal, demos::Provenance::Emulated); break;
        case demos::lesson::Source::Modeled: provenance_badge(vs.pal, demos::Provenance::Modeled); break;
    }
}

void lesson_list(LessonPlayer& P, ViewState& vs) {
    int played = 0;
    for (auto& l : P.set.lessons) played += P.progress.done(l.id);
    ImGui::Text("%d of %zu played", played, P.set.lessons.size());
    ImGui::ProgressBar(P.set.lessons.empty() ? 0.f : float(played) / float(P.set.lessons.size()), ImVec2(-1, 0), "");
    ImGui::Separator();
    for (std::size_t i = 0; i < P.set.lessons.size(); ++i) {
        const demos::Lesson& l = P.set.lessons[i];
        auto it = P.progress.lessons.find(l.id);
        const char* mark = it == P.progress.lessons.end() ? "·" : (it->second.last_correct ? "✓" : "✗");
        std::string label = std::string(mark) + " " + (l.concept > 0 ? std::to_string(l.concept) + ". " : "") + l.title;
        // An explicit width keeps the item's rectangle inside the list, whatever the title's length.
        if (ImGui::Selectable(label.c_str(), P.current == int(i), 0, ImVec2(ImGui::GetContentRegionAvail().x, 0)))
            start(P, int(i), 0);
        anchor(vs, "lesson:item:" + l.id);
        if (ImGui::IsItemHovered()) {
            std::string tip = l.id + " · " + demos::question_kind_name(l.question.kind) + " question";
            if (it != P.progress.lessons.end())
                tip += "\nplayed " + std::to_string(it->second.attempts) + "×, right " +
                       std::to_string(it->second.correct) + "×, last confidence " +
                       std::to_string(it->second.last_confidence) + "/5";
            if (l.source.rfind("built-in:", 0) != 0) tip += "\nfrom " + l.source;
            wrapped_tooltip(tip.c_str());
        }
    }
    if (!P.set.problems.empty()) {
        ImGui::Separator();
        ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(vs.pal.warn), "%zu lesson file problem(s)", P.set.problems.size());
        if (ImGui::IsItemHovered()) {
            std::string t;
            for (auto& p : P.set.problems) t += p.str() + "\n";
            wrapped_tooltip(t.c_str());
        }
    }
}

void numbers_table(LessonPlayer& P, ViewState& vs, const demos::Lesson& L) {
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
        source_badge(vs, n.source);
        const demos::lesson::MetricInfo* m = nullptr;
        std::string base = expr.substr(expr.find('.') == std::string::npos ? 0 : expr.find('.') + 1);
        for (auto& mi : demos::lesson::metric_catalog())
            if (base == mi.name) m = &mi;
        if (m) {
            ImGui::SameLine();
            ImGui::TextDisabled("%s %s", m->unit, m->help);
        }
    }
    ImGui::PopTextWrapPos();
    ImGui::EndTable();
}

void revealed(LessonPlayer& P, App& app, const demos::Lesson& L) {
    ViewState& vs = app.vs;
    const demos::LessonQuestion& q = L.question;
    const demos::LessonGrade& g = P.grade;
    const float body = vs.fonts.body_px;
    const bool presenter = vs.presenter;
    ImGui::Separator();
    if (presenter) {
        ImGui::PushFont(vs.fonts.big);
        ImGui::Text("%d of %d right", P.class_right, P.class_total);
        ImGui::PopFont();
        anchor(vs, "lesson:score");
    } else {
        ImGui::PushFont(vs.fonts.big);
        ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(g.correct ? vs.pal.ok : vs.pal.bad), "%s  %.0f%%",
                           g.correct ? "Right" : "Not this time", 100 * g.score);
        ImGui::PopFont();
        anchor(vs, "lesson:score");
        anchor(vs, g.correct ? "lesson:result:right" : "lesson:result:wrong");
    }
    ImGui::Text("The engine: %s", g.truth_text.c_str());
    ImGui::SameLine();
    source_badge(vs, g.truth_source);
    ImGui::TextDisabled("ran on %s", P.reveal.backend() == "cuda" ? "the GPU" : "the CPU reference");
    for (auto& n : g.notes) wrapped(n, vs.pal.warn);
    if (!presenter) {
        if (!g.feedback.empty()) wrapped(g.feedback, vs.pal.warn);
        if (!g.confidence_note.empty()) wrapped(g.confidence_note);
        anchor(vs, "lesson:feedback");
    } else if (q.kind == QuestionKind::Choice) {
        // The most popular wrong choice gets its misconception on screen.
        int best = -1;
        for (std::size_t i = 0; i < q.choices.size(); ++i)
            if (q.choices[i].key != g.right_key && P.votes[i] > 0 && (best < 0 || P.votes[i] > P.votes[std::size_t(best)]))
                best = int(i);
        if (best >= 0)
            wrapped("Most chosen wrong answer, " + q.choices[std::size_t(best)].key + ") (" +
                        std::to_string(P.votes[std::size_t(best)]) + " votes): " +
                        P.reveal.fill(q.choices[std::size_t(best)].feedback),
                    vs.pal.warn);
    }
    // The prediction as a ghost over the result.
    const demos::Result& r0 = P.reveal.results.at(0);
    if (q.kind == QuestionKind::Bars && !presenter) {
        lesson_draw::ghost_bars(vs, g.truth_bars, P.answer.bars, body * 10);
        ImGui::TextDisabled("filled: measured; dashed: your prediction, scaled to the same total");
    } else if (q.kind == QuestionKind::Timeline) {
        double t1 = std::max(q.max, r0.pipeline.total_ms);
        double marker = presenter ? -1 : P.answer.value;
        lesson_draw::timeline(vs, &r0, q.min, t1, &marker, g.truth, body * 9, false);
        ImGui::TextDisabled("solid line: the engine's answer; dashed: your mark; hatched spans are modelled");
    } else if (q.kind != QuestionKind::Choice && !presenter) {
        lesson_draw::ghost_number(vs, q.min, q.max > q.min ? q.max : g.truth * 2, g.truth, g.tolerance, g.guess,
                                  q.unit.empty() ? "" : " " + q.unit, body * 4);
    }
    numbers_table(P, vs, L);
    ImGui::Separator();
    ImGui::PushFont(vs.fonts.bold);
    wrapped(P.reveal.fill(L.formula));
    ImGui::PopFont();
    wrapped(P.reveal.fill(L.explanation));
    anchor(vs, "lesson:explanation");
    if (!L.try_next.empty()) {
        ImGui::Separator();
        ImGui::TextUnformatted("Try next");
        for (std::size_t i = 0; i < L.try_next.size(); ++i) {
            ImGui::PushID(int(i));
            if (ImGui::Button("Predict")) {
                start(P, P.current, int(i) + 1);
                ImGui::PopID();
                return;
            }
            anchor(vs, "lesson:try:" + std::to_string(i + 1));
            ImGui::SameLine();
            if (ImGui::Button("Load into controls")) {
                demos::Scenario s = demos::apply_overrides(L.scenario, L.try_next[i].overrides, L.source);
                load_into_app(app, s);
                app.toast("Loaded try-next " + std::to_string(i + 1) + " of " + L.id + " into the controls");
            }
            anchor(vs, "lesson:load:" + std::to_string(i + 1));
            ImGui::SameLine();
            wrapped(L.try_next[i].prompt);
            ImGui::PopID();
        }
    }
    ImGui::Separator();
    if (ImGui::Button("Play again")) start(P, P.current, P.variation);
    ImGui::SameLine();
    if (P.current + 1 < int(P.set.lessons.size()) && ImGui::Button("Next lesson")) start(P, P.current + 1, 0);
    anchor(vs, "lesson:next");
}

void player(LessonPlayer& P, App& app) {
    ViewState& vs = app.vs;
    const demos::Lesson* lp = current(P);
    if (!lp) {
        ImGui::TextWrapped("Pick a lesson on the left. Each one asks you to predict what the engine will show, and "
                           "how sure you are, before it runs the scenario for real.");
        return;
    }
    const demos::Lesson& L = *lp;
    const bool presenter = vs.presenter;
    ImGui::PushFont(vs.fonts.bold);
    wrapped(L.title + (P.variation > 0 ? "  (try next " + std::to_string(P.variation) + ")" : ""));
    ImGui::PopFont();
    if (L.concept > 0) ImGui::TextDisabled("concept %d of 10 · %s question", L.concept, demos::question_kind_name(L.question.kind));
    wrapped(L.intro);
    if (P.variation > 0) wrapped("Variation: " + L.try_next[std::size_t(P.variation - 1)].prompt, vs.pal.warn);
    char line[256];
    const demos::Scenario& s = P.scenario;
    std::snprintf(line, sizeof line, "T=%lld  E=%d  k=%d  d=%d  skew=%s  cf=%g  ranks=%d  m=%d  L=%d  n_a=%d",
                  static_cast<long long>(s.tokens), s.experts, s.top_k, s.hidden, s.skew.c_str(), s.capacity_factor,
                  s.ranks, s.micro_batches, s.layers, s.attention_replicas);
    ImGui::TextDisabled("%s", line);
    if (!L.note.empty()) wrapped("Note: " + L.note, vs.pal.text_dim);
    ImGui::Separator();
    ImGui::PushFont(vs.fonts.bold);  // presenter mode already scales every font up
    wrapped(L.question.prompt);
    ImGui::PopFont();
    anchor(vs, "lesson:prompt");

    const bool locked = P.phase != LessonPhase::Predict;
    if (presenter) {
        if (L.question.kind == QuestionKind::Choice)
            for (auto& c : L.question.choices) wrapped(c.key + ")  " + c.text);
        lesson_input::class_votes(P, vs, L, locked);
    } else {
        lesson_input::prediction(P, vs, L, locked);
        lesson_input::confidence(P, vs, locked);
    }
    if (P.phase == LessonPhase::Predict) {
        bool ready = presenter ? (L.question.kind == QuestionKind::Choice
                                      ? std::any_of(P.votes.begin(), P.votes.end(), [](int v) { return v > 0; })
                                      : P.guesses[0] != 0)
                               : P.answer_valid && P.answer.confidence >= 1;
        if (!ready) ImGui::BeginDisabled();
        const bool go = ImGui::Button(presenter ? "Lock the votes" : "Commit prediction and run") ||
                        (ready && ImGui::GetIO().KeyCtrl && ImGui::IsKeyPressed(GLFW_KEY_ENTER, false));
        if (!ready) ImGui::EndDisabled();
        anchor(vs, "lesson:commit");
        if (!ready) {
            ImGui::SameLine();
            ImGui::TextDisabled(presenter ? "enter the votes first" : "predict and choose a confidence first");
        }
        if (go && ready) {
            run(P, app);
            // The scenario goes into the controls only now: before, the other views would give the answer away.
            if (!presenter) {
                load_into_app(app, P.scenario);
                open_reveal_view(vs, L.view);
            }
        }
        return;
    }
    if (P.phase == LessonPhase::Running) {
        if (!P.run_error.empty()) {
            wrapped("The run failed: " + P.run_error, vs.pal.bad);
            if (ImGui::Button("Try again")) run(P, app);
            return;
        }
        ImGui::TextDisabled("Running the scenario…");
        return;
    }
    if (P.phase == LessonPhase::Hidden) {
        ImGui::Separator();
        ImGui::PushFont(vs.fonts.big);
        ImGui::Text("%d of %d right (%.0f%%)", P.class_right, P.class_total,
                    P.class_total > 0 ? 100.0 * P.class_right / P.class_total : 0.0);
        ImGui::PopFont();
        wrapped(demos::class_suggestion(P.class_right, P.class_total));
        anchor(vs, "lesson:suggestion");
        ImGui::TextDisabled("The answer stays hidden until you reveal it.");
        if (ImGui::Button("Reveal") || (ImGui::GetIO().KeyCtrl && ImGui::IsKeyPressed(GLFW_KEY_ENTER, false))) {
            P.phase = LessonPhase::Revealed;
            load_into_app(app, P.scenario);
            open_reveal_view(vs, L.view);
        }
        anchor(vs, "lesson:reveal");
        ImGui::SameLine();
        if (ImGui::Button("Vote again")) P.phase = LessonPhase::Predict;
        return;
    }
    revealed(P, app, L);
}

// Until the prediction is committed (in presenter mode: until the reveal) the other views would give the answer
// away, so a curtain covers everything but the lesson window and the menu bar. It hides; it does not block input.
void curtain(const ViewState& vs, ImVec2 a, ImVec2 b) {
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    const ImVec2 o = vp->WorkPos, e(vp->WorkPos.x + vp->WorkSize.x, vp->WorkPos.y + vp->WorkSize.y);
    a = ImVec2(std::clamp(a.x, o.x, e.x), std::clamp(a.y, o.y, e.y));
    b = ImVec2(std::clamp(b.x, o.x, e.x), std::clamp(b.y, o.y, e.y));
    ImDrawList* dl = ImGui::GetForegroundDrawList();
    // Opaque, in the colour the window clears to, so nothing shows through.
    const ImU32 c = vs.pal.light ? IM_COL32(237, 237, 237, 255) : IM_COL32(15, 17, 19, 255);
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
        if (ts.x < x1 - x0 - 16) dl->AddText(ImVec2((x0 + x1 - ts.x) * 0.5f, y), vs.pal.text_dim, l);
        y += ts.y * 1.4f;
    }
}

}  // namespace

void show_lesson(App& app, bool* p_open) {
    ViewState& vs = app.vs;
    if (vs.snapshot) return;
    if (!ImGui::GetIO().WantTextInput && ImGui::IsKeyPressed(GLFW_KEY_F3, false)) *p_open = !*p_open;
    if (!app.lesson) app.lesson = std::make_shared<LessonPlayer>();
    LessonPlayer& P = *app.lesson;
    advance(P, app);
    if (!*p_open) return;
    if (!P.loaded) load(P, app);

    // Beside the views at first; in presenter mode the lesson takes the whole screen, the class reads it.
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    const ImGuiCond cond = P.presenter_layout != vs.presenter ? ImGuiCond_Always : ImGuiCond_FirstUseEver;
    P.presenter_layout = vs.presenter;
    if (vs.presenter) {
        ImGui::SetNextWindowPos(vp->WorkPos, cond);
        ImGui::SetNextWindowSize(vp->WorkSize, cond);
    } else {
        ImGui::SetNextWindowPos(ImVec2(vp->WorkPos.x + vp->WorkSize.x * 0.40f, vp->WorkPos.y + vp->WorkSize.y * 0.06f),
                                cond);
        ImGui::SetNextWindowSize(ImVec2(vp->WorkSize.x * 0.58f, vp->WorkSize.y * 0.90f), cond);
    }
    ImVec2 win_a(0, 0), win_b(0, 0);
    if (ImGui::Begin("Lessons", p_open)) {
        view_begun(vs, "lesson");
        win_a = ImGui::GetWindowPos();
        win_b = ImVec2(win_a.x + ImGui::GetWindowSize().x, win_a.y + ImGui::GetWindowSize().y);
        const float list_w = std::min(ImGui::GetContentRegionAvail().x * (vs.presenter ? 0.22f : 0.32f),
                                      vs.fonts.body_px * 16);
        ImGui::BeginChild("##lesson_list", ImVec2(list_w, 0), true);
        lesson_list(P, vs);
        if (!P.progress_error.empty()) wrapped(P.progress_error, vs.pal.warn);
        ImGui::EndChild();
        ImGui::SameLine();
        ImGui::BeginChild("##lesson_player", ImVec2(0, 0), false);
        ImGui::PushTextWrapPos(0);
        player(P, app);
        ImGui::PopTextWrapPos();
        ImGui::EndChild();
    }
    ImGui::End();
    if (*p_open && win_b.x > win_a.x && current(P) && P.phase != LessonPhase::Revealed) curtain(vs, win_a, win_b);
}

}  // namespace moelab_gui
