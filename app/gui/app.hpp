// The app without its window: owns AppState, ViewState, the runner and the preferences, and draws one frame
// of UI between ImGui::NewFrame and ImGui::Render. The GLFW window and the EGL snapshot both drive it.
#pragma once
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "app/gui/app_state.hpp"
#include "app/gui/prefs.hpp"
#include "app/gui/runner.hpp"

namespace moelab_gui {

struct AppOptions {
    std::string config_dir;       // imgui.ini and prefs.toml; "" = default_config_dir()
    bool persist = true;          // read and write prefs and imgui.ini
    bool presenter = false;       // force presenter mode on at start
    demos::Scenario scenario;     // the starting scenario
    std::string preset;           // its preset name, if it is one
    bool background_runs = true;  // false: the snapshot runs jobs itself and draws no menus
};

// A region of the framebuffer to save as PNG after this frame renders.
struct Capture {
    std::string path;
    ImVec4 rect;  // screen coordinates; (0,0,0,0) = the whole window
};

// The jobs one scenario needs: routing + pipeline model first (fast), then dispatch and its sweep when that view
// is open, then the whole layer when asked.
// On the CPU reference the whole layer joins only while its expert FFNs stay under kCpuLayerFlops (app_state.hpp);
// `force_layer` adds it regardless (the "+ experts" button).
std::vector<Job> plan_jobs(const demos::Scenario& s, const ViewState& vs, bool cpu = false, bool force_layer = false);

struct LessonPlayer;  // view_lesson.hpp

class App {
  public:
    explicit App(const AppOptions& opt);
    ~App();
    App(const App&) = delete;
    App& operator=(const App&) = delete;

    // Before NewFrame: rebuilds the font atlas when the size or mode changed. Returns true when it did, and the
    // renderer must then re-upload the font texture.
    bool prepare_fonts(float dpi_scale);
    // The whole UI of one frame.
    void frame();
    // Applies one finished job to the results (the snapshot feeds results through this too).
    void apply(JobResult&& r);
    // Resets what a batch of jobs will fill (the sweep's expected points); rerun and the snapshot call it.
    void begin_jobs(const std::vector<Job>& jobs);
    // Starts a run of the current scenario now (or after `delay_ms`); `force_layer` includes the whole layer.
    void rerun(double delay_ms = 0, bool force_layer = false);
    // Whether runs go to the CPU reference (from the last result, or what this build can do).
    bool cpu_backend() const;
    // Loads a scenario file into the controls and runs it.
    bool load_scenario(const std::string& path);
    bool save_scenario(const std::string& path);
    bool export_result(const std::string& json_path, const std::string& csv_path);
    void toast(const std::string& msg, double seconds = 4);
    std::string file_name(const std::string& stem, const std::string& ext) const;

    AppState st;
    ViewState vs;
    std::vector<Capture> captures;         // filled during frame(), consumed by the window after rendering
    std::shared_ptr<LessonPlayer> lesson;  // the lesson view's state, created on its first frame
    bool quit = false;
    std::function<void(int, int)> resize_window;  // set by the window; scripts resize through it
    std::string ini_path, prefs_path, export_dir;

  private:
    void menu_bar();
    void views();
    void file_popups();
    void carry_out_requests();
    void poll_runner();
    void save_prefs_if_changed(bool force);
    std::string plan_key() const;

    AppOptions opt_;
    Runner* runner_ = nullptr;
    std::string last_plan_key_;
    std::string last_prefs_;
    int frame_no_ = 0;
    std::vector<SweepPoint> sweep_pending_;
    std::size_t sweep_expected_ = 0;
    std::future<void> probe_;
    bool probe_done_ = false;
    std::vector<std::string> probe_gpus_;
    std::string probe_why_;
    char path_buf_[1024] = {};
    int popup_ = 0;  // 0 none, 1 save scenario, 2 open scenario
    bool fonts_presenter_ = false;
    int relayout_frames_ = 0;
    std::map<std::string, ImVec4> last_windows_;  // view window rectangles of the previous frame
    std::map<std::string, ImVec4> last_tiling_;   // the rectangles of the last tiling
    ImVec2 last_display_{0, 0};
    float last_font_px_ = 0;
    // The default tiling of the work area (origin o, size S), by view key.
    std::map<std::string, ImVec4> tiling(ImVec2 o, ImVec2 S) const;
    // The windows are still where the last tiling put them.
    bool untouched_since_tiling() const;
};

}  // namespace moelab_gui
