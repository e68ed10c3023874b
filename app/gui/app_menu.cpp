// The app's commands: the main menu, scenario open/save (TOML), Save PNG, export of the Result as JSON and CSV,
// and the requests views and shortcuts raise during a frame, carried out after it.
#include <cstdio>

#include "app/gui/app.hpp"
#include "demos/result_io.hpp"

namespace moelab_gui {

void App::menu_bar() {
    if (!ImGui::BeginMainMenuBar()) return;
    const bool menu_file = ImGui::BeginMenu("File");
    anchor(vs, "menu:File");
    if (menu_file) {
        if (ImGui::MenuItem("Open scenario…", "Ctrl+O")) vs.request_open_scenario = true;
        if (ImGui::MenuItem("Save scenario…", "Ctrl+S")) vs.request_save_scenario = true;
        ImGui::Separator();
        const ViewInfo* fv = find_view(vs.focused);
        std::string png = std::string("Save PNG of ") + (fv ? fv->title : "the window");
        if (ImGui::MenuItem(png.c_str(), "F12")) vs.request_save_png = true;
        anchor(vs, "menu:File/save-png");
        if (ImGui::MenuItem("Export result (JSON + CSV)", "Ctrl+E")) vs.request_export = true;
        anchor(vs, "menu:File/export");
        ImGui::Separator();
        if (ImGui::MenuItem("Quit", "Ctrl+Q")) vs.request_quit = true;
        ImGui::EndMenu();
    }
    const bool menu_view = ImGui::BeginMenu("View");
    anchor(vs, "menu:View");
    if (menu_view) {
        for (const ViewInfo& v : view_registry()) {
            ImGui::MenuItem(v.title, v.shortcut, vs.open_flag(v.id));
            anchor(vs, std::string("menu:View/") + v.key);
        }
        ImGui::Separator();
        if (ImGui::MenuItem("Reset layout")) vs.relayout = true;
        anchor(vs, "menu:View/reset");
        ImGui::EndMenu();
    }
    if (ImGui::BeginMenu("Presets")) {
        for (const demos::Preset& p : demos::presets()) {
            if (ImGui::MenuItem(p.name.c_str(), nullptr, p.name == st.preset)) {
                std::string backend = st.scenario.backend;
                st.scenario = p.scenario;
                st.scenario.backend = backend;
                st.preset = p.name;
                st.invalid = st.scenario.validate();
                rerun(0);
            }
            if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", p.description.c_str());
        }
        ImGui::EndMenu();
    }
    const bool menu_options = ImGui::BeginMenu("Options");
    anchor(vs, "menu:Options");
    if (menu_options) {
        if (ImGui::MenuItem("Presenter mode", "F5", vs.presenter)) {
            vs.presenter = !vs.presenter;
            vs.fonts_dirty = true;
        }
        anchor(vs, "menu:Options/presenter");
        ImGui::Separator();
        auto theme_item = [&](const char* name, const char* key, ThemeKind k) {
            if (ImGui::MenuItem(name, nullptr, vs.look.theme == k, !vs.presenter)) {
                vs.look.theme = k;
                vs.fonts_dirty = true;
            }
            anchor(vs, std::string("menu:Options/") + key);
        };
        theme_item("Dark theme", "dark", ThemeKind::Dark);
        theme_item("Light theme", "light", ThemeKind::Light);
        theme_item("High contrast", "high-contrast", ThemeKind::HighContrast);
        ImGui::Separator();
        if (ImGui::MenuItem("Okabe–Ito palette (colour-blind safe)", nullptr, vs.look.palette == PaletteKind::OkabeIto,
                            !vs.presenter)) {
            vs.look.palette = PaletteKind::OkabeIto;
            vs.fonts_dirty = true;
        }
        if (ImGui::MenuItem("Classic palette", nullptr, vs.look.palette == PaletteKind::Classic, !vs.presenter)) {
            vs.look.palette = PaletteKind::Classic;
            vs.fonts_dirty = true;
        }
        ImGui::Separator();
        if (ImGui::MenuItem("Larger text", "Ctrl +")) {
            vs.user_scale = std::min(3.0f, vs.user_scale * 1.125f);
            vs.fonts_dirty = true;
        }
        if (ImGui::MenuItem("Smaller text", "Ctrl −")) {
            vs.user_scale = std::max(0.6f, vs.user_scale / 1.125f);
            vs.fonts_dirty = true;
        }
        ImGui::Separator();
        ImGui::MenuItem("Re-run the full layer on every edit", nullptr, &vs.run_full_layer);
        ImGui::EndMenu();
    }
    if (ImGui::BeginMenu("Help")) {
        ImGui::MenuItem("Shortcuts and provenance", "F1", &vs.show_help);
        ImGui::EndMenu();
    }
    // Right end: backend at a glance.
    const std::string b = st.backend_resolved.empty() ? std::string("…") : st.backend_resolved;
    std::string tag = b == "cuda" ? "backend: cuda" : "backend: CPU reference";
    float w = ImGui::CalcTextSize(tag.c_str()).x;
    ImGui::SameLine(ImGui::GetWindowWidth() - w - ImGui::GetStyle().ItemSpacing.x * 2);
    ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(b == "cuda" ? vs.pal.prov_gpu : vs.pal.warn), "%s", tag.c_str());
    ImGui::EndMainMenuBar();
}

