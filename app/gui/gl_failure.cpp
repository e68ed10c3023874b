// The GL failure messages. Dear ImGui 1.86's OpenGL 3 backend loads its functions from libGL.so.1 through its own
// loader (imgui_impl_opengl3_loader.h); when that fails, ImGui_ImplOpenGL3_Init returns false and drawing would
// call null functions, so the callers stop there and say this instead.
#include "app/gui/gl_failure.hpp"

#include <dlfcn.h>

namespace moelab_gui {

std::string gl_loader_problem() {
    void* h = dlopen("libGL.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (h) {
        dlclose(h);
        return "";
    }
    const char* e = dlerror();
    return e ? e : "libGL.so.1: cannot open it";
}

std::string gl_failure_message(GlStage stage, const std::string& detail) {
    std::string what;
    switch (stage) {
        case GlStage::Loader:
            what = "the OpenGL loader could not open libGL.so.1 (" + detail +
                   "). Install the OpenGL library: on Debian or Ubuntu `sudo apt install libgl1 libgl1-mesa-dri` "
                   "(Mesa), or on a GPU machine the driver's OpenGL libraries (NVIDIA: libnvidia-gl-VERSION)";
            break;
        case GlStage::Context:
            what = "no OpenGL 3 context could be created (" + detail +
                   "). Install an OpenGL 3 driver: on Debian or Ubuntu `sudo apt install libgl1-mesa-dri "
                   "libglx-mesa0 libegl-mesa0` (Mesa), or the GPU driver's OpenGL and EGL libraries";
            break;
        case GlStage::Framebuffer:
            what = "the OpenGL framebuffer could not be made (" + detail +
                   "). The driver lacks OpenGL 3 framebuffer objects: install Mesa's (`sudo apt install "
                   "libgl1-mesa-dri`) or the GPU driver's OpenGL libraries, or try LIBGL_ALWAYS_SOFTWARE=1";
            break;
    }
    return what +
           ". See \"The app\" in README.md. Without OpenGL the lab still works in the terminal: moelab run layer, "
           "moelab lesson ID.";
}

}  // namespace moelab_gui
