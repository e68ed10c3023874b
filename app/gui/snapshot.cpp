// `moelab snapshot`: runs the scenario, then draws a view with the app's own code into an OpenGL framebuffer
// on a windowless EGL context (Mesa surfaceless, or an EGL device such as NVIDIA's), and writes a PNG. No X.
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GL/gl.h>
#include <GL/glext.h>
#include <imgui.h>
#include <imgui_impl_opengl3.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "app/gui/app.hpp"
#include "app/gui/gl_failure.hpp"
#include "app/gui/gui.hpp"
#include "app/gui/png.hpp"
#include "demos/result_load.hpp"
#include "demos/roofline_saved.hpp"
#include "kernels/api.hpp"

namespace moelab_gui {
namespace {

bool has_ext(const char* list, const char* name) {
    if (!list) return false;
    std::size_t n = std::strlen(name);
    for (const char* p = list; (p = std::strstr(p, name)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return true;
    return false;
}

// A current OpenGL context with no window, and a framebuffer object to draw into.
class Offscreen {
  public:
    ~Offscreen() {
        if (fbo_ && del_fb_) del_fb_(1, &fbo_);
        if (rb_ && del_rb_) del_rb_(1, &rb_);
        if (dpy_ != EGL_NO_DISPLAY) {
            eglMakeCurrent(dpy_, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
            if (surf_ != EGL_NO_SURFACE) eglDestroySurface(dpy_, surf_);
            if (ctx_ != EGL_NO_CONTEXT) eglDestroyContext(dpy_, ctx_);
            eglTerminate(dpy_);
        }
    }

    bool create(int w, int h, std::string* err) {
        const char* cext = eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
        auto get_platform_display =
            reinterpret_cast<PFNEGLGETPLATFORMDISPLAYEXTPROC>(eglGetProcAddress("eglGetPlatformDisplayEXT"));
        std::string tried;
        const char* force = std::getenv("MOELAB_EGL_PLATFORM");  // surfaceless | device | default
        auto want = [&](const char* p) { return !force || std::strcmp(force, p) == 0; };
        if (want("surfaceless") && get_platform_display && has_ext(cext, "EGL_MESA_platform_surfaceless")) {
            if (attempt(get_platform_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, nullptr), w, h,
                        "EGL surfaceless platform", &tried))
                return true;
        }
        if (want("device") && get_platform_display && has_ext(cext, "EGL_EXT_platform_device")) {
            auto query = reinterpret_cast<PFNEGLQUERYDEVICESEXTPROC>(eglGetProcAddress("eglQueryDevicesEXT"));
            EGLDeviceEXT devs[16];
            EGLint n = 0;
            if (query && query(16, devs, &n)) {
                for (EGLint i = 0; i < n; ++i)
                    if (attempt(get_platform_display(EGL_PLATFORM_DEVICE_EXT, devs[i], nullptr), w, h,
                                "EGL device " + std::to_string(i), &tried))
                        return true;
            }
        }
        if (want("default") && attempt(eglGetDisplay(EGL_DEFAULT_DISPLAY), w, h, "EGL default display", &tried))
            return true;
        if (fb_failed_)
            *err = gl_failure_message(GlStage::Framebuffer, tried);
        else
            *err = gl_failure_message(
                GlStage::Context, "no EGL display gave one: " + (tried.empty() ? std::string("none found") : tried));
        return false;
    }

    void bind() const {
        bind_fb_(GL_FRAMEBUFFER, fbo_);
        glViewport(0, 0, w_, h_);
    }
    const char* glsl() const { return glsl_; }
    const std::string& how() const { return how_; }

  private:
    bool attempt(EGLDisplay dpy, int w, int h, const std::string& how, std::string* tried) {
        if (dpy == EGL_NO_DISPLAY) return false;
        EGLint major = 0, minor = 0;
        if (!eglInitialize(dpy, &major, &minor)) {
            *tried += (tried->empty() ? "" : "; ") + how + ": eglInitialize failed";
            return false;
        }
        if (!eglBindAPI(EGL_OPENGL_API)) {
            *tried += (tried->empty() ? "" : "; ") + how + ": no desktop OpenGL";
            eglTerminate(dpy);
            return false;
        }
        const EGLint cfg_pb[] = {EGL_SURFACE_TYPE,
                                 EGL_PBUFFER_BIT,
                                 EGL_RENDERABLE_TYPE,
                                 EGL_OPENGL_BIT,
                                 EGL_RED_SIZE,
                                 8,
                                 EGL_GREEN_SIZE,
                                 8,
                                 EGL_BLUE_SIZE,
                                 8,
                                 EGL_NONE};
        const EGLint cfg_any[] = {EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_NONE};
        EGLConfig cfg = nullptr;
        EGLint n = 0;
        if (!eglChooseConfig(dpy, cfg_pb, &cfg, 1, &n) || n == 0) eglChooseConfig(dpy, cfg_any, &cfg, 1, &n);
        if (n == 0) {
            *tried += (tried->empty() ? "" : "; ") + how + ": no OpenGL config";
            eglTerminate(dpy);
            return false;
        }
        const EGLint core33[] = {
            EGL_CONTEXT_MAJOR_VERSION,           3,       EGL_CONTEXT_MINOR_VERSION, 3, EGL_CONTEXT_OPENGL_PROFILE_MASK,
            EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT, EGL_NONE};
        const EGLint gl30[] = {EGL_CONTEXT_MAJOR_VERSION, 3, EGL_CONTEXT_MINOR_VERSION, 0, EGL_NONE};
        EGLContext ctx = eglCreateContext(dpy, cfg, EGL_NO_CONTEXT, core33);
        glsl_ = "#version 330";
        if (ctx == EGL_NO_CONTEXT) {
            ctx = eglCreateContext(dpy, cfg, EGL_NO_CONTEXT, gl30);
            glsl_ = "#version 130";
        }
        if (ctx == EGL_NO_CONTEXT) {
            *tried += (tried->empty() ? "" : "; ") + how + ": no OpenGL 3 context";
            eglTerminate(dpy);
            return false;
        }
        EGLSurface surf = EGL_NO_SURFACE;
        if (!has_ext(eglQueryString(dpy, EGL_EXTENSIONS), "EGL_KHR_surfaceless_context")) {
            const EGLint pb[] = {EGL_WIDTH, 16, EGL_HEIGHT, 16, EGL_NONE};
            surf = eglCreatePbufferSurface(dpy, cfg, pb);
        }
        if (!eglMakeCurrent(dpy, surf, surf, ctx)) {
            *tried += (tried->empty() ? "" : "; ") + how + ": eglMakeCurrent failed";
            if (surf != EGL_NO_SURFACE) eglDestroySurface(dpy, surf);
            eglDestroyContext(dpy, ctx);
            eglTerminate(dpy);
            return false;
        }
        dpy_ = dpy;
        ctx_ = ctx;
        surf_ = surf;
        how_ = how;
        // Framebuffer functions are not in GL 1.1: fetch them from EGL.
        auto gen_fb = reinterpret_cast<PFNGLGENFRAMEBUFFERSPROC>(eglGetProcAddress("glGenFramebuffers"));
        auto gen_rb = reinterpret_cast<PFNGLGENRENDERBUFFERSPROC>(eglGetProcAddress("glGenRenderbuffers"));
        auto bind_rb = reinterpret_cast<PFNGLBINDRENDERBUFFERPROC>(eglGetProcAddress("glBindRenderbuffer"));
        auto storage = reinterpret_cast<PFNGLRENDERBUFFERSTORAGEPROC>(eglGetProcAddress("glRenderbufferStorage"));
        auto attach =
            reinterpret_cast<PFNGLFRAMEBUFFERRENDERBUFFERPROC>(eglGetProcAddress("glFramebufferRenderbuffer"));
        auto status = reinterpret_cast<PFNGLCHECKFRAMEBUFFERSTATUSPROC>(eglGetProcAddress("glCheckFramebufferStatus"));
        bind_fb_ = reinterpret_cast<PFNGLBINDFRAMEBUFFERPROC>(eglGetProcAddress("glBindFramebuffer"));
        del_fb_ = reinterpret_cast<PFNGLDELETEFRAMEBUFFERSPROC>(eglGetProcAddress("glDeleteFramebuffers"));
        del_rb_ = reinterpret_cast<PFNGLDELETERENDERBUFFERSPROC>(eglGetProcAddress("glDeleteRenderbuffers"));
        if (!gen_fb || !gen_rb || !bind_rb || !storage || !attach || !status || !bind_fb_) {
            *tried += (tried->empty() ? "" : "; ") + how + ": no framebuffer objects";
            fb_failed_ = true;
            return false;
        }
        gen_fb(1, &fbo_);
        bind_fb_(GL_FRAMEBUFFER, fbo_);
        gen_rb(1, &rb_);
        bind_rb(GL_RENDERBUFFER, rb_);
        storage(GL_RENDERBUFFER, GL_RGBA8, w, h);
        attach(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, rb_);
        // MOELAB_TEST_GL_FAIL=framebuffer: tests take this path on a machine whose framebuffers work.
        const char* test_fail = std::getenv("MOELAB_TEST_GL_FAIL");
        if (status(GL_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE ||
            (test_fail && std::strcmp(test_fail, "framebuffer") == 0)) {
            *tried += (tried->empty() ? "" : "; ") + how + ": incomplete framebuffer";
            fb_failed_ = true;
            return false;
        }
        w_ = w;
        h_ = h;
        return true;
    }

    EGLDisplay dpy_ = EGL_NO_DISPLAY;
    EGLContext ctx_ = EGL_NO_CONTEXT;
    EGLSurface surf_ = EGL_NO_SURFACE;
    GLuint fbo_ = 0, rb_ = 0;
    int w_ = 0, h_ = 0;
    const char* glsl_ = "#version 330";
    std::string how_;
    bool fb_failed_ = false;
    PFNGLBINDFRAMEBUFFERPROC bind_fb_ = nullptr;
    PFNGLDELETEFRAMEBUFFERSPROC del_fb_ = nullptr;
    PFNGLDELETERENDERBUFFERSPROC del_rb_ = nullptr;
};

// One view full-screen, with its title, as in the app: the same show function the window calls.
void draw_single(App& app, const ViewInfo& v, ImVec2 size) {
    ImGui::SetNextWindowPos(ImVec2(0, 0));
    ImGui::SetNextWindowSize(size);
    v.show(app.session(), app.view_state(), app.commands(), nullptr);
}

}  // namespace

const char* snapshot_view_names() {
    static const std::string names = [] {
        std::string n;
        for (const ViewInfo& v : view_registry())
            if (v.snapshot) n += std::string(v.key) + ", ";
        return n + "overview";
    }();
    return names.c_str();
}

int run_snapshot(const SnapshotOptions& o) {
    const ViewInfo* view = o.view == "overview" ? nullptr : find_view(o.view);
    if (view && !view->snapshot) view = nullptr;
    if (o.view != "overview" && !view) {
        std::fprintf(stderr, "moelab: --view %s: unknown view; allowed: %s\n", o.view.c_str(), snapshot_view_names());
        return 2;
    }
    if (o.out.empty()) {
        std::fprintf(stderr, "moelab: --out FILE.png is required\n");
        return 2;
    }
    if (o.width < 64 || o.height < 64 || o.width > 8192 || o.height > 8192) {
        std::fprintf(stderr, "moelab: --width/--height %d×%d: each must be between 64 and 8192 pixels\n", o.width,
                     o.height);
        return 2;
    }
    o.scenario.check();
    const bool roofline_view = view && view->id == ViewId::Roofline;
    if (!o.roofline.empty() && !roofline_view) {
        std::fprintf(stderr, "moelab: --roofline FILE is drawn by --view roofline only (not --view %s)\n",
                     o.view.c_str());
        return 2;
    }
    // A saved sweep, read (and a bad one refused) before anything is drawn.
    std::optional<std::vector<demos::ExpertRoofline>> saved;
    if (!o.roofline.empty()) saved = demos::load_rooflines_for(o.roofline, demos::roofline_shape(o.scenario));

    Offscreen gl;
    std::string err;
    if (!gl.create(o.width, o.height, &err)) {
        std::fprintf(stderr, "moelab: snapshot: %s\n", err.c_str());
        return 1;
    }
    // EGL works, but the functions ImGui draws with come from libGL.so.1 through its own loader.
    const std::string loader = gl_loader_problem();
    if (!loader.empty()) {
        std::fprintf(stderr, "moelab: snapshot: %s\n", gl_failure_message(GlStage::Loader, loader).c_str());
        return 1;
    }
    IMGUI_CHECKVERSION();
    ImGui::CreateContext();
    int code = 0;
    {
        AppOptions ao;
        ao.persist = false;
        ao.background_runs = false;
        ao.scenario = o.scenario;
        ao.saved_rooflines = saved;
        App app(ao);
        ViewState& vs = app.view_state();
        Session& ses = app.session();
        vs.presenter = o.presenter;
        vs.look.theme = o.light ? ThemeKind::Light : ThemeKind::Dark;
        vs.snapshot = true;
        vs.relayout = true;
        vs.show_help = false;
        vs.show_lesson = false;
        vs.run_full_layer = o.full_layer;
        vs.show_dispatch = !view || view->id == ViewId::Dispatch;
        vs.show_roofline = roofline_view;
        std::vector<std::string> gpus;
        for (const auto& d : moe::gpu::devices()) gpus.push_back(d.name);
        ses.set_gpus(gpus, gpus.empty() ? moe::gpu::unavailable_reason() : "");
        ses.set_plan(run_plan(vs));

        // Run everything the view draws, synchronously, with progress on stderr; or draw a saved Result (a run
        // measured on a GPU machine, shown here with its device and provenance).
        std::vector<Job> jobs = plan_jobs(o.scenario, run_plan(vs), false, o.full_layer);
        if (!o.result.empty()) {
            jobs.clear();
            demos::Result saved = demos::load_result(o.result);
            std::vector<JobResult> given;
            JobResult base;
            base.generation = 1;
            base.ok = true;
            base.job = {Slot::Routing, demos::Demo::Pipeline, saved.scenario};
            base.result = saved;
            given.push_back(base);
            if (saved.demo == demos::Demo::Pipeline && saved.measured_pipeline.present) {
                base.job.slot = Slot::Pipeline;
                given.push_back(base);
            } else if (saved.demo == demos::Demo::Layer) {
                base.job = {Slot::Layer, demos::Demo::Layer, saved.scenario};
                given.push_back(base);
            }
            for (auto& g : given) jobs.push_back(g.job);
            ses.begin_jobs(jobs);
            for (auto& g : given) ses.apply(std::move(g));
            jobs.clear();
        } else {
            // The roofline view on a GPU measures the shape here (a minute or so), unless a saved sweep was given.
            if (roofline_view && !gpus.empty() && !saved)
                jobs.push_back({Slot::Roofline, demos::Demo::Routing, o.scenario});
            ses.begin_jobs(jobs);
        }
        for (std::size_t i = 0; i < jobs.size(); ++i) {
            if (!o.quiet)
                std::fprintf(stderr, "moelab: snapshot: running %s (%zu/%zu)\n", slot_name(jobs[i].slot), i + 1,
                             jobs.size());
            JobResult r = run_job(jobs[i], 1, nullptr, {});
            if (!r.ok) {
                std::fprintf(stderr, "moelab: snapshot: %s run failed: %s\n", slot_name(jobs[i].slot), r.error.c_str());
                if (r.error_kind == moe::ErrorKind::BadInput)
                    code = 2;
                else
                    code = 1;
                break;
            }
            ses.apply(std::move(r));
        }
        if (code == 0 && !ImGui_ImplOpenGL3_Init(gl.glsl())) {
            std::fprintf(stderr, "moelab: snapshot: %s\n",
                         gl_failure_message(GlStage::Context, "the OpenGL 3 backend did not start").c_str());
            code = 1;
        }
        if (code == 0) {
            ImGuiIO& io = ImGui::GetIO();
            io.DisplaySize = ImVec2(static_cast<float>(o.width), static_cast<float>(o.height));
            io.DisplayFramebufferScale = ImVec2(1, 1);
            io.DeltaTime = 1.0f / 60.0f;
            io.MousePos = ImVec2(-1e30f, -1e30f);
            const int frames = 4;  // windows size themselves over the first frames
            for (int f = 0; f < frames; ++f) {
                if (app.prepare_look(o.scale) && f > 0) {
                    ImGui_ImplOpenGL3_DestroyFontsTexture();
                    ImGui_ImplOpenGL3_CreateFontsTexture();
                }
                ImGui_ImplOpenGL3_NewFrame();
                ImGui::NewFrame();
                if (view) {
                    testing::probe().clear();
                    draw_single(app, *view, io.DisplaySize);
                } else {
                    vs.relayout = f < 2;
                    app.frame();
                }
                ImGui::Render();
                gl.bind();
                const ImVec4 bg = ImGui::GetStyle().Colors[ImGuiCol_WindowBg];  // windows may leave it to the clear
                glClearColor(bg.x, bg.y, bg.z, 1.0f);
                glClear(GL_COLOR_BUFFER_BIT);
                ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
            }
            glFinish();
            std::vector<std::uint8_t> px = read_pixels(0, 0, o.width, o.height, o.height);
            if (!write_png(o.out, px, o.width, o.height, &err)) {
                std::fprintf(stderr, "moelab: snapshot: %s\n", err.c_str());
                code = 1;
            } else if (!o.quiet) {
                std::fprintf(stderr, "moelab: wrote %s (%d×%d, view %s, %s, %s)\n", o.out.c_str(), o.width, o.height,
                             o.view.c_str(), gl.how().c_str(), gl_renderer().c_str());
            }
            ImGui_ImplOpenGL3_Shutdown();
        }
    }
    ImGui::DestroyContext();
    return code;
}

}  // namespace moelab_gui
