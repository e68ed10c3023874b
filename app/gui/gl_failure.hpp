// What to say when OpenGL fails: the loader (libGL.so.1, which Dear ImGui's OpenGL backend opens itself), the
// context or the framebuffer. Every message names what failed, what to install, and the README section; the app
// and `moelab snapshot` print it and exit 1 instead of drawing with missing functions.
#pragma once
#include <string>

namespace moelab_gui {

enum class GlStage { Loader, Context, Framebuffer };

// Why the OpenGL loader cannot open libGL.so.1 here ("" when it can): the dynamic loader's own words.
std::string gl_loader_problem();
// The whole message for a failure at `stage`; `detail` says what exactly went wrong.
std::string gl_failure_message(GlStage stage, const std::string& detail);

}  // namespace moelab_gui
