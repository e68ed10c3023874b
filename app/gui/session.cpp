// The Session: the one writer of the app's scenario, results and lesson. Edits become runs on the one runner
// with a debounce that follows the cost of the last run; the lesson's reveal shares that runner and its runs.
#include "app/gui/session.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "demos/atomic_file.hpp"
#include "demos/result_io.hpp"
#include "kernels/api.hpp"

namespace moelab_gui {
namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The flag a message starts with ("--top-k 20: …" → "--top-k"), which names the control to show it under.
std::string flag_of(const std::string& msg) {
    if (msg.compare(0, 2, "--") != 0) return "";
    std::size_t end = msg.find_first_of(" :'", 2);
    return msg.substr(0, end);
}

std::vector<double> sweep_values(const demos::Scenario& s, bool tokens) {
    if (tokens) {
        std::vector<double> v;
        for (double f : {0.125, 0.25, 0.5, 1.0, 2.0}) {
            double t = std::clamp(std::round(static_cast<double>(s.tokens) * f), 1.0, double(1 << 20));
            if (v.empty() || v.back() != t) v.push_back(t);
        }
        return v;
    }
    if (s.skew.rfind("hot", 0) == 0) return {1.0, 2.0, 4.0, 8.0, 16.0};
    return {0.0, 0.5, 1.0, 1.5, 2.0};
}

double quantile(std::vector<double> v, double q) {
    if (v.empty()) return -1;
    std::sort(v.begin(), v.end());
    const double pos = q * double(v.size() - 1);
    const std::size_t i = std::size_t(pos);
    const double f = pos - double(i);
    return i + 1 < v.size() ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

// The preset `name` still describes `s` (the backend aside).
bool is_preset(const std::string& name, const demos::Scenario& s) {
    for (const demos::Preset& p : demos::presets()) {
        if (p.name != name) continue;
        demos::Scenario x = p.scenario;
        x.backend = s.backend;
        return x == s;
    }
    return false;
}

}  // namespace

bool serves(const Job& app, const Job& lesson) {
    if (lesson.slot != Slot::Lesson || app.slot == Slot::ExpertTimes || app.slot == Slot::LessonExperiment ||
        app.slot == Slot::Roofline)
        return false;
    if (!(app.scenario == lesson.scenario)) return false;
    return app.demo == lesson.demo || (app.demo == demos::Demo::Pipeline && lesson.demo == demos::Demo::Routing);
}

double LatencyStats::median_ms() const { return quantile(samples_ms, 0.5); }
double LatencyStats::p95_ms() const { return quantile(samples_ms, 0.95); }

const demos::Result* ResultSet::loads() const {
    if (layer && routing) return layer_current ? &*layer : &*routing;
    if (routing) return &*routing;
    if (layer) return &*layer;
    return nullptr;
}

double layer_flops(const demos::Scenario& s) {
    return 2.0 * static_cast<double>(s.tokens) * s.top_k * (3.0 * s.ffn * s.hidden);
}

std::vector<Job> plan_jobs(const demos::Scenario& s, const RunPlan& plan, bool cpu, bool force_layer) {
    std::vector<Job> jobs;
    Job routing{Slot::Routing, demos::Demo::Pipeline, s};
    routing.finish_when_superseded = true;
    jobs.push_back(routing);
    // The loads view's overlay: its own routing (milliseconds), then each expert's FFN alone.
    if (plan.expert_times) jobs.push_back({Slot::ExpertTimes, demos::Demo::Routing, s});
    if (plan.dispatch) {
        // Packing small layers takes milliseconds: a few repeats more cost nothing and keep one noisy sample from
        // deciding. Big layers (hundreds of MB packed per run) keep the repeats asked for.
        demos::Scenario d = s;
        const double packed_bytes = static_cast<double>(s.tokens) * s.top_k * s.hidden * 2;
        if (packed_bytes <= 64e6) d.repeats = std::max(s.repeats, 5);
        jobs.push_back({Slot::Dispatch, demos::Demo::Dispatch, d});
        if (plan.sweep) {
            const bool tokens = plan.sweep_axis == 1;
            int i = 0;
            for (double x : sweep_values(s, tokens)) {
                demos::Scenario p = d;
                if (tokens) {
                    p.tokens = static_cast<std::int64_t>(x);
                } else {
                    const bool hot = s.skew.rfind("hot", 0) == 0;
                    char buf[48];
                    std::snprintf(buf, sizeof buf, hot ? "hot:%g" : "zipf:%g", x);
                    p.skew = x == 0 ? "uniform" : buf;
                }
                jobs.push_back({Slot::Sweep, demos::Demo::Dispatch, p, x, i++});
            }
        }
    }
    // On a GPU, the ping-pong schedule for real on two SM pools, with the model calibrated there.
    if (!cpu && plan.pipeline) jobs.push_back({Slot::Pipeline, demos::Demo::Pipeline, s});
    const bool affordable = !cpu || layer_flops(s) <= kCpuLayerFlops;
    if (force_layer || (plan.full_layer && affordable)) jobs.push_back({Slot::Layer, demos::Demo::Layer, s});
    return jobs;
}

Session::Session(const SessionOptions& opt) : opt_(opt) {
    scenario_ = opt.scenario;
    // The preset's name shows only while the scenario is that preset (the backend aside).
    preset_ = is_preset(opt.preset, scenario_) ? opt.preset : "";
    if (preset_.empty())
        for (const demos::Preset& p : demos::presets())
            if (is_preset(p.name, scenario_)) {
                preset_ = p.name;
                break;
            }
    invalid_ = scenario_.validate();
    saved_rooflines_ = opt.saved_rooflines ? *opt.saved_rooflines : demos::recorded_rooflines();
    lesson_.progress_path = opt.progress_path.empty() ? demos::default_progress_path() : opt.progress_path;
    if (opt.background) {
        runner_ = std::make_unique<Runner>();
        gpu_probe_ = std::async(std::launch::async, [] {
            std::pair<std::vector<std::string>, std::string> out;
            for (const auto& d : moe::gpu::devices()) out.first.push_back(d.name);
            if (out.first.empty()) out.second = moe::gpu::unavailable_reason();
            return out;
        });
        rerun(0);
    }
}

Session::~Session() {
    runner_.reset();
    if (gpu_probe_.valid()) gpu_probe_.wait();
    if (lessons_future_.valid()) lessons_future_.wait();
}

void Session::set_wake(std::function<void()> wake) {
    if (runner_) runner_->set_wake(std::move(wake));
}

bool Session::cpu_backend() const {
    if (!backend_resolved_.empty()) return backend_resolved_ != "cuda";
    return scenario_.backend == "cpu" || !moe::gpu::built();
}

double debounce_for(double last_run_ms) {
    // Nothing measured yet, or a run under 20 ms: start at once (a newer edit cancels an older run anyway).
    if (last_run_ms < 20) return 0;
    return std::clamp(last_run_ms * 0.5, 20.0, 150.0);
}

double Session::debounce_ms() const { return debounce_for(last_routing_ms_); }

void Session::set_scenario(const demos::Scenario& s_in, const std::string& preset, bool keep_backend) {
    demos::Scenario s = s_in;
    if (keep_backend) s.backend = scenario_.backend;
    const std::string name = is_preset(preset, s) ? preset : "";
    if (s == scenario_) {
        preset_ = name;
        return;
    }
    scenario_ = s;
    preset_ = name;
    invalid_ = scenario_.validate();
    edits_.emplace_back(scenario_, now_s());
    if (edits_.size() > 64) edits_.pop_front();
    rerun(debounce_ms());
}

void Session::set_plan(const RunPlan& plan) {
    if (plan == plan_) return;
    RunPlan same_runs = plan_;
    same_runs.expert_times = plan.expert_times;
    same_runs.roofline = plan.roofline;
    const bool overlays_only = same_runs == plan;  // only the loads overlay or the roofline panel was switched
    const RunPlan before = plan_;
    plan_ = plan;
    if (!overlays_only) {
        rerun(0);
        return;
    }
    // Switched on: its job joins the runs in progress (nothing is run again); switched off: nothing to run.
    if (plan.expert_times && !before.expert_times && runner_ && invalid_.empty()) {
        runner_->add({Slot::ExpertTimes, demos::Demo::Routing, scenario_});
        status_ = runner_->status();
    }
    if (plan.roofline && !before.roofline) measure_roofline();
}

bool Session::roofline_needed() const {
    if (!runner_ || !invalid_.empty() || cpu_backend() || gpus_.empty()) return false;
    return !results_.roofline || results_.roofline->shape != demos::roofline_shape(scenario_);
}

const demos::ExpertRoofline* Session::saved_roofline(const demos::RooflineShape& shape) const {
    return demos::find_roofline(saved_rooflines_, shape);
}

void Session::measure_roofline() {
    if (!roofline_needed()) return;
    if (error_.job == slot_name(Slot::Roofline)) error_ = RunError{};  // Try again: the old failure goes
    runner_->add({Slot::Roofline, demos::Demo::Routing, scenario_});
    status_ = runner_->status();
}

void Session::set_gpus(std::vector<std::string> gpus, std::string why) {
    gpus_ = std::move(gpus);
    gpu_unavailable_ = std::move(why);
}

void Session::rerun(double delay_ms, bool force_layer) {
    if (!runner_) return;
    if (!invalid_.empty()) {
        // Nothing of the app's to run; the lesson's runs (valid scenarios of their own) go on.
        error_ = RunError{};
        std::vector<Job> lesson;
        const std::uint64_t running = runner_->status().keeper_id;
        for (const Job& l : lesson_pending_)
            if (l.id == 0 || l.id != running) lesson.push_back(l);
        if (lesson.empty() && lesson_pending_.empty()) {
            runner_->cancel();
        } else if (!lesson.empty()) {
            runner_->submit(lesson, 0);
        }
        status_ = runner_->status();
        return;
    }
    std::vector<Job> jobs = plan_jobs(scenario_, plan_, cpu_backend(), force_layer);
    // The roofline depends on d, F, E and k only: an edit of anything else keeps the one held.
    if (plan_.roofline && roofline_needed()) jobs.push_back({Slot::Roofline, demos::Demo::Routing, scenario_});
    begin_jobs(jobs);
    // The lesson's runs join the batch; a run the app needs as well is done once for both. A lesson job that is
    // running now and finishes whatever comes after it (the experiment) is not queued a second time.
    const std::uint64_t running = runner_->status().keeper_id;
    for (const Job& l : lesson_pending_) {
        if (l.id != 0 && l.id == running) continue;
        auto same = std::find_if(jobs.begin(), jobs.end(), [&](const Job& j) { return serves(j, l); });
        if (same != jobs.end()) {
            same->owners |= kOwnerLesson;
            same->lesson_index = l.lesson_index;
        } else {
            jobs.insert(jobs.begin() + 1, l);  // right after the loads: the reveal waits on it
        }
    }
    runner_->submit(std::move(jobs), delay_ms);
    status_ = runner_->status();
}

void Session::cancel() {
    if (runner_) runner_->cancel();
    abandon_lesson_jobs();
    const bool waiting = lesson_.phase == LessonPhase::Running || lesson_.phase == LessonPhase::Measuring;
    if (waiting && lesson_.run_error.empty()) lesson_.run_error = "cancelled";
    if (runner_) status_ = runner_->status();
}

void Session::begin_jobs(const std::vector<Job>& jobs) {
    sweep_pending_.clear();
    sweep_expected_ = 0;
    for (const Job& j : jobs) sweep_expected_ += j.slot == Slot::Sweep;
    error_ = RunError{};
}

bool Session::poll() {
    bool changed = false;
    if (runner_) {
        // The runner's state before its results: when it was idle then, every result it will give is in hand.
        const RunnerStatus before = runner_->status();
        const std::uint64_t awaited = experiment_job_;
        for (JobResult& r : runner_->take_results()) {
            if (r.job.slot == Slot::LessonExperiment) {
                lesson_experiment_result(std::move(r));
                changed = true;
                continue;
            }
            const unsigned owners = r.job.owners;
            if ((owners & kOwnerLesson) && (owners & kOwnerApp)) {
                JobResult copy = r;
                lesson_result(std::move(copy));
            } else if (owners & kOwnerLesson) {
                lesson_result(std::move(r));
                changed = true;
                continue;
            }
            apply(std::move(r));
            changed = true;
        }
        // An experiment the runner never ran (dropped with a batch) would leave the lesson measuring forever.
        if (awaited != 0 && awaited == experiment_job_ && !before.busy && !before.pending &&
            lesson_.phase == LessonPhase::Measuring && lesson_.run_error.empty()) {
            lesson_.run_error = "the measurement was dropped before it ran; try again";
            lesson_pending_.clear();
            experiment_job_ = 0;
            changed = true;
        }
        RunnerStatus st = runner_->status();
        // A batch that ended between `before` and now may have handed over its last result after take_results
        // above: stay busy until the next poll takes it, so that no one sees the runner idle with its result (an
        // error under a control, say) not yet applied. That poll comes: the window animates while it is busy.
        if ((before.busy || before.pending) && !st.busy && !st.pending) st.busy = true;
        changed |= st.busy != status_.busy || st.pending != status_.pending || st.fraction != status_.fraction;
        status_ = st;
    }
    if (gpu_probe_.valid() && gpu_probe_.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        auto [gpus, why] = gpu_probe_.get();
        set_gpus(std::move(gpus), std::move(why));
        if (plan_.roofline) measure_roofline();  // the panel opened before the GPUs were known
        changed = true;
    }
    if (lessons_future_.valid() && lessons_future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        lesson_.set = lessons_future_.get();
        try {
            lesson_.progress = demos::Progress::load(lesson_.progress_path);
        } catch (const std::exception& e) {
            lesson_.progress_error = e.what();
        }
        lesson_.loaded = true;
        lesson_.loading = false;
        changed = true;
    }
    return changed;
}

void Session::apply(JobResult&& r) {
    if (!r.ok) {
        error_.present = true;
        error_.kind = r.error_kind;
        error_.message = r.error;
        error_.job = slot_name(r.job.slot);
        error_.param = flag_of(r.error);
        if (r.error_kind == moe::ErrorKind::NoDevice) error_.param = "--backend";
        if (r.error_kind == moe::ErrorKind::OutOfMemory && error_.param.empty()) error_.param = "--tokens";
        if (r.job.slot == Slot::Roofline) error_.param.clear();  // its own sizes, not a control's: shown in its panel
        return;
    }
    switch (r.job.slot) {
        case Slot::Routing: {
            last_routing_ms_ = r.wall_ms;
            ++routing_results_;
            // Edit to result: from the edit that asked for this scenario (while dragging, a result for a value
            // passed over counts for that value's edit); older edits than it will never show.
            for (std::size_t i = edits_.size(); i-- > 0;) {
                if (!(edits_[i].first == r.job.scenario)) continue;
                arrived_edit_at_ = edits_[i].second;
                edits_.erase(edits_.begin(), edits_.begin() + std::ptrdiff_t(i) + 1);
                break;
            }
            results_.routing = std::move(r.result);
            break;
        }
        case Slot::Dispatch:
            results_.dispatch = std::move(r.result);
            break;
        case Slot::Layer:
            results_.layer = std::move(r.result);
            break;
        case Slot::Sweep:
            sweep_pending_.push_back({r.job.sweep_x, std::move(r.result)});
            if (sweep_pending_.size() >= sweep_expected_) {
                std::sort(sweep_pending_.begin(), sweep_pending_.end(),
                          [](const SweepPoint& a, const SweepPoint& b) { return a.x < b.x; });
                results_.sweep = std::move(sweep_pending_);
                results_.sweep_axis = plan_.sweep_axis == 1 ? "tokens" : "skew";
                sweep_pending_.clear();
            }
            break;
        case Slot::Pipeline:
            results_.pipeline = std::move(r.result);
            break;
        case Slot::ExpertTimes:
            if (r.expert_times) results_.expert_times = std::move(*r.expert_times);
            break;
        case Slot::Roofline:
            if (r.roofline) results_.roofline = std::move(*r.roofline);
            break;
        case Slot::Lesson:
        case Slot::LessonExperiment:
            break;
    }
    if (results_.routing) backend_resolved_ = results_.routing->backend;
    results_.layer_current =
        results_.layer && results_.routing && results_.layer->scenario == results_.routing->scenario;
    results_.pipeline_current =
        results_.pipeline && results_.routing && results_.pipeline->scenario == results_.routing->scenario;
    results_.expert_times_current =
        results_.expert_times && results_.routing && results_.expert_times->scenario == results_.routing->scenario;
}

void Session::frame_presented() {
    if (arrived_edit_at_ < 0) return;
    latency_.samples_ms.push_back((now_s() - arrived_edit_at_) * 1000.0);
    arrived_edit_at_ = -1;
}

bool Session::load_scenario(const std::string& path, std::string* msg) {
    try {
        demos::Scenario s = demos::Scenario::load(path);
        set_scenario(s);
        scenario_path_ = path;
        rerun(0);
        *msg = "Loaded " + path;
        return true;
    } catch (const std::exception& e) {
        error_ = RunError{true, moe::ErrorKind::BadInput, e.what(), "load", ""};
        *msg = std::string("Could not load: ") + e.what();
        return false;
    }
}

bool Session::load_rooflines(const std::string& path, std::string* msg) {
    try {
        std::vector<demos::ExpertRoofline> set = demos::load_rooflines(path, "roofline file");
        const demos::ExpertRoofline* here = demos::find_roofline(set, demos::roofline_shape(scenario_));
        *msg = "Roofline sweep from " + set.front().recorded + " (" + path + "): " + demos::describe_shapes(set) +
               (here ? "" : "; none is this scenario's shape, so the panel shows it once the scenario has one");
        saved_rooflines_ = std::move(set);
        return true;
    } catch (const std::exception& e) {
        *msg = std::string("Could not load: ") + e.what();
        return false;
    }
}

bool Session::save_scenario(const std::string& path, std::string* msg) {
    try {
        scenario_.save(path);
        scenario_path_ = path;
        *msg = "Saved " + path;
        return true;
    } catch (const std::exception& e) {
        *msg = std::string("Could not save: ") + e.what();
        return false;
    }
}

bool Session::export_result(const std::string& json_path, const std::string& csv_path, std::string* msg) const {
    const demos::Result* r = results_.loads();
    if (!r) {
        *msg = "Nothing to export yet";
        return false;
    }
    std::string err;
    nlohmann::json j = demos::to_json(*r);
    if (results_.dispatch) j["strategies"] = demos::to_json(*results_.dispatch)["strategies"];
    std::string csv = demos::to_csv(*r);
    if (results_.dispatch) {
        // The strategy rows of the dispatch run ("dispatch,STRATEGY,…"), without repeating its header.
        std::string d = demos::to_csv(*results_.dispatch);
        std::size_t pos = 0;
        bool first = true;
        while (pos < d.size()) {
            std::size_t nl = d.find('\n', pos);
            std::string line = d.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos + 1);
            if (!first && line.rfind("dispatch,", 0) == 0) csv += line;
            first = false;
            if (nl == std::string::npos) break;
            pos = nl + 1;
        }
    }
    if (!demos::write_file_atomic(json_path, j.dump(2) + "\n", &err) ||
        !demos::write_file_atomic(csv_path, csv, &err)) {
        *msg = "Export failed: " + err;
        return false;
    }
    *msg = "Exported " + json_path + " and .csv";
    return true;
}

}  // namespace moelab_gui
