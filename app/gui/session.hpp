// The app's state as one Session (plain C++, no ImGui): the scenario being edited, its validation, the one Runner,
// the latest Results, the lesson being played and the numbers of edit-to-result. The Session is the only writer of
// all of it: through set_scenario() and the typed Commands (commands.hpp) that the app carries out after a frame.
// Views and the script driver read it through const accessors.
#pragma once
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/gui/runner.hpp"
#include "demos/engine.hpp"
#include "demos/lesson.hpp"
#include "demos/lesson_play.hpp"
#include "demos/lesson_progress.hpp"
#include "demos/roofline_saved.hpp"

namespace moelab_gui {

// One point of the dispatch sweep: the swept value and the dispatch demo's result there.
struct SweepPoint {
    double x = 0;
    demos::Result result;
};

// What the views draw: the newest result of each kind. Each came from one scenario (Result::scenario).
struct ResultSet {
    std::optional<demos::Result> routing;   // loads, communication and the pipeline model (cheap, arrives first)
    std::optional<demos::Result> dispatch;  // packing strategies side by side
    std::optional<demos::Result> layer;     // the whole layer: stage times and its measured timeline
    std::optional<demos::Result> pipeline;  // the ping-pong pipeline measured on GPU pools (cuda backend only)
    std::vector<SweepPoint> sweep;          // dispatch strategies over skew or tokens
    std::optional<ExpertTimes> expert_times;  // each expert's FFN alone (the loads view's overlay, when asked)
    std::optional<demos::ExpertRoofline> roofline;  // the expert FFN's measured roofline, for roofline->shape
    std::string sweep_axis;                 // "skew" | "tokens"
    bool layer_current = false;             // `layer` was computed for the same scenario as `routing`
    bool pipeline_current = false;          // `pipeline` likewise
    bool expert_times_current = false;      // `expert_times` likewise

    // The result to show loads and communication from: the layer run when it is current, else routing.
    const demos::Result* loads() const;
};

struct RunError {
    bool present = false;
    moe::ErrorKind kind = moe::ErrorKind::Runtime;
    std::string message;
    std::string job;    // which run failed (routing, layer, ...)
    std::string param;  // the control it belongs to ("--backend", "--tokens", ...), "" for the top of the panel
};

// Which runs an edit needs, from what the views show: dispatch and its sweep only while that view is open.
struct RunPlan {
    bool dispatch = true;
    bool sweep = true;
    int sweep_axis = 0;  // 0 skew, 1 tokens
    bool full_layer = true;
    bool pipeline = true;  // the measured pipeline (GPU only), while the timeline view is open
    bool expert_times = false;  // each expert's FFN timed alone, while the loads view shows the overlay
    bool roofline = false;      // the expert FFN's roofline measured on the GPU, while its panel is open
    bool operator==(const RunPlan& o) const {
        return dispatch == o.dispatch && sweep == o.sweep && sweep_axis == o.sweep_axis && full_layer == o.full_layer &&
               pipeline == o.pipeline && expert_times == o.expert_times && roofline == o.roofline;
    }
};

// The jobs one scenario needs: routing + pipeline model first (fast), then the experts timed one by one when the
// loads view overlays them, then dispatch and its sweep when that view is open, then the whole layer. On the CPU reference the whole layer joins only while its expert FFNs stay under
// kCpuLayerFlops; `force_layer` adds it regardless (the "+ experts" button).
std::vector<Job> plan_jobs(const demos::Scenario& s, const RunPlan& plan, bool cpu = false, bool force_layer = false);
// One run serves both the app and the lesson: the same demo on the same scenario, or the app's routing run (routing
// plus the pipeline model) for a lesson run that asks for routing alone. Only plain lesson runs are shared.
bool serves(const Job& app, const Job& lesson);
// A class's vote as the terminal's presenter mode reads it: one count per choice ("3,7,1,0") for a choice question,
// else the answers given (`guesses`, comma-separated). demos::count_class_votes counts it.
std::string class_votes_line(const demos::Lesson& L, const std::vector<int>& votes, const std::string& guesses);
// Expert FLOPs of one layer, 2·T·k·(2F·d + d·F), and the most the CPU reference re-runs on every edit (a few
// seconds on two cores); bigger layers run when asked.
double layer_flops(const demos::Scenario& s);
constexpr double kCpuLayerFlops = 3e11;

// The debounce an edit gets after a run of the app's loads that took `last_run_ms` (< 0: none yet): a run under
// 20 ms starts at once, a slower one waits half its cost (20..150 ms) for the next edit.
double debounce_for(double last_run_ms);

// The lesson being played. Its runs go through the session's one runner: a run the app needs too (same demo,
// same scenario) is run once and serves both. A lesson that names an experiment then measures it on those runs,
// as a job on the same runner (Measuring), so the window keeps drawing while a GPU times it.
enum class LessonPhase { Predict, Running, Measuring, Hidden, Revealed };

struct LessonSession {
    demos::LessonSet set;
    bool loaded = false;   // the lesson files have been read (on a background thread)
    bool loading = false;  // they are being read
    demos::Progress progress;
    std::string progress_path;
    std::string progress_error;

