// The app without its window: the Session (state), the ViewState (toggles, zoom, selection), the command queue and
// the preferences. It draws one frame of UI between ImGui::NewFrame and ImGui::Render, then carries out the
// commands the frame queued. The GLFW window and the EGL snapshot both drive it.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/gui/app_state.hpp"
#include "app/gui/prefs.hpp"
#include "demos/roofline.hpp"

namespace moelab_gui {

struct AppOptions {
    std::string config_dir;       // imgui.ini and prefs.toml; "" = default_config_dir()
    bool persist = true;          // read and write prefs and imgui.ini
    bool presenter = false;       // force presenter mode on at start
    demos::Scenario scenario;     // the starting scenario
    std::string preset;           // its preset name, if it is one
    bool background_runs = true;  // false: the snapshot runs jobs itself and draws no menus
    // Saved rooflines (`--roofline FILE`); unset: the run of record carried in the binary (SessionOptions)
    std::optional<std::vector<demos::ExpertRoofline>> saved_rooflines;
};

// A region of the framebuffer to save as PNG after this frame renders.
struct Capture {
    std::string path;
    ImVec4 rect;  // screen coordinates; (0,0,0,0) = the whole window
};

class App {
  public:
    explicit App(const AppOptions& opt);
    ~App();
    App(const App&) = delete;
    App& operator=(const App&) = delete;

    // Before NewFrame: rebuilds the look (fonts, palette) when the size or mode changed. Returns true when it did,
    // and the renderer must then re-upload the font texture.
    bool prepare_look(float dpi_scale);
    // The whole UI of one frame, then the commands it queued.
    void frame();
    // Carries out the queued commands (frame() calls it; the script driver's commands go the same way).
    void carry_out();

    Session& session() { return *session_; }
    const Session& session() const { return *session_; }
    ViewState& view_state() { return vs_; }
    Commands& commands() { return cmds_; }
    // PNGs to write after this frame renders; the window takes them.
    std::vector<Capture> take_captures();
    bool quit_requested() const { return quit_; }
    // The directory for the script's ${out} and the config files.
    const std::string& config_dir() const { return config_dir_; }
    // A short status line ("Saved …") and until when it shows.
    void toast(const std::string& msg, double seconds = 4);
    // Seconds until something on screen changes by itself (a toast expires); < 0: nothing pending.
    double next_deadline_s() const;
    std::function<void(int, int)> resize_window;  // set by the window; scripts resize through it

  private:
    void menu_bar();
    void views();
    void file_popups();
    void carry_out(const Command& c);
    void save_prefs_if_changed(bool force);
    std::string file_name(const std::string& stem, const std::string& ext) const;

    AppOptions opt_;
    std::unique_ptr<Session> session_;
    ViewState vs_;
    Commands cmds_;
    std::vector<Capture> captures_;
    bool quit_ = false;
    std::string config_dir_, ini_path_, prefs_path_, export_dir_;
    std::string last_prefs_;
    int frame_no_ = 0;
    std::string toast_;
    double toast_until_ = 0;
    char path_buf_[1024] = {};
    int popup_ = 0;  // 0 none, 1 save scenario, 2 open scenario
    int relayout_frames_ = 0;
    std::map<std::string, ImVec4> last_windows_;  // view window rectangles of the previous frame
    std::map<std::string, ImVec4> last_tiling_;   // the rectangles of the last tiling
    ImVec2 last_display_{0, 0};
    float last_font_px_ = 0;
    int last_page_ = 0;
    bool last_presenter_ = false;
    bool was_curtained_ = false;  // the last frame drew no views under the lesson's curtain
    bool curtained_now() const;   // this frame draws no views: the lesson's curtain covers them
    // The default tiling of the work area (origin o, size S), by view key.
    std::map<std::string, ImVec4> tiling(ImVec2 o, ImVec2 S) const;
    // The windows are still where the last tiling put them.
    bool untouched_since_tiling() const;
};

}  // namespace moelab_gui
