// The app's commands: the main menu, the scenario open/save dialogs, and carrying out the commands that views,
// shortcuts, menus and scripts queued during a frame (through the Session, the one writer of the state).
#include <cstdio>

#include "app/gui/app.hpp"
#include "demos/result_io.hpp"
#include "demos/trace.hpp"

namespace moelab_gui {

void App::menu_bar() {
    if (!ImGui::BeginMainMenuBar()) return;
    const bool menu_file = ImGui::BeginMenu("File");
    anchor("menu:File");
    if (menu_file) {
        if (ImGui::MenuItem("Open scenario…", "Ctrl+O")) cmds_.simple(CommandKind::AskOpen);
        if (ImGui::MenuItem("Save scenario…", "Ctrl+S")) cmds_.simple(CommandKind::AskSave);
        ImGui::Separator();
        const ViewInfo* fv = find_view(vs_.focused);
        std::string png = std::string("Save PNG of ") + (fv ? fv->title : "the window");
        if (ImGui::MenuItem(png.c_str(), "F12")) cmds_.simple(CommandKind::SavePng);
        anchor("menu:File/save-png");
        if (ImGui::MenuItem("Export result (JSON + CSV)", "Ctrl+E")) cmds_.simple(CommandKind::Export);
        anchor("menu:File/export");
        if (ImGui::MenuItem("Export trace (Chrome JSON)…")) cmds_.simple(CommandKind::ExportTrace);
        anchor("menu:File/export-trace");
        ImGui::Separator();
        if (ImGui::MenuItem("Quit", "Ctrl+Q")) cmds_.simple(CommandKind::Quit);
        ImGui::EndMenu();
    }
    const bool menu_view = ImGui::BeginMenu("View");
    anchor("menu:View");
    if (menu_view) {
        for (const ViewInfo& v : view_registry()) {
            ImGui::MenuItem(v.title, v.shortcut, vs_.open_flag(v.id));
            anchor(std::string("menu:View/") + v.key);
        }
        ImGui::Separator();
        if (ImGui::MenuItem("Reset layout")) vs_.relayout = true;
        anchor("menu:View/reset");
        ImGui::EndMenu();
    }
    if (ImGui::BeginMenu("Presets")) {
        for (const demos::Preset& p : demos::presets()) {
            if (ImGui::MenuItem(p.name.c_str(), nullptr, p.name == session_->preset()))
                cmds_.set_scenario(p.scenario, p.name, true);
            if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", p.description.c_str());
        }
        ImGui::EndMenu();
    }
    const bool menu_options = ImGui::BeginMenu("Options");
    anchor("menu:Options");
    if (menu_options) {
        if (ImGui::MenuItem("Presenter mode", "F5", vs_.presenter)) vs_.presenter = !vs_.presenter;
        anchor("menu:Options/presenter");
        ImGui::Separator();
        auto theme_item = [&](const char* name, const char* key, ThemeKind k) {
            if (ImGui::MenuItem(name, nullptr, vs_.look.theme == k, !vs_.presenter)) vs_.look.theme = k;
            anchor(std::string("menu:Options/") + key);
        };
        theme_item("Dark theme", "dark", ThemeKind::Dark);
        theme_item("Light theme", "light", ThemeKind::Light);
        theme_item("High contrast", "high-contrast", ThemeKind::HighContrast);
        ImGui::Separator();
        if (ImGui::MenuItem("Okabe–Ito palette (colour-blind safe)", nullptr, vs_.look.palette == PaletteKind::OkabeIto,
                            !vs_.presenter))
            vs_.look.palette = PaletteKind::OkabeIto;
        if (ImGui::MenuItem("Classic palette", nullptr, vs_.look.palette == PaletteKind::Classic, !vs_.presenter))
            vs_.look.palette = PaletteKind::Classic;
        ImGui::Separator();
        if (ImGui::MenuItem("Larger text", "Ctrl +")) vs_.user_scale = std::min(3.0f, vs_.user_scale * 1.125f);
        if (ImGui::MenuItem("Smaller text", "Ctrl −")) vs_.user_scale = std::max(0.6f, vs_.user_scale / 1.125f);
        ImGui::Separator();
        ImGui::MenuItem("Re-run the full layer on every edit", nullptr, &vs_.run_full_layer);
        ImGui::EndMenu();
    }
    if (ImGui::BeginMenu("Help")) {
        ImGui::MenuItem("Shortcuts and provenance", "F1", &vs_.show_help);
        ImGui::EndMenu();
    }
    // Presenter mode: which page of views, and how to turn it.
    if (vs_.presenter) {
        const int n = 5;
        ImGui::TextDisabled("  page %d of %d · Page Down / Page Up", ((vs_.presenter_page % n) + n) % n + 1, n);
    }
    // Right end: backend at a glance.
    const std::string b = session_->backend_resolved().empty() ? std::string("…") : session_->backend_resolved();
    std::string tag = b == "cuda" ? "backend: cuda" : "backend: CPU reference";
    float w = ImGui::CalcTextSize(tag.c_str()).x;
    ImGui::SameLine(ImGui::GetWindowWidth() - w - ImGui::GetStyle().ItemSpacing.x * 2);
    ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(b == "cuda" ? skin().pal.prov_gpu : skin().pal.warn), "%s",
                       tag.c_str());
    ImGui::EndMainMenuBar();
}

