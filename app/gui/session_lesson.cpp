// The Session's lesson: start a round, commit a prediction (or a class's votes), run the lesson's scenarios on the
// one runner, measure its experiment there too (never on the UI thread: on a GPU it takes seconds), grade, save the
// progress. Presenter mode adds the class's second vote after discussion and saves both votes as the terminal's
// `--class` player does.
#include <algorithm>

#include "app/gui/session.hpp"
#include "demos/lesson_expr.hpp"
#include "demos/lesson_numbers.hpp"

namespace moelab_gui {
std::string class_votes_line(const demos::Lesson& L, const std::vector<int>& votes, const std::string& guesses) {
    if (L.question.kind != demos::QuestionKind::Choice) return guesses;
    std::string line;  // every count given: a count per choice too many or too few is the counter's to refuse
    for (std::size_t i = 0; i < votes.size(); ++i) line += (i ? "," : "") + std::to_string(votes[i]);
    return line;
}

void Session::load_lessons() {
    if (lesson_.loaded || lesson_.loading) return;
    lesson_.loading = true;
    lessons_future_ = std::async(std::launch::async, [] { return demos::load_lessons(demos::lessons_dir("")); });
}

void Session::abandon_lesson_jobs() {
    if (lesson_abandon_) lesson_abandon_->store(true);
    lesson_abandon_ = std::make_shared<std::atomic<bool>>(false);
    lesson_pending_.clear();
    experiment_job_ = 0;
}

void Session::start_lesson(int index, int variation) {
    if (index < 0 || index >= int(lesson_.set.lessons.size())) return;
    const demos::Lesson& L = lesson_.set.lessons[std::size_t(index)];
    if (variation < 0 || variation > int(L.try_next.size())) return;
    abandon_lesson_jobs();  // a measurement of the lesson left behind stops at its next step; its result is dropped
    LessonSession& P = lesson_;
    P.current = index;
    P.variation = variation;
    ++P.round;
    P.scenario = L.scenario;
    P.params = L.params;
    if (variation > 0) {
        const demos::TryNext& t = L.try_next[std::size_t(variation - 1)];
        P.scenario = demos::apply_overrides(L.scenario, t.overrides, L.source);
        for (auto& [k, x] : t.params) P.params[k] = x;
    }
    P.phase = LessonPhase::Predict;
    P.presenter = false;
    P.answer = {};
    P.votes.clear();
    P.guesses.clear();
    P.class_confidence = 0;
    P.first = P.second = demos::ClassVotes{};
    P.has_second = false;
    P.vote_error.clear();
    P.results.clear();
    P.run_error.clear();
    P.reveal = demos::LessonReveal{};
    P.grade = demos::LessonGrade{};
}

std::vector<Job> Session::lesson_jobs() const {
    const demos::Lesson* L = lesson_.lesson();
    std::vector<Job> jobs;
    if (!L) return jobs;
    std::vector<demos::Scenario> scenarios = demos::lesson_scenarios(*L, lesson_.scenario, scenario_.backend);
    for (std::size_t i = 0; i < scenarios.size(); ++i) {
        Job j{Slot::Lesson, L->demo, scenarios[i]};
        j.owners = kOwnerLesson;
        j.lesson_index = int(i);
        j.abandon = lesson_abandon_;
        jobs.push_back(j);
    }
    return jobs;
}

void Session::commit_lesson(const demos::LessonAnswer& answer, bool presenter, const std::vector<int>& votes,
                            const std::string& guesses, double class_confidence) {
    LessonSession& P = lesson_;
    if (!P.lesson() || P.phase != LessonPhase::Predict) return;
    P.answer = answer;
    P.presenter = presenter;
    P.votes = votes;
    P.guesses = guesses;
    P.class_confidence = class_confidence;
    // The scenario goes into the controls only now (before, the other views would give the answer away); in
    // presenter mode only at the reveal. Either way the lesson's runs join the app's in one batch, and a run
    // that both need is done once.
    demos::Scenario s = P.scenario;
    s.backend = scenario_.backend;
    if (!presenter && !(s == scenario_)) {
        abandon_lesson_jobs();
        lesson_pending_ = lesson_jobs();
        P.results.assign(lesson_pending_.size(), std::nullopt);
        P.run_error.clear();
        P.phase = LessonPhase::Running;
        set_scenario(s);
        if (!runner_ || !invalid_.empty()) rerun(0);
        return;
    }
    retry_lesson();
}

void Session::submit_lesson_jobs() {
    if (!runner_) return;
    // Whatever the app still waits for goes on, in the same batch.
    if (status_.busy || status_.pending || !invalid_.empty()) {
        rerun(0);
    } else {
        runner_->submit(lesson_pending_, 0, 0);
        status_ = runner_->status();
    }
}

void Session::retry_lesson() {
    LessonSession& P = lesson_;
    if (!P.lesson()) return;
    abandon_lesson_jobs();
    lesson_pending_ = lesson_jobs();
    P.results.assign(lesson_pending_.size(), std::nullopt);
    P.run_error.clear();
    P.reveal = demos::LessonReveal{};
    P.phase = LessonPhase::Running;
    submit_lesson_jobs();
}

void Session::lesson_result(JobResult&& r) {
    LessonSession& P = lesson_;
    if (P.phase != LessonPhase::Running) return;
    // Only a result for one of this round's runs counts (a superseded batch may still deliver an old one).
    auto it = std::find_if(lesson_pending_.begin(), lesson_pending_.end(), [&](const Job& j) {
        return j.lesson_index == r.job.lesson_index && (serves(r.job, j) || serves(j, r.job));
    });
    if (it == lesson_pending_.end()) return;
    lesson_pending_.erase(it);
    if (!r.ok) {
        P.run_error = r.error;
        lesson_pending_.clear();
        return;
    }
    if (r.job.lesson_index >= 0 && r.job.lesson_index < int(P.results.size()))
        P.results[std::size_t(r.job.lesson_index)] = std::move(r.result);
    if (lesson_pending_.empty()) finish_lesson();
}

void Session::finish_lesson() {
    LessonSession& P = lesson_;
    const demos::Lesson& L = *P.lesson();
    for (auto& r : P.results)
        if (!r) return;
    if (L.experiment.empty()) {
        complete_reveal();
        return;
    }
    // The experiment times things (seconds on a GPU): a job on the runner, between the app's runs (one at a time,
    // so nothing else runs on the GPU while it times), never on this thread. It finishes even when an edit starts
    // a newer batch, and stops when the student leaves.
    auto in = std::make_shared<Job::ExperimentInput>();
    in->lesson = L;
    for (auto& r : P.results) in->results.push_back(*r);
    in->params = P.params;
    Job j{Slot::LessonExperiment, L.demo, P.scenario};
    j.owners = kOwnerLesson;
    j.finish_when_superseded = true;
    j.experiment = std::move(in);
    j.abandon = lesson_abandon_;
    j.id = experiment_job_ = ++next_job_id_;
    lesson_pending_ = {j};
    P.phase = LessonPhase::Measuring;
    // Next on the runner, inside the batch that runs now: the app's runs still to come are not restarted.
    if (runner_) {
        runner_->add(std::move(j));
        status_ = runner_->status();
    }
}

void Session::lesson_experiment_result(JobResult&& r) {
    LessonSession& P = lesson_;
    if (P.phase != LessonPhase::Measuring || r.job.id != experiment_job_ || experiment_job_ == 0) return;
    lesson_pending_.clear();
    experiment_job_ = 0;
    if (!r.ok) {
        P.run_error = "measuring " + P.lesson()->experiment + ": " + r.error;
        return;
    }
    P.reveal.experiments = std::move(r.experiments);
    complete_reveal();
}

void Session::complete_reveal() {
    LessonSession& P = lesson_;
    const demos::Lesson& L = *P.lesson();
    try {
        std::vector<demos::Result> results;
        for (auto& r : P.results) results.push_back(std::move(*r));
        P.results.clear();
        // With the experiments already measured (one per run), make_reveal only reads them.
        demos::make_reveal(L, P.scenario, P.params, std::move(results), &P.reveal);
        if (P.presenter) {
            P.grade = demos::grade(L, P.reveal, demos::LessonAnswer{});
            P.vote_error = demos::count_class_votes(L, P.grade, class_votes_line(L, P.votes, P.guesses), &P.first);
            P.phase = LessonPhase::Hidden;
            return;
        }
        P.grade = demos::grade(L, P.reveal, P.answer);
        P.phase = LessonPhase::Revealed;
    } catch (const std::exception& e) {
        P.phase = LessonPhase::Running;  // the view shows the error and offers to run again
        P.run_error = e.what();
        return;
    }
    const demos::LessonQuestion& q = L.question;
    std::string text = q.kind == demos::QuestionKind::Choice ? P.answer.choice : "";
    if (text.empty() && q.kind == demos::QuestionKind::Bars) {
        for (double b : P.answer.bars) text += (text.empty() ? "" : ",") + demos::lesson::format_number(b);
    }
    if (text.empty()) text = demos::lesson::format_number(P.answer.value);
    try {
        P.progress.record(L.id, P.grade.correct, P.grade.score, P.answer.confidence, text);
        P.progress.save(P.progress_path);
        P.progress_error.clear();
    } catch (const std::exception& e) {
        P.progress_error = std::string("progress not saved: ") + e.what();
    }
}

void Session::second_vote(const std::vector<int>& votes, const std::string& guesses) {
    LessonSession& P = lesson_;
    if (P.phase != LessonPhase::Hidden || !P.lesson()) return;
    demos::ClassVotes v;
    std::string err = demos::count_class_votes(*P.lesson(), P.grade, class_votes_line(*P.lesson(), votes, guesses), &v);
    P.vote_error = err.empty() ? "" : "second vote: " + err;
    if (!err.empty()) return;
    P.second = v;
    P.has_second = true;
}

void Session::reveal_lesson() {
    LessonSession& P = lesson_;
    if (P.phase != LessonPhase::Hidden) return;
    P.phase = LessonPhase::Revealed;
    set_scenario(P.scenario, "", true);
    // Both votes go to the progress file, as the terminal's presenter mode writes them (a class's tally is not a
    // student's attempt: nothing else is recorded).
    try {
        P.progress.record_votes(P.lesson()->id, P.first.right, P.has_second ? P.second.right : -1, P.first.total);
        P.progress.save(P.progress_path);
        P.progress_error.clear();
    } catch (const std::exception& e) {
        P.progress_error = std::string("votes not saved: ") + e.what();
    }
}

}  // namespace moelab_gui