bool App::load_scenario(const std::string& path) {
    try {
        demos::Scenario s = demos::Scenario::load(path);
        st.scenario = s;
        st.preset.clear();
        st.invalid = s.validate();
        st.scenario_path = path;
        rerun(0);
        toast("Loaded " + path);
        return true;
    } catch (const std::exception& e) {
        st.error = RunError{true, moe::ErrorKind::BadInput, e.what(), "load", ""};
        toast(std::string("Could not load: ") + e.what(), 8);
        return false;
    }
}

bool App::save_scenario(const std::string& path) {
    try {
        st.scenario.save(path);
        st.scenario_path = path;
        toast("Saved " + path);
        return true;
    } catch (const std::exception& e) {
        toast(std::string("Could not save: ") + e.what(), 8);
        return false;
    }
}

bool App::export_result(const std::string& json_path, const std::string& csv_path) {
    const demos::Result* r = st.results.loads();
    if (!r) {
        toast("Nothing to export yet");
        return false;
    }
    std::string err;
    nlohmann::json j = demos::to_json(*r);
    if (st.results.dispatch) j["strategies"] = demos::to_json(*st.results.dispatch)["strategies"];
    std::string csv = demos::to_csv(*r);
    if (st.results.dispatch) {
        // The strategy rows of the dispatch run ("dispatch,STRATEGY,…"), without repeating its header.
        std::string d = demos::to_csv(*st.results.dispatch);
        std::size_t pos = 0;
        bool first = true;
        while (pos < d.size()) {
            std::size_t nl = d.find('\n', pos);
            std::string line = d.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos + 1);
            if (!first && line.rfind("dispatch,", 0) == 0) csv += line;
            first = false;
            if (nl == std::string::npos) break;
            pos = nl + 1;
        }
    }
    if (!write_file_atomic(json_path, j.dump(2) + "\n", &err) || !write_file_atomic(csv_path, csv, &err)) {
        toast("Export failed: " + err, 8);
        return false;
    }
    toast("Exported " + json_path + " and .csv");
    return true;
}

void App::file_popups() {
    if (vs.request_save_scenario) {
        std::string p = st.scenario_path.empty() ? export_dir + "/scenario.toml" : st.scenario_path;
        std::snprintf(path_buf_, sizeof path_buf_, "%s", p.c_str());
        popup_ = 1;
        ImGui::OpenPopup("Save scenario");
        vs.request_save_scenario = false;
    }
    if (vs.request_open_scenario) {
        std::snprintf(path_buf_, sizeof path_buf_, "%s/", export_dir.c_str());
        popup_ = 2;
        ImGui::OpenPopup("Open scenario");
        vs.request_open_scenario = false;
    }
    for (int which : {1, 2}) {
        const char* title = which == 1 ? "Save scenario" : "Open scenario";
        ImGui::SetNextWindowSize(ImVec2(vs.fonts.body_px * 36, 0), ImGuiCond_Appearing);
        if (!ImGui::BeginPopupModal(title, nullptr)) continue;
        ImGui::TextUnformatted(which == 1 ? "Save every parameter and the seed as TOML:"
                                          : "A scenario TOML file (or drop one on the window):");
        ImGui::SetNextItemWidth(-1);
        if (ImGui::IsWindowAppearing()) ImGui::SetKeyboardFocusHere();
        bool enter = ImGui::InputText("##path", path_buf_, sizeof path_buf_, ImGuiInputTextFlags_EnterReturnsTrue);
        anchor(vs, "popup:path");
        bool ok = ImGui::Button(which == 1 ? "Save" : "Open") || enter;
        anchor(vs, "popup:ok");
        ImGui::SameLine();
        if (ImGui::Button("Cancel")) ImGui::CloseCurrentPopup();
        if (ok) {
            bool done = which == 1 ? save_scenario(path_buf_) : load_scenario(path_buf_);
            if (done) ImGui::CloseCurrentPopup();
        }
        ImGui::EndPopup();
    }
}

void App::carry_out_requests() {
    if (vs.request_rerun || vs.request_full_layer) rerun(0, vs.request_full_layer);
    vs.request_full_layer = false;
    if (vs.request_cancel && runner_) runner_->cancel();
    if (vs.request_save_png) {
        const std::string key = vs.focused.empty() ? "window" : vs.focused;
        auto it = vs.probe.windows.find(key);
        Capture c;
        c.path = file_name("moelab-" + key, "png");
        c.rect = it == vs.probe.windows.end() ? ImVec4(0, 0, 0, 0) : it->second;
        captures.push_back(c);
    }
    if (vs.request_export) export_result(file_name("moelab-result", "json"), file_name("moelab-result", "csv"));
    if (vs.request_quit) quit = true;
    vs.request_rerun = vs.request_cancel = vs.request_save_png = vs.request_export = vs.request_quit = false;
}

}  // namespace moelab_gui