void App::file_popups() {
    for (int which : {1, 2}) {
        const char* title = which == 1 ? "Save scenario" : "Open scenario";
        if (popup_ == which) {
            ImGui::OpenPopup(title);
            popup_ = -which;  // open; remember which
        }
        ImGui::SetNextWindowSize(ImVec2(skin().fonts.body_px * 36, 0), ImGuiCond_Appearing);
        if (!ImGui::BeginPopupModal(title, nullptr)) continue;
        ImGui::TextUnformatted(which == 1 ? "Save every parameter and the seed as TOML:"
                                          : "A scenario TOML file (or drop one on the window):");
        ImGui::SetNextItemWidth(-1);
        if (ImGui::IsWindowAppearing()) ImGui::SetKeyboardFocusHere();
        bool enter = ImGui::InputText("##path", path_buf_, sizeof path_buf_, ImGuiInputTextFlags_EnterReturnsTrue);
        anchor("popup:path");
        bool ok = ImGui::Button(which == 1 ? "Save" : "Open") || enter;
        anchor("popup:ok");
        ImGui::SameLine();
        if (ImGui::Button("Cancel")) ImGui::CloseCurrentPopup();
        if (ok) {
            std::string msg;
            bool done =
                which == 1 ? session_->save_scenario(path_buf_, &msg) : session_->load_scenario(path_buf_, &msg);
            toast(msg, done ? 4 : 8);
            if (done) ImGui::CloseCurrentPopup();
        }
        ImGui::EndPopup();
    }
}

void App::carry_out() {
    for (const Command& c : cmds_.take()) carry_out(c);
}

