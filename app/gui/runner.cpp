// The runner thread: waits for a debounced batch, runs its jobs through demos::run one after another, and
// publishes each result tagged with its generation. It runs at a lower priority so the UI keeps its frame rate.
#include "app/gui/runner.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <exception>

#include "demos/lesson_play.hpp"

namespace moelab_gui {

const char* slot_name(Slot s) {
    switch (s) {
        case Slot::Routing:
            return "routing";
        case Slot::Dispatch:
            return "dispatch";
        case Slot::Sweep:
            return "sweep";
        case Slot::Layer:
            return "layer";
        case Slot::Lesson:
            return "lesson";
        case Slot::Pipeline:
            return "pipeline";
        case Slot::ExpertTimes:
            return "expert times";
        case Slot::LessonExperiment:
            return "lesson experiment";
        case Slot::Roofline:
            return "roofline";
    }
    return "?";
}

namespace {

// The lesson's experiment on each of its runs, one run at a time (run_lesson_experiments on one run), so that a
// student who leaves the lesson stops it between runs.
void run_lesson_experiment(const Job::ExperimentInput& in, const std::function<bool()>& stop,
                           const std::function<void(float, const std::string&)>& progress,
                           std::vector<demos::ExperimentResult>* out) {
    const std::size_t n = in.results.size();
    for (std::size_t i = 0; i < n; ++i) {
        if (stop()) throw moe::Error(moe::ErrorKind::Runtime, "cancelled");
        if (progress)
            progress(float(i) / float(n), in.lesson.experiment + " on run " + std::to_string(i + 1) + " of " +
                                              std::to_string(n));
        std::vector<demos::ExperimentResult> one = demos::run_lesson_experiments(in.lesson, {in.results[i]}, in.params);
        MOE_ASSERT(one.size() == 1, "one experiment result per run");
        out->push_back(std::move(one[0]));
    }
}

}  // namespace

JobResult run_job(const Job& job, std::uint64_t generation, const std::atomic<bool>* cancel,
                  const std::function<void(float, const std::string&)>& progress) {
    JobResult r;
    r.generation = generation;
    r.job = job;
    auto t0 = std::chrono::steady_clock::now();
    try {
        demos::RunControl ctl;
        ctl.cancel = cancel;
        ctl.progress = progress;
        ctl.measure_pipeline = job.slot != Slot::Routing;  // the first, cheap run keeps the pipeline modelled
        auto stop = [&] { return (cancel && cancel->load()) || (job.abandon && job.abandon->load()); };
        if (job.slot == Slot::LessonExperiment) {
            MOE_ASSERT(job.experiment, "a lesson experiment job without its input");
            run_lesson_experiment(*job.experiment, stop, progress, &r.experiments);
        } else if (job.slot == Slot::ExpertTimes) {
            r.result = demos::run(job.scenario, job.demo, ctl);
            r.expert_times = time_experts(r.result, stop, progress);
        } else if (job.slot == Slot::Roofline) {
            r.roofline = demos::measure_roofline(demos::roofline_shape(job.scenario), stop, progress);
        } else {
            r.result = demos::run(job.scenario, job.demo, ctl);
        }
        r.ok = true;
    } catch (const moe::Error& e) {
        r.error_kind = e.kind();
        r.error = e.what();
    } catch (const std::bad_alloc&) {
        r.error_kind = moe::ErrorKind::OutOfMemory;
        r.error = "out of host memory for this scenario; lower tokens, hidden or ffn";
    } catch (const std::exception& e) {
        r.error_kind = moe::ErrorKind::Runtime;
        r.error = e.what();
    }
    r.wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

Runner::Runner() {
    thread_ = std::thread([this] { loop(); });
}

Runner::~Runner() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        quit_ = true;
        cancel_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

std::uint64_t Runner::submit(std::vector<Job> jobs, double delay_ms, double max_wait_ms) {
    std::uint64_t gen;
    {
        std::lock_guard<std::mutex> lk(mu_);
        auto now = Clock::now();
        if (!has_queued_) first_edit_ = now;
        auto delay = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(delay_ms));
        auto max_wait =
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(max_wait_ms));
        due_ = std::min(now + delay, first_edit_ + max_wait);
        queued_ = std::move(jobs);
        has_queued_ = true;
        gen = ++generation_;
        if (!running_keeps_) cancel_ = true;  // whatever runs now is stale
        status_.pending = true;
        status_.generation = gen;
    }
    cv_.notify_all();
    return gen;
}

