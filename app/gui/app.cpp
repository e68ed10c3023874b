// One frame of the app: take finished runs from the session, draw the menu and the views of the table in their
// tiling (presenter mode: a page of one or two views), then carry out the commands the frame queued.
#include "app/gui/app.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>

#include "app/gui/shortcuts.hpp"
#include "kernels/api.hpp"

namespace moelab_gui {
namespace {

bool exists(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// True when any two of last frame's view windows intersect.
bool windows_overlap(const std::map<std::string, ImVec4>& w) {
    for (auto a = w.begin(); a != w.end(); ++a)
        for (auto b = std::next(a); b != w.end(); ++b) {
            const ImVec4 &p = a->second, &q = b->second;
            if (p.x < q.z - 1 && q.x < p.z - 1 && p.y < q.w - 1 && q.y < p.w - 1) return true;
        }
    return false;
}

// Presenter mode's pages: one or two views at a time, large enough for the back of the room.
const std::vector<std::vector<std::string>>& presenter_pages() {
    static const std::vector<std::vector<std::string>> kPages = {
        {"loads"}, {"comm"}, {"timeline"}, {"dispatch"}, {"controls", "loads"}};
    return kPages;
}

}  // namespace

App::App(const AppOptions& opt) : opt_(opt) {
    config_dir_ = opt.config_dir.empty() ? default_config_dir() : opt.config_dir;
    ImGuiIO& io = ImGui::GetIO();
    io.IniFilename = nullptr;
    io.ConfigWindowsMoveFromTitleBarOnly = true;  // a drag inside a chart pans or drags a bar, never the window
    if (opt.persist) {
        std::string err;
        if (ensure_dir(config_dir_, &err)) {
            ini_path_ = config_dir_ + "/imgui.ini";
            prefs_path_ = config_dir_ + "/prefs.toml";
            io.IniFilename = ini_path_.c_str();
            std::string warn;
            Prefs p = load_prefs(prefs_path_, &warn);
            if (!warn.empty()) std::fprintf(stderr, "moelab: %s\n", warn.c_str());
            apply_prefs(p, vs_);
            export_dir_ = p.export_dir;
            vs_.relayout = !exists(ini_path_);
        } else {
            std::fprintf(stderr, "moelab: %s; preferences and layout will not be saved\n", err.c_str());
        }
    }
    if (export_dir_.empty()) {
        char cwd[4096];
        export_dir_ = getcwd(cwd, sizeof cwd) ? cwd : ".";
    }
    if (opt.presenter) vs_.presenter = true;
    last_prefs_ = prefs_to_toml(prefs_from(vs_, export_dir_));
    SessionOptions so;
    so.scenario = opt.scenario;
    so.preset = opt.preset;
    so.background = opt.background_runs;
    so.saved_rooflines = opt.saved_rooflines;
    // Lesson progress lives beside the app's preferences (so --config-dir moves it too).
    if (!prefs_path_.empty()) so.progress_path = config_dir_ + "/progress.toml";
    session_ = std::make_unique<Session>(so);
    session_->set_plan(run_plan(vs_));
}

App::~App() {
    ImGuiIO& io = ImGui::GetIO();
    if (io.IniFilename) {
        // io.IniFilename points into this object: write the layout now and let go of it.
        ImGui::SaveIniSettingsToDisk(io.IniFilename);
        io.IniFilename = nullptr;
    }
    if (opt_.persist && !prefs_path_.empty()) save_prefs_if_changed(true);
}

bool App::prepare_look(float dpi_scale) {
    Look look = vs_.look;
    look.ui_scale = std::clamp(dpi_scale, 0.5f, 4.0f) * vs_.user_scale * (vs_.presenter ? 1.5f : 1.0f);
    return update_skin(look, vs_.presenter);
}

void App::toast(const std::string& msg, double seconds) {
    toast_ = msg;
    toast_until_ = now_s() + seconds;
}

double App::next_deadline_s() const {
    const double t = toast_until_ - now_s();
    double next = !toast_.empty() && t > 0 ? t : -1;
    // The GPU probe and the lesson files arrive without an event: look again shortly until they are in.
    if (session_->background_pending()) next = next < 0 ? 0.1 : std::min(next, 0.1);
    return next;
}

std::vector<Capture> App::take_captures() {
    std::vector<Capture> c;
    c.swap(captures_);
    return c;
}

std::string App::file_name(const std::string& stem, const std::string& ext) const {
    std::time_t t = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&t));
    return export_dir_ + "/" + stem + "-" + stamp + "." + ext;
}