void App::carry_out(const Command& c) {
    Session& ses = *session_;
    Outcome out{c.kind, true, ""};
    switch (c.kind) {
        case CommandKind::SetScenario:
            ses.set_scenario(c.scenario, c.preset, c.keep_backend);
            break;
        case CommandKind::Rerun:
            ses.rerun(0, c.force_layer);
            break;
        case CommandKind::Cancel:
            ses.cancel();
            break;
        case CommandKind::SavePng: {
            Capture cap;
            if (c.path.empty()) {
                // The focused view (F12, the File menu).
                const std::string key = vs_.focused.empty() ? "window" : vs_.focused;
                const auto& windows = testing::probe().windows;
                auto it = windows.find(key);
                cap.path = file_name("moelab-" + key, "png");
                cap.rect = it == windows.end() ? ImVec4(0, 0, 0, 0) : it->second;
            } else {
                cap.path = c.path;
                cap.rect = c.rect;
            }
            captures_.push_back(cap);
            break;
        }
        case CommandKind::Export: {
            const std::string json = c.path.empty() ? file_name("moelab-result", "json") : c.path + ".json";
            const std::string csv = c.path.empty() ? file_name("moelab-result", "csv") : c.path + ".csv";
            out.ok = ses.export_result(json, csv, &out.message);
            toast(out.message, out.ok ? 4 : 8);
            break;
        }
        case CommandKind::ExportTrace: {
            // The measured pipeline when it is current (its trace holds the measured spans and the model).
            const ResultSet& rs = ses.results();
            const demos::Result* r = rs.pipeline && rs.pipeline_current ? &*rs.pipeline
                                     : rs.routing                       ? &*rs.routing
                                                                        : rs.loads();
            const std::string path = c.path.empty() ? file_name("moelab-trace", "json") : c.path;
            if (!r) {
                out = {c.kind, false, "Nothing to export yet"};
            } else {
                try {
                    demos::write_chrome_trace(*r, path);
                    out.message = "Exported " + path + " (open it in ui.perfetto.dev)";
                } catch (const std::exception& e) {
                    out = {c.kind, false, std::string("Trace export failed: ") + e.what()};
                }
            }
            toast(out.message, out.ok ? 4 : 8);
            break;
        }
        case CommandKind::OpenScenario:
            out.ok = ses.load_scenario(c.path, &out.message);
            toast(out.message, out.ok ? 4 : 8);
            break;
        case CommandKind::SaveScenario:
            out.ok = ses.save_scenario(c.path, &out.message);
            toast(out.message, out.ok ? 4 : 8);
            break;
        case CommandKind::AskSave: {
            std::string p = ses.scenario_path().empty() ? export_dir_ + "/scenario.toml" : ses.scenario_path();
            std::snprintf(path_buf_, sizeof path_buf_, "%s", p.c_str());
            popup_ = 1;
            break;
        }
        case CommandKind::AskOpen:
            std::snprintf(path_buf_, sizeof path_buf_, "%s/", export_dir_.c_str());
            popup_ = 2;
            break;
        case CommandKind::StartLesson:
            ses.start_lesson(c.index, c.variation);
            break;
        case CommandKind::CommitLesson:
            ses.commit_lesson(c.answer, c.presenter, c.votes, c.text, c.confidence);
            break;
        case CommandKind::RetryLesson:
            ses.retry_lesson();
            break;
        case CommandKind::RevealLesson:
            ses.reveal_lesson();
            break;
        case CommandKind::SecondVote:
            ses.second_vote(c.votes, c.text);
            break;
        case CommandKind::MeasureRoofline:
            ses.measure_roofline();
            break;
        case CommandKind::OpenRoofline:
            out.ok = ses.load_rooflines(c.path, &out.message);
            if (out.ok) vs_.show_roofline = true;  // where it shows
            toast(out.message, out.ok ? 6 : 10);
            break;
        case CommandKind::Quit:
            quit_ = true;
            break;
    }
    cmds_.record(std::move(out));
}

const char* command_name(CommandKind k) {
    switch (k) {
        case CommandKind::SetScenario:
            return "set-scenario";
        case CommandKind::Rerun:
            return "rerun";
        case CommandKind::Cancel:
            return "cancel";
        case CommandKind::SavePng:
            return "save-png";
        case CommandKind::Export:
            return "export";
        case CommandKind::ExportTrace:
            return "export-trace";
        case CommandKind::OpenScenario:
            return "open-scenario";
        case CommandKind::SaveScenario:
            return "save-scenario";
        case CommandKind::AskOpen:
            return "ask-open";
        case CommandKind::AskSave:
            return "ask-save";
        case CommandKind::StartLesson:
            return "start-lesson";
        case CommandKind::CommitLesson:
            return "commit-lesson";
        case CommandKind::RetryLesson:
            return "retry-lesson";
        case CommandKind::RevealLesson:
            return "reveal-lesson";
        case CommandKind::SecondVote:
            return "second-vote";
        case CommandKind::MeasureRoofline:
            return "measure-roofline";
        case CommandKind::OpenRoofline:
            return "open-roofline";
        case CommandKind::Quit:
            return "quit";
    }
    return "?";
}

}  // namespace moelab_gui
