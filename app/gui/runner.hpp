// The background runner: executes batches of engine jobs on its own thread so the UI never waits.
// Edits are debounced, each batch has a generation, and results of a superseded generation are dropped.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "app/gui/expert_times.hpp"
#include "demos/engine.hpp"
#include "demos/experiments.hpp"
#include "demos/lesson.hpp"
#include "demos/roofline.hpp"
#include "kernels/common/error.hpp"

namespace moelab_gui {

// Which part of the session's ResultSet a job fills (Lesson, LessonExperiment: only the lesson's reveal reads them).
//   ExpertTimes       the scenario's routing, then each expert's FFN timed alone at its load (the loads overlay)
//   LessonExperiment  the lesson's experiment (demos/experiments.hpp) on its finished runs, for the reveal
//   Roofline          the expert FFN's roofline measured on the GPU for the scenario's d, F, E, k (its panel)
enum class Slot { Routing, Dispatch, Sweep, Layer, Lesson, Pipeline, ExpertTimes, LessonExperiment, Roofline };
const char* slot_name(Slot s);

// Who reads a job's result: the app's views, the lesson's reveal, or both (one run serves both owners).
enum Owner : unsigned { kOwnerApp = 1u, kOwnerLesson = 2u };

struct Job {
    Slot slot = Slot::Routing;
    demos::Demo demo = demos::Demo::Routing;
    demos::Scenario scenario;
    double sweep_x = 0;  // the swept value, for Slot::Sweep
    int sweep_index = 0;
    unsigned owners = kOwnerApp;
    int lesson_index = -1;  // kOwnerLesson: which of the lesson's runs this is
    // A newer batch lets this job finish (and keeps its result) instead of cancelling it: the first, cheap run
    // of an edit, so that dragging a slider shows the numbers of the values it passes through.
    bool finish_when_superseded = false;
    // Slot::LessonExperiment: what it runs on, shared and read-only (results can be large; the job is copied).
    struct ExperimentInput {
        demos::Lesson lesson;
        std::vector<demos::Result> results;  // one per lesson run, in the order of LessonReveal::results
        std::map<std::string, double> params;
    };
    std::shared_ptr<const ExperimentInput> experiment = nullptr;
    // Set by the session when nobody waits for this job any more (the student left the lesson): the job stops at
    // its next step. A finish_when_superseded job is not stopped by newer batches, only by this or cancel().
    std::shared_ptr<std::atomic<bool>> abandon = nullptr;
    std::uint64_t id = 0;  // the session's name for a job it tracks (0: none)
};

struct JobResult {
    std::uint64_t generation = 0;
    Job job;
    bool ok = false;
    demos::Result result;
    moe::ErrorKind error_kind = moe::ErrorKind::Runtime;
    std::string error;
    double wall_ms = 0;  // how long the run took; the session's debounce adapts to it
    std::vector<demos::ExperimentResult> experiments;  // LessonExperiment: one per lesson run
    std::optional<ExpertTimes> expert_times;           // ExpertTimes
    std::optional<demos::ExpertRoofline> roofline;     // Roofline
};

struct RunnerStatus {
    bool busy = false;     // a batch is running
    bool pending = false;  // a batch waits for its debounce delay
    float fraction = 0;    // of the whole batch
    std::string what;      // current job and stage
    int job = 0, jobs = 0;
    double elapsed_s = 0;  // since the batch started
    std::uint64_t generation = 0;
    std::uint64_t keeper_id = 0;  // the id of the finish_when_superseded job running now (0: none)
};

// Runs one job synchronously (the snapshot path and the runner share this).
JobResult run_job(const Job& job, std::uint64_t generation, const std::atomic<bool>* cancel,
                  const std::function<void(float, const std::string&)>& progress);

class Runner {
  public:
    Runner();
    ~Runner();
    Runner(const Runner&) = delete;
    Runner& operator=(const Runner&) = delete;

    // Replaces whatever is queued or running with `jobs`, to start after `delay_ms` of quiet. While edits keep
    // coming, a batch still starts at most `max_wait_ms` after the first of them, so dragging shows results.
    // Returns the new generation.
    std::uint64_t submit(std::vector<Job> jobs, double delay_ms = 150, double max_wait_ms = 600);
    // Runs `job` next in the batch that is running (or first after the opening run of the one queued), without
    // restarting either; with none, as a batch of its own. Returns the generation it runs in.
    std::uint64_t add(Job job);
    // Called on the runner thread whenever a result or a status change is ready (the window wakes its loop).
    void set_wake(std::function<void()> wake);
    // Cancels the running batch (a finish_when_superseded job still finishes) and drops the queued one.
    void cancel();
    // Results of the current generation that arrived since the last call, and finish_when_superseded ones of
    // older generations; other stale ones are dropped here.
    std::vector<JobResult> take_results();
    RunnerStatus status() const;
    std::uint64_t generation() const;

  private:
    using Clock = std::chrono::steady_clock;
    void loop();

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::thread thread_;
    std::atomic<bool> cancel_{false};
    bool quit_ = false;
    std::uint64_t generation_ = 0;
    std::vector<Job> queued_;
    bool has_queued_ = false;
    Clock::time_point due_{}, first_edit_{};
    std::vector<JobResult> done_;
    std::vector<Job> batch_;      // the batch running now (add() may insert into it)
    std::size_t batch_pos_ = 0;   // the index of the job running in batch_
    RunnerStatus status_;
    Clock::time_point batch_start_{};
    std::function<void()> wake_;
    bool running_keeps_ = false;  // the job running now is finish_when_superseded
};

}  // namespace moelab_gui
