// One frame of the app: take finished runs from the runner, draw the menu and the views in their tiling, turn
// edits into debounced re-runs, and carry out the buttons' requests (save, export, presenter mode, quit).
#include "app/gui/app.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>

#include "app/gui/shortcuts.hpp"
#include "app/gui/view_lesson.hpp"
#include "demos/result_io.hpp"
#include "kernels/api.hpp"

namespace moelab_gui {
namespace {

bool exists(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

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

}  // namespace

double layer_flops(const demos::Scenario& s) {
    return 2.0 * static_cast<double>(s.tokens) * s.top_k * (3.0 * s.ffn * s.hidden);
}

std::vector<Job> plan_jobs(const demos::Scenario& s, const ViewState& vs, bool cpu, bool force_layer) {
    std::vector<Job> jobs;
    jobs.push_back({Slot::Routing, demos::Demo::Pipeline, s, 0, 0});
    if (vs.show_dispatch) {
        // Packing small layers takes milliseconds: a few repeats more cost nothing and keep one noisy sample from
        // deciding. Big layers (hundreds of MB packed per run) keep the repeats asked for.
        demos::Scenario d = s;
        const double packed_bytes = static_cast<double>(s.tokens) * s.top_k * s.hidden * 2;
        if (packed_bytes <= 64e6) d.repeats = std::max(s.repeats, 5);
        jobs.push_back({Slot::Dispatch, demos::Demo::Dispatch, d, 0, 0});
        if (vs.sweep_on) {
            const bool tokens = vs.sweep_axis == 1;
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
    const bool affordable = !cpu || layer_flops(s) <= kCpuLayerFlops;
    if (force_layer || (vs.run_full_layer && affordable)) jobs.push_back({Slot::Layer, demos::Demo::Layer, s, 0, 0});
    return jobs;
}

App::App(const AppOptions& opt) : opt_(opt) {
    std::string dir = opt.config_dir.empty() ? default_config_dir() : opt.config_dir;
    ImGuiIO& io = ImGui::GetIO();
    io.IniFilename = nullptr;
    io.ConfigWindowsMoveFromTitleBarOnly = true;  // a drag inside a chart pans or drags a bar, never the window
    if (opt.persist) {
        std::string err;
        if (ensure_dir(dir, &err)) {
            ini_path = dir + "/imgui.ini";
            prefs_path = dir + "/prefs.toml";
            io.IniFilename = ini_path.c_str();
            std::string warn;
            Prefs p = load_prefs(prefs_path, &warn);
            if (!warn.empty()) std::fprintf(stderr, "moelab: %s\n", warn.c_str());
            apply_prefs(p, vs);
            export_dir = p.export_dir;
            vs.relayout = !exists(ini_path);
        } else {
            std::fprintf(stderr, "moelab: %s; preferences and layout will not be saved\n", err.c_str());
        }
    }
    if (export_dir.empty()) {
        char cwd[4096];
        export_dir = getcwd(cwd, sizeof cwd) ? cwd : ".";
    }
    if (opt.presenter) vs.presenter = true;
    vs.fonts_dirty = true;
    st.scenario = opt.scenario;
    // The preset's name shows only while the scenario is that preset (the backend aside).
    st.preset.clear();
    for (const demos::Preset& p : demos::presets()) {
        demos::Scenario x = p.scenario;
        x.backend = st.scenario.backend;
        if (x == st.scenario && (st.preset.empty() || p.name == opt.preset)) st.preset = p.name;
    }
    st.invalid = st.scenario.validate();
    last_prefs_ = prefs_to_toml(prefs_from(vs, export_dir));
    if (opt.background_runs) {
        runner_ = new Runner();
        probe_ = std::async(std::launch::async, [this] {
            for (const auto& d : moe::gpu::devices()) probe_gpus_.push_back(d.name);
            if (probe_gpus_.empty()) probe_why_ = moe::gpu::unavailable_reason();
        });
        rerun(0);
    }
}

App::~App() {
    ImGuiIO& io = ImGui::GetIO();
    if (io.IniFilename) {
        // io.IniFilename points into this object: write the layout now and let go of it.
        ImGui::SaveIniSettingsToDisk(io.IniFilename);
        io.IniFilename = nullptr;
    }
    if (opt_.persist && !prefs_path.empty()) save_prefs_if_changed(true);
    delete runner_;
    if (probe_.valid()) probe_.wait();
}

bool App::prepare_fonts(float dpi_scale) {
    const float scale = std::clamp(dpi_scale, 0.5f, 4.0f) * vs.user_scale * (vs.presenter ? 1.5f : 1.0f);
    if (!vs.fonts_dirty && std::fabs(scale - vs.look.ui_scale) < 1e-3f && fonts_presenter_ == vs.presenter)
        return false;
    vs.dpi_scale = dpi_scale;
    build_fonts(&vs.fonts, scale);
    Look look = vs.look;
    look.ui_scale = scale;
    if (vs.presenter) {
        look.theme = ThemeKind::HighContrast;
        look.palette = PaletteKind::OkabeIto;
    }
    vs.pal = apply_look(look);
    vs.look.ui_scale = scale;
    vs.fonts_dirty = false;
    fonts_presenter_ = vs.presenter;
    return true;
}

void App::toast(const std::string& msg, double seconds) {
    st.toast = msg;
    st.toast_until = now_s() + seconds;
}

std::string App::file_name(const std::string& stem, const std::string& ext) const {
    std::time_t t = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&t));
    return export_dir + "/" + stem + "-" + stamp + "." + ext;
}

std::string App::plan_key() const {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%d%d%d%d", vs.show_dispatch, vs.sweep_on, vs.sweep_axis, vs.run_full_layer);
    return buf;
}

bool App::cpu_backend() const {
    if (!st.backend_resolved.empty()) return st.backend_resolved != "cuda";
    return st.scenario.backend == "cpu" || !moe::gpu::built();
}

void App::rerun(double delay_ms, bool force_layer) {
    last_plan_key_ = plan_key();
    if (!runner_) return;
    if (!st.invalid.empty()) {
        runner_->cancel();
        return;
    }
    std::vector<Job> jobs = plan_jobs(st.scenario, vs, cpu_backend(), force_layer);
    begin_jobs(jobs);
    runner_->submit(std::move(jobs), delay_ms);
    st.status = runner_->status();
}

void App::begin_jobs(const std::vector<Job>& jobs) {
    sweep_pending_.clear();
    sweep_expected_ = 0;
    for (const Job& j : jobs) sweep_expected_ += j.slot == Slot::Sweep;
    st.error = RunError{};
}

void App::apply(JobResult&& r) {
    if (!r.ok) {
        st.error.present = true;
        st.error.kind = r.error_kind;
        st.error.message = r.error;
        st.error.job = slot_name(r.job.slot);
        st.error.param = flag_of(r.error);
        if (r.error_kind == moe::ErrorKind::NoDevice) st.error.param = "--backend";
        if (r.error_kind == moe::ErrorKind::OutOfMemory && st.error.param.empty()) st.error.param = "--tokens";
        return;
    }
    st.results.generation = std::max(st.results.generation, r.generation);
    switch (r.job.slot) {
        case Slot::Routing:
        case Slot::Pipeline:
            st.results.routing = std::move(r.result);
            break;
        case Slot::Dispatch:
            st.results.dispatch = std::move(r.result);
            break;
        case Slot::Layer:
            st.results.layer = std::move(r.result);
            break;
        case Slot::Sweep:
            sweep_pending_.push_back({r.job.sweep_x, std::move(r.result)});
            if (sweep_pending_.size() >= sweep_expected_) {
                std::sort(sweep_pending_.begin(), sweep_pending_.end(),
                          [](const SweepPoint& a, const SweepPoint& b) { return a.x < b.x; });
                st.results.sweep = std::move(sweep_pending_);
                st.results.sweep_axis = vs.sweep_axis == 1 ? "tokens" : "skew";
                sweep_pending_.clear();
            }
            break;
    }
    if (st.results.routing) st.backend_resolved = st.results.routing->backend;
    st.results.layer_current =
        st.results.layer && st.results.routing && st.results.layer->scenario == st.results.routing->scenario;
}

void App::poll_runner() {
    if (!runner_) return;
    for (JobResult& r : runner_->take_results()) apply(std::move(r));
    st.status = runner_->status();
    st.stale = st.status.busy || st.status.pending || !st.invalid.empty();
    if (!probe_done_ && probe_.valid() && probe_.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        probe_done_ = true;
        st.gpus = probe_gpus_;
        st.gpu_unavailable = probe_why_;
    }
}

std::map<std::string, ImVec4> App::tiling(ImVec2 o, ImVec2 S) const {
    const float f = vs.fonts.body_px;
    const ImGuiStyle& style = ImGui::GetStyle();
    // The banner has three rows (status, notices, provenance legend), whatever its content.
    const float banner_h = std::min(
        S.y * 0.3f, style.WindowPadding.y * 2 + ImGui::GetFrameHeightWithSpacing() * 2 + ImGui::GetFrameHeight() + 2);
    const float ctrl_w = std::clamp(f * 23.0f, 280.0f, S.x * 0.36f);
    const float rx = o.x + ctrl_w, rw = S.x - ctrl_w, ry = o.y + banner_h, rh = S.y - banner_h;
    const float split = 0.56f, top = 0.46f;
    auto rect = [](float x, float y, float w, float h) { return ImVec4(x, y, x + w, y + h); };
    return {{"device", rect(o.x, o.y, S.x, banner_h)},
            {"controls", rect(o.x, ry, ctrl_w, rh)},
            {"loads", rect(rx, ry, rw * split, rh * top)},
            {"comm", rect(rx + rw * split, ry, rw * (1 - split), rh * top)},
            {"timeline", rect(rx, ry + rh * top, rw * split, rh * (1 - top))},
            {"dispatch", rect(rx + rw * split, ry + rh * top, rw * (1 - split), rh * (1 - top))}};
}

bool App::untouched_since_tiling() const {
    int matched = 0;
    for (const auto& [key, r] : last_windows_) {
        auto it = last_tiling_.find(key);
        if (it == last_tiling_.end()) continue;
        const ImVec4& q = it->second;
        if (std::fabs(r.x - q.x) > 2 || std::fabs(r.y - q.y) > 2 || std::fabs(r.z - q.z) > 2 ||
            std::fabs(r.w - q.w) > 2)
            return false;
        ++matched;
    }
    return matched > 0;
}

void App::views() {
    // Below the main menu bar; computed rather than read from WorkPos, which lags the menu bar by a frame.
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    const float menu_h = ImGui::GetFrameHeight();
    const ImVec2 o(vp->Pos.x, vp->Pos.y + menu_h), S(vp->Size.x, vp->Size.y - menu_h);
    const auto t = tiling(o, S);
    // Resizing the OS window, or new font sizes, re-tile, unless the user has arranged the windows themselves.
    if (S.x != last_display_.x || S.y != last_display_.y || vs.fonts.body_px != last_font_px_) {
        if (untouched_since_tiling()) vs.relayout = true;
        last_display_ = S;
        last_font_px_ = vs.fonts.body_px;
    }
    // A relayout holds for a couple of frames, until the menu bar and fonts have settled.
    if (vs.relayout) relayout_frames_ = 2;
    const ImGuiCond cond = relayout_frames_ > 0 ? ImGuiCond_Always : ImGuiCond_FirstUseEver;
    if (relayout_frames_ > 0) last_tiling_ = t;
    auto place = [&](const char* key) {
        ImVec4 r = t.at(key);
        if (!vs.solo.empty()) r = ImVec4(o.x, o.y, o.x + S.x, o.y + S.y);  // one view fills the window
        const ImGuiCond c = vs.solo.empty() ? cond : ImGuiCond_Always;
        ImGui::SetNextWindowPos(ImVec2(r.x, r.y), c);
        ImGui::SetNextWindowSize(ImVec2(r.z - r.x, r.w - r.y), c);
    };
    if (vs.show_device) {
        place("device");
        show_device(st, vs, &vs.show_device);
    }
    demos::Scenario edit = st.scenario;
    std::string preset = st.preset;
    bool changed = false;
    if (vs.show_controls) {
        place("controls");
        changed |= show_controls(st, vs, &edit, &preset, &vs.show_controls);
    }
    if (vs.show_loads) {
        place("loads");
        show_loads(st, vs, &vs.show_loads);
    }
    if (vs.show_comm) {
        place("comm");
        show_comm(st, vs, &vs.show_comm);
    }
    if (vs.show_timeline) {
        place("timeline");
        show_timeline(st, vs, &vs.show_timeline);
    }
    if (vs.show_dispatch) {
        place("dispatch");
        show_dispatch(st, vs, &vs.show_dispatch);
    }
    if (vs.show_help) {
        ImGui::SetNextWindowPos(ImVec2(o.x + S.x * 0.2f, o.y + S.y * 0.12f), ImGuiCond_Appearing);
        ImGui::SetNextWindowSize(ImVec2(S.x * 0.6f, S.y * 0.75f), ImGuiCond_Appearing);
        show_help(st, vs, &vs.show_help);
    }
    show_lesson(*this, &vs.show_lesson);  // every frame: F3 toggles it, and a running reveal advances
    vs.relayout = false;
    if (relayout_frames_ > 0) --relayout_frames_;
    if (opt_.background_runs) changed |= handle_shortcuts(vs, &edit, &preset);
    if (changed) {
        // A preset's name stays only while the scenario is still that preset (the backend aside).
        for (const demos::Preset& p : demos::presets()) {
            if (p.name != preset) continue;
            demos::Scenario x = p.scenario;
            x.backend = edit.backend;
            if (!(x == edit)) preset.clear();
        }
        if (!(edit == st.scenario)) {
            st.scenario = edit;
            st.preset = preset;
            st.invalid = st.scenario.validate();
            rerun(150);
        } else {
            st.preset = preset;
        }
    }
}

void App::save_prefs_if_changed(bool force) {
    if (prefs_path.empty() || (!force && frame_no_ % 60 != 0)) return;
    std::string now = prefs_to_toml(prefs_from(vs, export_dir));
    if (now == last_prefs_ && !force) return;
    if (now == last_prefs_ && exists(prefs_path)) return;
    std::string err;
    if (write_file_atomic(prefs_path, now, &err)) {
        last_prefs_ = now;
    } else if (force) {
        std::fprintf(stderr, "moelab: %s\n", err.c_str());
    }
}

// True when any two of last frame's view windows intersect.
bool windows_overlap(const std::map<std::string, ImVec4>& w) {
    for (auto a = w.begin(); a != w.end(); ++a)
        for (auto b = std::next(a); b != w.end(); ++b) {
            const ImVec4 &p = a->second, &q = b->second;
            if (p.x < q.z - 1 && q.x < p.z - 1 && p.y < q.w - 1 && q.y < p.w - 1) return true;
        }
    return false;
}

void App::frame() {
    ++frame_no_;
    // Tiled windows that do not overlap need no background of their own: the framebuffer is cleared to the same
    // colour. Software GL (llvmpipe) is bound by the pixels it shades, and this halves them.
    const bool bare = !vs.probe.windows.empty() && !windows_overlap(vs.probe.windows);
    last_windows_ = vs.probe.windows;
    vs.probe.anchors.clear();
    vs.probe.errors.clear();
    vs.probe.windows.clear();
    poll_runner();
    menu_bar();
    if (bare) ImGui::PushStyleColor(ImGuiCol_WindowBg, ImVec4(0, 0, 0, 0));
    views();
    if (bare) ImGui::PopStyleColor();
    if (opt_.background_runs) {
        if (plan_key() != last_plan_key_) rerun(0);
        carry_out_requests();
        file_popups();
        save_prefs_if_changed(false);
    }
    if (!st.toast.empty() && now_s() < st.toast_until) {
        ImDrawList* dl = ImGui::GetForegroundDrawList();
        const ImGuiViewport* vp = ImGui::GetMainViewport();
        ImVec2 ts = ImGui::CalcTextSize(st.toast.c_str());
        ImVec2 a(vp->WorkPos.x + 12, vp->WorkPos.y + vp->WorkSize.y - ts.y - 20);
        dl->AddRectFilled(ImVec2(a.x - 8, a.y - 6), ImVec2(a.x + ts.x + 8, a.y + ts.y + 6), vs.pal.panel, 4);
        dl->AddRect(ImVec2(a.x - 8, a.y - 6), ImVec2(a.x + ts.x + 8, a.y + ts.y + 6), vs.pal.ok, 4, 0, 1.5f);
        dl->AddText(a, vs.pal.text, st.toast.c_str());
    }
}

}  // namespace moelab_gui
