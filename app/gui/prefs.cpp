// Reads and writes prefs.toml with toml++; saving goes through write_file_atomic (temp file + rename).
// imgui.ini stays ImGui's own: window positions and sizes only.
#include "app/gui/prefs.hpp"

#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "demos/atomic_file.hpp"

namespace moelab_gui {
namespace {

const char* view_key(int i) {
    for (const ViewInfo& v : view_registry())
        if (static_cast<int>(v.id) == i) return v.key;
    return i == static_cast<int>(ViewId::Lesson) ? "lesson" : nullptr;
}

}  // namespace

std::string default_config_dir() {
    if (const char* d = std::getenv("MOELAB_CONFIG_DIR"); d && *d) return d;
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/moelab";
    if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.config/moelab";
    return ".moelab";
}

bool ensure_dir(const std::string& dir, std::string* err) {
    if (dir.empty()) return true;
    std::string cur;
    std::stringstream ss(dir);
    std::string part;
    if (dir[0] == '/') cur = "/";
    while (std::getline(ss, part, '/')) {
        if (part.empty()) continue;
        cur += part + "/";
        if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
            if (err) *err = "cannot create " + cur + ": " + std::strerror(errno);
            return false;
        }
    }
    return true;
}

std::string prefs_to_toml(const Prefs& p) {
    toml::table views;
    for (int i = 0; i < static_cast<int>(ViewId::Count); ++i)
        if (const char* k = view_key(i)) views.insert(k, p.views[i]);
    toml::table t{{"presenter", p.presenter},
                  {"theme", p.theme},
                  {"palette", p.palette},
                  {"ui_scale", static_cast<double>(p.ui_scale)},
                  {"run_full_layer", p.run_full_layer},
                  {"sweep_on", p.sweep_on},
                  {"sweep_axis", p.sweep_axis},
                  {"export_dir", p.export_dir},
                  {"views", views}};
    std::ostringstream os;
    os << "# moelab preferences (the window layout is in imgui.ini beside this file)\n" << t << "\n";
    return os.str();
}

Prefs load_prefs(const std::string& path, std::string* warning) {
    Prefs p;
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return p;  // first run
    // Only a regular file of bounded size and nesting reaches the parser (it recurses once per level).
    std::string text, err;
    if (!demos::read_regular_file(path, demos::kMaxTomlBytes, &text, &err)) {
        if (warning) *warning = path + ": " + err + "; using defaults";
        return p;
    }
    if (std::string lim = demos::toml_limits_problem(text); !lim.empty()) {
        if (warning) *warning = path + ":" + lim.substr(5) + "; using defaults";
        return p;
    }
    toml::table t;
    try {
        t = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        if (warning) *warning = path + ": " + std::string(e.description()) + "; using defaults";
        return p;
    }
    p.presenter = t["presenter"].value_or(p.presenter);
    std::string theme = t["theme"].value_or(p.theme);
    if (theme == "dark" || theme == "light" || theme == "high-contrast") p.theme = theme;
    std::string pal = t["palette"].value_or(p.palette);
    if (pal == "okabe-ito" || pal == "classic") p.palette = pal;
    double sc = t["ui_scale"].value_or(static_cast<double>(p.ui_scale));
    if (sc >= 0.5 && sc <= 4) p.ui_scale = static_cast<float>(sc);
    p.run_full_layer = t["run_full_layer"].value_or(p.run_full_layer);
    p.sweep_on = t["sweep_on"].value_or(p.sweep_on);
    std::string ax = t["sweep_axis"].value_or(p.sweep_axis);
    if (ax == "skew" || ax == "tokens") p.sweep_axis = ax;
    p.export_dir = t["export_dir"].value_or(p.export_dir);
    if (const toml::table* v = t["views"].as_table()) {
        for (int i = 0; i < static_cast<int>(ViewId::Count); ++i)
            if (const char* k = view_key(i)) p.views[i] = (*v)[k].value_or(p.views[i]);
    }
    return p;
}

void apply_prefs(const Prefs& p, ViewState& vs) {
    vs.presenter = p.presenter;
    vs.look.theme = p.theme == "light" ? ThemeKind::Light
                                       : (p.theme == "high-contrast" ? ThemeKind::HighContrast : ThemeKind::Dark);
    vs.look.palette = p.palette == "classic" ? PaletteKind::Classic : PaletteKind::OkabeIto;
    vs.user_scale = p.ui_scale;
    vs.run_full_layer = p.run_full_layer;
    vs.sweep_on = p.sweep_on;
    vs.sweep_axis = p.sweep_axis == "tokens" ? 1 : 0;
    for (int i = 0; i < static_cast<int>(ViewId::Count); ++i)
        if (bool* f = vs.open_flag(static_cast<ViewId>(i))) *f = p.views[i];
}

Prefs prefs_from(const ViewState& vs, const std::string& export_dir) {
    Prefs p;
    p.presenter = vs.presenter;
    p.theme = vs.look.theme == ThemeKind::Light ? "light"
                                                : (vs.look.theme == ThemeKind::HighContrast ? "high-contrast" : "dark");
    p.palette = vs.look.palette == PaletteKind::Classic ? "classic" : "okabe-ito";
    p.ui_scale = vs.user_scale;
    p.run_full_layer = vs.run_full_layer;
    p.sweep_on = vs.sweep_on;
    p.sweep_axis = vs.sweep_axis == 1 ? "tokens" : "skew";
    p.export_dir = export_dir;
    for (int i = 0; i < static_cast<int>(ViewId::Count); ++i) p.views[i] = vs.is_open(static_cast<ViewId>(i));
    return p;
}

}  // namespace moelab_gui
