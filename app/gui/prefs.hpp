// Preferences of the desktop app (theme, palette, presenter mode, open views, export folder), kept in their own
// TOML file beside imgui.ini (which holds only the window layout). Files are written atomically.
#pragma once
#include <string>

#include "app/gui/app_state.hpp"
#include "demos/atomic_file.hpp"

namespace moelab_gui {

struct Prefs {
    bool presenter = false;
    std::string theme = "dark";         // dark | light | high-contrast
    std::string palette = "okabe-ito";  // okabe-ito | classic
    float ui_scale = 1.0f;              // the user's zoom on top of the screen's DPI
    bool run_full_layer = true;
    bool sweep_on = true;
    std::string sweep_axis = "skew";  // skew | tokens
    std::string export_dir;           // where Save PNG and Export write ("" = the working directory)
    bool views[static_cast<int>(ViewId::Count)] = {true, true, true, true, true, true, false, false};
};

// $MOELAB_CONFIG_DIR, else $XDG_CONFIG_HOME/moelab, else ~/.config/moelab.
std::string default_config_dir();
bool ensure_dir(const std::string& dir, std::string* err);
using demos::write_file_atomic;  // temp file + rename (demos/atomic_file.hpp)

std::string prefs_to_toml(const Prefs& p);
// Unknown keys are ignored and bad values keep their defaults; `warning` says what was skipped.
Prefs load_prefs(const std::string& path, std::string* warning);

void apply_prefs(const Prefs& p, ViewState& vs);
Prefs prefs_from(const ViewState& vs, const std::string& export_dir);

}  // namespace moelab_gui
