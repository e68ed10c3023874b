// The desktop window: GLFW + OpenGL 3 + Dear ImGui 1.86, and ImGui's example main loop (poll → new frame →
// views → render → swap). Also the headless-friendly extras: --frames, --script, --screenshot, frame-time report.
#include <GLFW/glfw3.h>
#include <imgui.h>
#include <imgui_impl_glfw.h>
#include <imgui_impl_opengl3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "app/gui/app.hpp"
#include "app/gui/frame_stats.hpp"
#include "app/gui/gl_failure.hpp"
#include "app/gui/gui.hpp"
#include "app/gui/png.hpp"
#include "app/gui/prefs.hpp"
#include "app/gui/testing/script.hpp"
#include "demos/roofline_saved.hpp"

namespace moelab_gui {
namespace {

using Clock = std::chrono::steady_clock;

void glfw_error(int code, const char* what) { std::fprintf(stderr, "moelab: GLFW error %d: %s\n", code, what); }

void no_display_message(const std::string& why) {
    std::fprintf(stderr,
                 "moelab: cannot open the desktop window: %s.\n"
                 "The same lab works without a window:\n"
                 "  moelab run layer                          the classroom scenario's numbers in the terminal\n"
                 "  moelab run routing --skew hot:6.667 -k 1  loads and the straggler factor for one scenario\n"
                 "  moelab lessons / moelab lesson ID         the predict-then-reveal lessons in the terminal\n"
                 "  moelab snapshot --view overview --out moelab.png\n"
                 "                                            render the app to a PNG with no display (EGL)\n"
                 "Run `moelab --help` for everything.\n",
                 why.c_str());
}

void on_drop(GLFWwindow* w, int n, const char** paths) {
    App* app = static_cast<App*>(glfwGetWindowUserPointer(w));
    for (int i = 0; i < n && app; ++i) {
        std::string p = paths[i];
        if (p.size() > 5 && p.compare(p.size() - 5, 5, ".toml") == 0)
            app->commands().simple(CommandKind::OpenScenario, p);
        else if (p.size() > 5 && p.compare(p.size() - 5, 5, ".json") == 0)  // a saved expert FFN sweep
            app->commands().simple(CommandKind::OpenRoofline, p);
    }
}

void do_captures(App& app, std::vector<Capture> captures, int fb_w, int fb_h, float sx, float sy) {
    for (const Capture& c : captures) {
        int x = 0, y = 0, w = fb_w, h = fb_h;
        if (c.rect.z > c.rect.x && c.rect.w > c.rect.y) {
            x = std::max(0, static_cast<int>(c.rect.x * sx));
            y = std::max(0, static_cast<int>(c.rect.y * sy));
            w = std::min(fb_w - x, static_cast<int>((c.rect.z - c.rect.x) * sx));
            h = std::min(fb_h - y, static_cast<int>((c.rect.w - c.rect.y) * sy));
        }
        std::string err;
        if (write_png(c.path, read_pixels(x, y, w, h, fb_h), w, h, &err)) {
            app.toast("Saved " + c.path);
            std::fprintf(stderr, "moelab: wrote %s (%d×%d)\n", c.path.c_str(), w, h);
        } else {
            app.toast("Could not save PNG: " + err, 8);
            std::fprintf(stderr, "moelab: %s\n", err.c_str());
        }
    }
}

}  // namespace

bool display_available(std::string* why) {
    const char* x = std::getenv("DISPLAY");
    const char* wl = std::getenv("WAYLAND_DISPLAY");
    if ((!x || !*x) && (!wl || !*wl)) {
        if (why) *why = "no display (DISPLAY and WAYLAND_DISPLAY are not set)";
        return false;
    }
    return true;
}

int run_window(const WindowOptions& opt) {
    const auto t_enter = Clock::now();
    const double exec_at_enter = seconds_since_exec();
    // A saved sweep for the roofline panel: read (and a bad file refused, exit 2) before any window opens.
    std::optional<std::vector<demos::ExpertRoofline>> saved;
    if (!opt.roofline.empty()) saved = demos::load_rooflines_for(opt.roofline, demos::roofline_shape(opt.scenario));
    std::string why;
    if (!display_available(&why)) {
        no_display_message(why);
        return 1;
    }
    glfwSetErrorCallback(glfw_error);
    if (!glfwInit()) {
        no_display_message("GLFW could not connect to the display " +
                           std::string(std::getenv("DISPLAY") ? std::getenv("DISPLAY") : ""));
        return 1;
    }
    float mon_scale = 1.0f;
    if (GLFWmonitor* m = glfwGetPrimaryMonitor()) {
        float ys;
        glfwGetMonitorContentScale(m, &mon_scale, &ys);
        mon_scale = std::clamp(mon_scale, 1.0f, 4.0f);
    }
    const char* glsl = "#version 330";
    glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
    glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
    glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
    glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GLFW_TRUE);
    const int win_w = static_cast<int>(opt.width * (opt.frames > 0 ? 1.0f : mon_scale));
    const int win_h = static_cast<int>(opt.height * (opt.frames > 0 ? 1.0f : mon_scale));
    GLFWwindow* window = glfwCreateWindow(win_w, win_h, "moelab — MoE serving lab", nullptr, nullptr);
    if (!window) {
        // Older drivers: any GL 3.0 context with GLSL 1.30.
        glfwDefaultWindowHints();
        glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
        glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 0);
        glsl = "#version 130";
        window = glfwCreateWindow(win_w, win_h, "moelab — MoE serving lab", nullptr, nullptr);
    }
    if (!window) {
        glfwTerminate();
        const std::string loader = gl_loader_problem();
        std::fprintf(
            stderr, "moelab: cannot open the desktop window: %s\n",
            loader.empty()
                ? gl_failure_message(GlStage::Context,
                                     "on display " + std::string(std::getenv("DISPLAY") ? std::getenv("DISPLAY") : ""))
                      .c_str()
                : gl_failure_message(GlStage::Loader, loader).c_str());
        return 1;
    }
    glfwMakeContextCurrent(window);
    glfwSwapInterval(opt.vsync && opt.frames == 0 ? 1 : 0);

    IMGUI_CHECKVERSION();
    ImGui::CreateContext();
    int code = 0;
    {
        AppOptions ao;
        ao.config_dir = opt.config_dir;
        ao.presenter = opt.presenter;
        ao.scenario = opt.scenario;
        ao.preset = opt.preset;
        ao.saved_rooflines = saved;
        App app(ao);
        glfwSetWindowUserPointer(window, &app);
        app.resize_window = [window](int w, int h) { glfwSetWindowSize(window, w, h); };
        app.session().set_wake([] { glfwPostEmptyEvent(); });  // a finished run wakes the idle loop
        glfwSetDropCallback(window, on_drop);
        ImGui_ImplGlfw_InitForOpenGL(window, true);
        if (!ImGui_ImplOpenGL3_Init(glsl)) {
            // Drawing now would call OpenGL functions that were never loaded.
            const std::string loader = gl_loader_problem();
            std::fprintf(stderr, "moelab: cannot draw the window: %s\n",
                         loader.empty()
                             ? gl_failure_message(GlStage::Context, "the OpenGL 3 backend did not start").c_str()
                             : gl_failure_message(GlStage::Loader, loader).c_str());
            app.session().set_wake(nullptr);
            ImGui_ImplGlfw_Shutdown();
            glfwSetWindowUserPointer(window, nullptr);
            code = 1;
        }

        testing::Script script;
        if (code == 0 && !opt.script.empty()) {
            std::string err;
            if (!script.load(opt.script, app.config_dir(), &err)) {
                std::fprintf(stderr, "moelab: %s\n", err.c_str());
                code = 2;
            }
        }
        FrameStats fs;
        int frame = 0;
        int settle = 0;  // frames still to draw after an event, while ImGui's layout and hover settle
        const bool gl_ok = code == 0;
        while (code == 0 && !glfwWindowShouldClose(window) && !app.quit_requested()) {
            const auto t0 = Clock::now();
            const bool animate = opt.frames > 0 || (script.active() && !script.finished()) || app.session().busy() ||
                                 ImGui::IsAnyMouseDown();
            if (animate || settle > 0) {
                glfwPollEvents();
                if (!animate) --settle;
            } else {
                // Nothing changes by itself: sleep until input, a finished run (the runner posts an empty event)
                // or the next thing on screen that expires.
                const double deadline = app.next_deadline_s();
                if (deadline > 0)
                    glfwWaitEventsTimeout(deadline + 0.01);
                else
                    glfwWaitEvents();
                settle = 2;
            }
            float xs = 1, ys = 1;
            glfwGetWindowContentScale(window, &xs, &ys);
            if (app.prepare_look(xs) && frame > 0) {
                ImGui_ImplOpenGL3_DestroyFontsTexture();
                ImGui_ImplOpenGL3_CreateFontsTexture();
            }
            ImGui_ImplOpenGL3_NewFrame();
            ImGui_ImplGlfw_NewFrame();
            if (script.active()) script.before_frame(app);
            const auto t_ui = Clock::now();
            ImGui::NewFrame();
            app.frame();
            ImGui::Render();
            const auto t_gl = Clock::now();
            int fw, fh;
            glfwGetFramebufferSize(window, &fw, &fh);
            glViewport(0, 0, fw, fh);
            const ImVec4 bg = ImGui::GetStyle().Colors[ImGuiCol_WindowBg];  // windows may leave it to the clear
            glClearColor(bg.x, bg.y, bg.z, 1.0f);
            glClear(GL_COLOR_BUFFER_BIT);
            ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
            const ImVec2 fbs = ImGui::GetIO().DisplayFramebufferScale;
            bool last = opt.frames > 0 && frame + 1 >= opt.frames;
            if (script.active() && script.finished() && !last) last = opt.frames > 0 || script.quit_requested();
            std::vector<Capture> captures = app.take_captures();
            if (last && !opt.screenshot.empty()) captures.push_back({opt.screenshot, ImVec4(0, 0, 0, 0)});
            if (!captures.empty()) do_captures(app, std::move(captures), fw, fh, fbs.x, fbs.y);
            glfwSwapBuffers(window);
            app.session().frame_presented();
            const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
            if (frame == 0) {
                fs.startup_enter_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_enter).count();
                fs.startup_exec_ms = exec_at_enter < 0 ? -1 : exec_at_enter * 1000 + fs.startup_enter_ms;
                fs.renderer = gl_renderer();
                fs.width = fw;
                fs.height = fh;
            }
            FrameSample fsm;
            fsm.ms = ms;
            fsm.ui_ms = std::chrono::duration<double, std::milli>(t_gl - t_ui).count();
            fsm.gl_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_gl).count();
            fsm.busy = app.session().status().busy;
            fsm.vertices = ImGui::GetIO().MetricsRenderVertices;
            fsm.mark = script.mark();
            fs.frames.push_back(std::move(fsm));
            ++frame;
            if (last) break;
            // While a run is in progress, draw at most ~30 frames a second: with software GL the frames would
            // otherwise take the cores the CPU reference is timing on. A finished run (the runner posts an empty
            // event) or input ends the wait at once, so a result shows on the next frame.
            if (app.session().status().busy && ms < 33.0 && !std::getenv("MOELAB_NO_THROTTLE"))
                glfwWaitEventsTimeout((33.0 - ms) / 1000.0);
        }
        if (script.active()) {
            if (!script.finished()) {
                std::fprintf(stderr, "moelab: the script did not finish within %d frames\n", frame);
                code = code ? code : 1;
            }
            if (script.failures() > 0) {
                std::fprintf(stderr, "moelab: %d script check(s) failed\n", script.failures());
                code = code ? code : 1;
            }
        }
        fs.edit_to_result_ms = app.session().edit_to_result().samples_ms;
        if (opt.report_frame_times) fs.report(opt.report_json);
        app.session().set_wake(nullptr);
        if (gl_ok) {
            ImGui_ImplOpenGL3_Shutdown();
            ImGui_ImplGlfw_Shutdown();
            glfwSetWindowUserPointer(window, nullptr);
        }
    }
    ImGui::DestroyContext();
    glfwDestroyWindow(window);
    glfwTerminate();
    return code;
}

}  // namespace moelab_gui