    int current = -1;         // index into set.lessons
    int variation = 0;        // 0: the lesson; i: try_next[i-1]
    std::uint64_t round = 0;  // bumped by every start(): views reset their draft answer when it changes
    demos::Scenario scenario;
    std::map<std::string, double> params;
    LessonPhase phase = LessonPhase::Predict;
    bool presenter = false;  // committed in presenter mode: the class's votes, the answer hidden until revealed

    demos::LessonAnswer answer;  // as committed
    // Presenter mode (peer instruction): the class votes, says how sure it is, discusses and votes again.
    std::vector<int> votes;        // the first vote, choice questions: one count per choice
    std::string guesses;           // the first vote, other kinds: the class's answers, comma-separated
    double class_confidence = 0;   // the class's confidence with the first vote, 1..5 (a mean of raised fingers)
    demos::ClassVotes first;       // the first vote, counted against the run's answer
    demos::ClassVotes second;      // the second vote after discussion, when has_second
    bool has_second = false;
    std::string vote_error;        // a vote line that could not be counted, and what a valid one looks like

    std::vector<std::optional<demos::Result>> results;  // one per lesson run, filled as they arrive
    std::string run_error;
    demos::LessonReveal reveal;
    demos::LessonGrade grade;

    const demos::Lesson* lesson() const {
        return current >= 0 && current < int(set.lessons.size()) ? &set.lessons[std::size_t(current)] : nullptr;
    }
};

// Edit to result: from the edit (set_scenario) to the frame that first shows the new loads.
struct LatencyStats {
    std::vector<double> samples_ms;  // every one of this session
    double median_ms() const;
    double p95_ms() const;
};

struct SessionOptions {
    demos::Scenario scenario;
    std::string preset;         // its preset name, if it is one
    bool background = true;     // false: no runner; the snapshot runs jobs itself and feeds apply()
    std::string progress_path;  // lesson progress ("" = the default)
    // Rooflines measured on a GPU machine and saved there (`--roofline FILE`), shown where this machine has not
    // measured the shape itself; unset: the run of record carried in the binary (demos::recorded_rooflines).
    std::optional<std::vector<demos::ExpertRoofline>> saved_rooflines;
};

class Session {
  public:
    explicit Session(const SessionOptions& opt);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // ---- read ----
    const demos::Scenario& scenario() const { return scenario_; }
    const std::string& preset() const { return preset_; }
    // scenario().validate(): each message starts with the parameter's flag.
    const std::vector<std::string>& invalid() const { return invalid_; }
    const ResultSet& results() const { return results_; }
    const RunError& error() const { return error_; }
    const RunnerStatus& status() const { return status_; }
    // Results are from an older scenario (a run is pending or running, or the scenario is invalid).
    bool stale() const { return status_.busy || status_.pending || !invalid_.empty(); }
    bool busy() const { return status_.busy || status_.pending; }
    const std::string& backend_resolved() const { return backend_resolved_; }
    bool cpu_backend() const;  // runs go to the CPU reference (from the last result, or what this build can do)
    const std::vector<std::string>& gpus() const { return gpus_; }
    const std::string& gpu_unavailable() const { return gpu_unavailable_; }
    const std::string& scenario_path() const { return scenario_path_; }
    const LessonSession& lesson() const { return lesson_; }
    const LatencyStats& edit_to_result() const { return latency_; }
    // The GPU probe or the lesson files are still being read (poll() picks them up; nothing wakes the UI for them).
    bool background_pending() const { return gpu_probe_.valid() || lessons_future_.valid(); }
    // The debounce the next edit gets, from the cost of the last run (ms).
    double debounce_ms() const;
    std::uint64_t routing_results() const { return routing_results_; }  // routing results applied so far