std::uint64_t Runner::add(Job job) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (has_queued_) {
            // A batch waits for its debounce: the job joins it, first after its opening run.
            queued_.insert(queued_.begin() + std::min<std::ptrdiff_t>(1, std::ptrdiff_t(queued_.size())),
                           std::move(job));
            return generation_;
        }
        if (status_.busy && batch_pos_ < batch_.size()) {
            batch_.insert(batch_.begin() + std::ptrdiff_t(batch_pos_) + 1, std::move(job));  // next
            return generation_;
        }
    }
    return submit({std::move(job)}, 0, 0);
}

void Runner::set_wake(std::function<void()> wake) {
    std::lock_guard<std::mutex> lk(mu_);
    wake_ = std::move(wake);
}

void Runner::cancel() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        ++generation_;
        queued_.clear();
        has_queued_ = false;
        cancel_ = true;
        status_.pending = false;
        status_.generation = generation_;
    }
    cv_.notify_all();
}

std::vector<JobResult> Runner::take_results() {
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<JobResult> out;
    for (auto& r : done_)
        if (r.generation == generation_ || r.job.finish_when_superseded) out.push_back(std::move(r));
    done_.clear();
    return out;
}

RunnerStatus Runner::status() const {
    std::lock_guard<std::mutex> lk(mu_);
    RunnerStatus s = status_;
    if (s.busy) s.elapsed_s = std::chrono::duration<double>(Clock::now() - batch_start_).count();
    return s;
}

std::uint64_t Runner::generation() const {
    std::lock_guard<std::mutex> lk(mu_);
    return generation_;
}

void Runner::loop() {
    // Nice this thread (and the CPU workers it spawns, which inherit it) so the UI thread wins the cores.
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
        cv_.wait(lk, [this] { return quit_ || has_queued_; });
        if (quit_) return;
        if (Clock::now() < due_) {
            cv_.wait_until(lk, due_, [this] { return quit_ || Clock::now() >= due_; });
            continue;  // re-check: a newer submit may have moved `due_`
        }
        batch_ = std::move(queued_);
        queued_.clear();
        has_queued_ = false;
        std::uint64_t gen = generation_;
        cancel_ = false;
        batch_start_ = Clock::now();
        status_ = RunnerStatus{};
        status_.busy = true;
        status_.jobs = static_cast<int>(batch_.size());
        status_.generation = gen;
        // add() may insert jobs into batch_ while one runs (under the lock): sizes are read afresh each time.
        for (batch_pos_ = 0; batch_pos_ < batch_.size(); ++batch_pos_) {
            if (cancel_ || generation_ != gen) break;
            const std::size_t i = batch_pos_;
            const Job job = batch_[i];
            status_.job = static_cast<int>(i);
            status_.jobs = static_cast<int>(batch_.size());
            status_.what = std::string(slot_name(job.slot));
            status_.fraction = static_cast<float>(i) / static_cast<float>(batch_.size());
            running_keeps_ = job.finish_when_superseded;
            status_.keeper_id = running_keeps_ ? job.id : 0;
            lk.unlock();
            JobResult r = run_job(job, gen, &cancel_, [this, i, slot = job.slot](float f, const std::string& what) {
                std::lock_guard<std::mutex> g(mu_);
                const float n = static_cast<float>(std::max<std::size_t>(1, batch_.size()));
                status_.fraction = (static_cast<float>(i) + std::clamp(f, 0.0f, 1.0f)) / n;
                status_.what = std::string(slot_name(slot)) + ": " + what;
            });
            lk.lock();
            running_keeps_ = false;
            status_.keeper_id = 0;
            if (generation_ != gen) {
                // Superseded: keep a result that was allowed to finish, drop the rest. The lesson's keepers come
                // back failed too: the reveal waits for them and shows why.
                if (r.job.finish_when_superseded && (r.ok || (r.job.owners & kOwnerLesson))) {
                    done_.push_back(std::move(r));
                    if (wake_) wake_();
                }
                break;
            }
            // A failed run ends the batch's runs (the rest would fail the same way); a lesson's experiment still
            // runs (it times runs that have finished, and the reveal waits for it), and its own failure ends nothing,
            // nor does the roofline's (its own shape and sizes, measured apart from the scenario's runs).
            if (!r.ok && r.job.slot != Slot::LessonExperiment && r.job.slot != Slot::Roofline)
                batch_.erase(std::remove_if(batch_.begin() + std::ptrdiff_t(i) + 1, batch_.end(),
                                            [](const Job& j) { return j.slot != Slot::LessonExperiment; }),
                             batch_.end());
            done_.push_back(std::move(r));
            if (wake_) wake_();
        }
        batch_.clear();
        status_.busy = false;
        status_.fraction = 1;
        status_.pending = has_queued_;
        if (wake_) wake_();
    }
}

}  // namespace moelab_gui