std::map<std::string, ImVec4> App::tiling(ImVec2 o, ImVec2 S) const {
    const float f = skin().fonts.body_px;
    const ImGuiStyle& style = ImGui::GetStyle();
    // The banner has three rows (status, notices, provenance legend), whatever its content.
    const float banner_h = std::min(
        S.y * 0.3f, style.WindowPadding.y * 2 + ImGui::GetFrameHeightWithSpacing() * 2 + ImGui::GetFrameHeight() + 2);
    auto rect = [](float x, float y, float w, float h) { return ImVec4(x, y, x + w, y + h); };
    const float ry = o.y + banner_h, rh = S.y - banner_h;
    if (vs_.presenter) {
        // A page of one view (the whole area) or two (side by side, controls narrower).
        const auto& pages = presenter_pages();
        const int n = int(pages.size());
        const auto& page = pages[std::size_t(((vs_.presenter_page % n) + n) % n)];
        std::map<std::string, ImVec4> t{{"device", rect(o.x, o.y, S.x, banner_h)}};
        if (page.size() == 1) {
            t[page[0]] = rect(o.x, ry, S.x, rh);
        } else {
            const float w0 = page[0] == "controls" ? std::clamp(f * 24.0f, 320.0f, S.x * 0.4f) : S.x * 0.5f;
            t[page[0]] = rect(o.x, ry, w0, rh);
            t[page[1]] = rect(o.x + w0, ry, S.x - w0, rh);
        }
        return t;
    }
    const float ctrl_w = std::clamp(f * 23.0f, 280.0f, S.x * 0.36f);
    const float rx = o.x + ctrl_w, rw = S.x - ctrl_w;
    const float split = 0.56f, top = 0.46f;
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

bool App::curtained_now() const {
    return vs_.lesson.curtain && vs_.show_lesson && session_->lesson().lesson() &&
           session_->lesson().phase != LessonPhase::Revealed && !vs_.snapshot;
}

void App::views() {
    // Below the main menu bar; computed rather than read from WorkPos, which lags the menu bar by a frame.
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    const float menu_h = ImGui::GetFrameHeight();
    const ImVec2 o(vp->Pos.x, vp->Pos.y + menu_h), S(vp->Size.x, vp->Size.y - menu_h);
    const auto t = tiling(o, S);
    // Resizing the OS window, new font sizes or a new presenter page re-tile, unless the user has arranged the
    // windows themselves.
    if (vs_.presenter != last_presenter_ || (vs_.presenter && vs_.presenter_page != last_page_)) vs_.relayout = true;
    last_presenter_ = vs_.presenter;
    last_page_ = vs_.presenter_page;
    if (S.x != last_display_.x || S.y != last_display_.y || skin().fonts.body_px != last_font_px_) {
        if (untouched_since_tiling() || vs_.presenter) vs_.relayout = true;
        last_display_ = S;
        last_font_px_ = skin().fonts.body_px;
    }
    // A relayout holds for a couple of frames, until the menu bar and fonts have settled.
    if (vs_.relayout) relayout_frames_ = 2;
    const ImGuiCond cond = relayout_frames_ > 0 ? ImGuiCond_Always : ImGuiCond_FirstUseEver;
    if (relayout_frames_ > 0) last_tiling_ = t;
    // Under the lesson's curtain the other views cannot be seen: they are not drawn at all (software GL pays for
    // every pixel, and a reveal that computes for seconds keeps the frames coming faster).
    const bool curtained = curtained_now();
    for (const ViewInfo& v : view_registry()) {
        bool* open = vs_.open_flag(v.id);
        if (v.placement == Placement::Own) {
            v.show(*session_, vs_, cmds_, open);  // the lesson places itself (and its curtain)
            continue;
        }
        if (!*open || curtained) continue;
        if (v.placement == Placement::Centered) {
            ImGui::SetNextWindowPos(ImVec2(o.x + S.x * 0.2f, o.y + S.y * 0.12f), ImGuiCond_Appearing);
            ImGui::SetNextWindowSize(ImVec2(S.x * 0.6f, S.y * 0.75f), ImGuiCond_Appearing);
            v.show(*session_, vs_, cmds_, open);
            continue;
        }
        auto it = t.find(v.key);
        if (vs_.presenter && it == t.end()) continue;  // not on this presenter page
        ImVec4 r = it == t.end() ? ImVec4(o.x, o.y, o.x + S.x * 0.5f, o.y + S.y * 0.5f) : it->second;
        ImGuiCond c = cond;
        if (!vs_.solo.empty()) {
            if (vs_.solo != v.key && v.id != ViewId::Device) continue;
            r = ImVec4(o.x, o.y, o.x + S.x, o.y + S.y);  // one view fills the window
            c = ImGuiCond_Always;
            if (v.id == ViewId::Device) continue;
        }
        if (vs_.presenter) c = ImGuiCond_Always;
        ImGui::SetNextWindowPos(ImVec2(r.x, r.y), c);
        ImGui::SetNextWindowSize(ImVec2(r.z - r.x, r.w - r.y), c);
        v.show(*session_, vs_, cmds_, open);
    }
    // Views that appear take the focus and come to the front: when the curtain lifts, the lesson stays on top.
    if (was_curtained_ && !curtained && vs_.show_lesson) ImGui::SetWindowFocus(view_info(ViewId::Lesson).title);
    was_curtained_ = curtained;
    vs_.relayout = false;
    if (relayout_frames_ > 0) --relayout_frames_;
    if (opt_.background_runs) handle_shortcuts(*session_, vs_, cmds_);
}

void App::save_prefs_if_changed(bool force) {
    if (prefs_path_.empty() || (!force && frame_no_ % 60 != 0)) return;
    std::string now = prefs_to_toml(prefs_from(vs_, export_dir_));
    if (now == last_prefs_ && !force) return;
    if (now == last_prefs_ && exists(prefs_path_)) return;
    std::string err;
    if (write_file_atomic(prefs_path_, now, &err)) {
        last_prefs_ = now;
    } else if (force) {
        std::fprintf(stderr, "moelab: %s\n", err.c_str());
    }
}

void App::frame() {
    ++frame_no_;
    testing::Probe& probe = testing::probe();
    // Tiled windows that do not overlap need no background of their own: the framebuffer is cleared to the same
    // colour. Software GL (llvmpipe) is bound by the pixels it shades, and this halves them.
    last_windows_ = probe.windows;
    session_->poll();
    // The frame the curtain lifts, the views come back over last frame's lone lesson window: not bare then.
    const bool lifting = was_curtained_ && !curtained_now();
    const bool bare = !probe.windows.empty() && !windows_overlap(probe.windows) && !lifting;
    probe.clear();
    menu_bar();
    if (bare) ImGui::PushStyleColor(ImGuiCol_WindowBg, ImVec4(0, 0, 0, 0));
    views();
    if (bare) ImGui::PopStyleColor();
    if (opt_.background_runs) {
        session_->set_plan(run_plan(vs_));
        if (vs_.show_lesson) session_->load_lessons();
        carry_out();
        file_popups();
        save_prefs_if_changed(false);
    }
    if (!toast_.empty() && now_s() < toast_until_) {
        const Palette& pal = skin().pal;
        ImDrawList* dl = ImGui::GetForegroundDrawList();
        const ImGuiViewport* vp = ImGui::GetMainViewport();
        ImVec2 ts = ImGui::CalcTextSize(toast_.c_str());
        ImVec2 a(vp->WorkPos.x + 12, vp->WorkPos.y + vp->WorkSize.y - ts.y - 20);
        dl->AddRectFilled(ImVec2(a.x - 8, a.y - 6), ImVec2(a.x + ts.x + 8, a.y + ts.y + 6), pal.panel, 4);
        dl->AddRect(ImVec2(a.x - 8, a.y - 6), ImVec2(a.x + ts.x + 8, a.y + ts.y + 6), pal.ok, 4, 0, 1.5f);
        dl->AddText(a, pal.text, toast_.c_str());
    }
}

}  // namespace moelab_gui
