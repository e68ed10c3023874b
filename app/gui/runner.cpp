// The runner thread: waits for a debounced batch, runs its jobs through demos::run one after another, and
// publishes each result tagged with its generation. It runs at a lower priority so the UI keeps its frame rate.
#include "app/gui/runner.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <exception>

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
    }
    return "?";
}

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
        r.result = demos::run(job.scenario, job.demo, ctl);
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
        std::vector<Job> jobs = std::move(queued_);
        queued_.clear();
        has_queued_ = false;
        std::uint64_t gen = generation_;
        cancel_ = false;
        batch_start_ = Clock::now();
        status_ = RunnerStatus{};
        status_.busy = true;
        status_.jobs = static_cast<int>(jobs.size());
        status_.generation = gen;
        for (std::size_t i = 0; i < jobs.size(); ++i) {
            if (cancel_ || generation_ != gen) break;
            status_.job = static_cast<int>(i);
            status_.what = std::string(slot_name(jobs[i].slot));
            status_.fraction = static_cast<float>(i) / static_cast<float>(jobs.size());
            running_keeps_ = jobs[i].finish_when_superseded;
            lk.unlock();
            const float n = static_cast<float>(jobs.size());
            JobResult r =
                run_job(jobs[i], gen, &cancel_, [this, i, n, slot = jobs[i].slot](float f, const std::string& what) {
                    std::lock_guard<std::mutex> g(mu_);
                    status_.fraction = (static_cast<float>(i) + std::clamp(f, 0.0f, 1.0f)) / n;
                    status_.what = std::string(slot_name(slot)) + ": " + what;
                });
            lk.lock();
            running_keeps_ = false;
            if (generation_ != gen) {
                // Superseded: keep a result that was allowed to finish, drop the rest.
                if (r.job.finish_when_superseded && r.ok) {
                    done_.push_back(std::move(r));
                    if (wake_) wake_();
                }
                break;
            }
            const bool failed = !r.ok;
            done_.push_back(std::move(r));
            if (wake_) wake_();
            if (failed) break;  // the rest of the batch would fail the same way
        }
        status_.busy = false;
        status_.fraction = 1;
        status_.pending = has_queued_;
        if (wake_) wake_();
    }
}

}  // namespace moelab_gui