    // ---- write (the app, between frames) ----
    // The one way to change the scenario: validates it, keeps the preset's name while it still matches, and
    // starts a debounced re-run. `keep_backend`: the user's backend stands (presets and lessons describe models).
    void set_scenario(const demos::Scenario& s, const std::string& preset = "", bool keep_backend = false);
    void set_plan(const RunPlan& plan);  // re-runs when it adds runs that the views now need
    const RunPlan& plan() const { return plan_; }
    void rerun(double delay_ms = 0, bool force_layer = false);
    // Measures the expert FFN's roofline for the scenario's shape on the GPU, as a job joining the runs in progress;
    // nothing without a GPU (the panel models it then) or when the one held is for this shape.
    void measure_roofline();
    // A saved roofline of `shape` (SessionOptions::saved_rooflines), or nullptr.
    const demos::ExpertRoofline* saved_roofline(const demos::RooflineShape& shape) const;
    void cancel();
    // Takes finished runs from the runner and the GPU probe. Returns true when something changed.
    bool poll();
    // Applies one finished job (the snapshot feeds its synchronous runs through this too).
    void apply(JobResult&& r);
    // Resets what a batch of jobs will fill (the sweep's expected points).
    void begin_jobs(const std::vector<Job>& jobs);
    // The window calls this after each frame it presented: a routing result that arrived before that frame
    // has now been seen, and its edit-to-result time is recorded.
    void frame_presented();
    void set_gpus(std::vector<std::string> gpus, std::string why);
    void set_wake(std::function<void()> wake);

    bool load_scenario(const std::string& path, std::string* msg);
    // A saved expert FFN sweep (moelab bench experts --sweep --save) for the roofline panel, in place of the one
    // held (dropped on the window, or the script's open_roofline). False, and why in msg, for a bad file.
    bool load_rooflines(const std::string& path, std::string* msg);
    bool save_scenario(const std::string& path, std::string* msg);
    bool export_result(const std::string& json_path, const std::string& csv_path, std::string* msg) const;

    // Lessons.
    void load_lessons();  // starts reading the lesson files on a background thread
    void start_lesson(int index, int variation);
    // Commits the prediction (or, in presenter mode, the class's votes) and starts the reveal's runs.
    // `class_confidence`: presenter mode, the class's confidence with its first vote (1..5).
    void commit_lesson(const demos::LessonAnswer& answer, bool presenter, const std::vector<int>& votes,
                       const std::string& guesses, double class_confidence = 0);
    void retry_lesson();   // the reveal's runs again, after a failure
    void reveal_lesson();  // presenter mode: show the answer that the class has voted on; saves both votes
    // Presenter mode, while the answer is hidden: the class's second vote after discussion (counts per choice for a
    // choice question, else the answers given, comma-separated).
    void second_vote(const std::vector<int>& votes, const std::string& guesses);

  private:
    void submit(double delay_ms, bool force_layer);
    bool roofline_needed() const;  // a GPU is in use and no roofline of the scenario's shape is held
    void lesson_result(JobResult&& r);
    void finish_lesson();        // every run is in: measure the lesson's experiment, or reveal
    void lesson_experiment_result(JobResult&& r);
    void complete_reveal();      // the reveal's numbers, the grade and the progress, from runs and experiments
    void abandon_lesson_jobs();  // nobody waits for the lesson's jobs in flight any more: they stop where they can
    void submit_lesson_jobs();   // lesson_pending_ to the runner, in the app's batch when one is queued or running
    std::vector<Job> lesson_jobs() const;

    SessionOptions opt_;
    demos::Scenario scenario_;
    std::string preset_;
    std::vector<std::string> invalid_;
    ResultSet results_;
    std::vector<demos::ExpertRoofline> saved_rooflines_;
    RunError error_;
    RunnerStatus status_;
    RunPlan plan_;
    std::string backend_resolved_;
    std::vector<std::string> gpus_;
    std::string gpu_unavailable_;
    std::string scenario_path_;
    std::unique_ptr<Runner> runner_;
    std::vector<SweepPoint> sweep_pending_;
    std::size_t sweep_expected_ = 0;
    std::future<std::pair<std::vector<std::string>, std::string>> gpu_probe_;
    std::future<demos::LessonSet> lessons_future_;
    LessonSession lesson_;
    std::vector<Job> lesson_pending_;  // the lesson's jobs whose results have not come back yet
    std::shared_ptr<std::atomic<bool>> lesson_abandon_;  // shared with the lesson's jobs of this round
    std::uint64_t experiment_job_ = 0;                   // the id of the lesson experiment job awaited (0: none)
    std::uint64_t next_job_id_ = 0;

    // Edit to result.
    std::deque<std::pair<demos::Scenario, double>> edits_;  // recent edits without a result yet, and when (s)
    double arrived_edit_at_ = -1;  // a routing result for it arrived; the next presented frame shows it
    LatencyStats latency_;
    double last_routing_ms_ = -1;  // how long the last routing run took
    std::uint64_t routing_results_ = 0;
};

}  // namespace moelab_gui
