// Keyboard shortcuts: the table shown in Help, and the handler the app calls once per frame.
// Keys are the platform's codes (GLFW_KEY_*), which is what ImGui 1.86 indexes io.KeysDown by.
#pragma once
#include <string>
#include <vector>

#include "app/gui/app_state.hpp"

namespace moelab_gui {

struct Shortcut {
    const char* keys;
    const char* what;
};
const std::vector<Shortcut>& shortcut_table();

// Applies the shortcuts pressed this frame (none while a text field has focus): view toggles in `vs`, everything
// else as commands (a new scenario, re-run, save, …).
void handle_shortcuts(const Session& ses, ViewState& vs, Commands& cmd);

}  // namespace moelab_gui
