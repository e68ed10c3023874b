// Keyboard shortcuts for the main controls (presenter mode lives on them) and the table the Help view prints.
// Keys are GLFW key codes: ImGui 1.86 indexes io.KeysDown by the platform's codes.
#include "app/gui/shortcuts.hpp"

#include <GLFW/glfw3.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "app/gui/app_state.hpp"

namespace moelab_gui {
namespace {

bool pressed(int key) { return ImGui::IsKeyPressed(key, true); }

std::string step_skew(const std::string& skew, bool up) {
    auto colon = skew.find(':');
    std::string fam = skew.substr(0, colon);
    double v = colon == std::string::npos ? 0.0 : std::atof(skew.c_str() + colon + 1);
    char buf[64];
    if (fam == "hot") {
        v = up ? std::min(32.0, v * 1.5) : v / 1.5;
        if (v <= 1.0001) return "uniform";
        std::snprintf(buf, sizeof buf, "hot:%.3g", v);
        return buf;
    }
    if (fam == "uniform") v = 0;
    v = up ? std::min(3.0, v + 0.25) : v - 0.25;
    if (v <= 1e-9) return "uniform";
    std::snprintf(buf, sizeof buf, "zipf:%.3g", v);
    return buf;
}

}  // namespace

const std::vector<Shortcut>& shortcut_table() {
    static const std::vector<Shortcut> kTable = {
        {"K / Shift+K", "top-k + 1 / − 1"},
        {"E / Shift+E", "experts × 2 / ÷ 2"},
        {"T / Shift+T", "tokens × 2 / ÷ 2"},
        {"S / Shift+S", "skew stronger / weaker (uniform ↔ zipf, or the hot ratio)"},
        {"M / Shift+M", "micro-batches + 1 / − 1"},
        {"G / Shift+G", "ranks: next / previous count that divides the experts"},
        {"C / Shift+C", "capacity factor + 0.25 / − 0.25 (0 = dropless)"},
        {"1 … 5", "model presets (classroom, Mixtral, DBRX, DeepSeek-V3, Qwen3)"},
        {"Space", "re-run now"},
        {"Esc", "cancel the run"},
        {"F5", "presenter mode: large sharp fonts, high contrast, colour-blind-safe palette"},
        {"Ctrl + / Ctrl −", "zoom the interface"},
        {"Alt+1 … Alt+4", "show or hide loads, communication, dispatch, timeline"},
        {"F1 / F2 / F3", "help / controls / lessons"},
        {"Page Down / Page Up", "presenter mode: the next / previous page of views"},
        {"F12", "save the focused view as PNG"},
        {"Ctrl+E", "export the current result as JSON and CSV"},
        {"Ctrl+S / Ctrl+O", "save / open a scenario (TOML)"},
        {"Ctrl+Q", "quit"},
    };
    return kTable;
}

void handle_shortcuts(const Session& ses, ViewState& vs, Commands& cmd) {
    ImGuiIO& io = ImGui::GetIO();
    if (io.WantTextInput || ImGui::IsAnyItemActive()) return;
    demos::Scenario edit = ses.scenario();
    demos::Scenario* s = &edit;
    std::string preset;
    const bool shift = io.KeyShift, ctrl = io.KeyCtrl, alt = io.KeyAlt;
    bool changed = false;
    auto bump = [&](bool cond, auto&& f) {
        if (cond) {
            f();
            changed = true;
        }
    };
    if (ctrl) {
        if (pressed(GLFW_KEY_S)) cmd.simple(CommandKind::AskSave);
        if (pressed(GLFW_KEY_O)) cmd.simple(CommandKind::AskOpen);
        if (pressed(GLFW_KEY_E)) cmd.simple(CommandKind::Export);
        if (pressed(GLFW_KEY_Q)) cmd.simple(CommandKind::Quit);
        if (pressed(GLFW_KEY_EQUAL) || pressed(GLFW_KEY_KP_ADD)) vs.user_scale = std::min(3.0f, vs.user_scale * 1.125f);
        if (pressed(GLFW_KEY_MINUS) || pressed(GLFW_KEY_KP_SUBTRACT))
            vs.user_scale = std::max(0.6f, vs.user_scale / 1.125f);
        return;
    }
    if (alt) {
        const ViewId ids[] = {ViewId::Loads, ViewId::Comm, ViewId::Dispatch, ViewId::Timeline};
        for (int i = 0; i < 4; ++i)
            if (pressed(GLFW_KEY_1 + i)) {
                bool* f = vs.open_flag(ids[i]);
                *f = !*f;
            }
        return;
    }
    bump(pressed(GLFW_KEY_K), [&] { s->top_k = std::max(1, s->top_k + (shift ? -1 : 1)); });
    bump(pressed(GLFW_KEY_E), [&] { s->experts = std::clamp(shift ? s->experts / 2 : s->experts * 2, 1, 1024); });
    bump(pressed(GLFW_KEY_T), [&] {
        s->tokens = std::clamp<std::int64_t>(shift ? s->tokens / 2 : s->tokens * 2, 1, std::int64_t{1} << 20);
    });
    bump(pressed(GLFW_KEY_S), [&] { s->skew = step_skew(s->skew, !shift); });
    bump(pressed(GLFW_KEY_M), [&] { s->micro_batches = std::clamp(s->micro_batches + (shift ? -1 : 1), 1, 64); });
    bump(pressed(GLFW_KEY_G), [&] {
        // The next (or previous) rank count that divides the experts evenly.
        int g = s->ranks;
        do {
            g += shift ? -1 : 1;
        } while (g > 1 && g < 64 && s->experts % g != 0);
        if (g >= 1 && g <= 64 && s->experts % g == 0) s->ranks = g;
    });
    bump(pressed(GLFW_KEY_C), [&] { s->capacity_factor = std::max(0.0, s->capacity_factor + (shift ? -0.25 : 0.25)); });
    const auto& presets = demos::presets();
    for (int i = 0; i < 5 && i < static_cast<int>(presets.size()); ++i)
        bump(pressed(GLFW_KEY_1 + i), [&] {
            std::string backend = s->backend;
            *s = presets[i].scenario;
            s->backend = backend;
            preset = presets[i].name;
        });
    if (pressed(GLFW_KEY_SPACE)) cmd.rerun();
    if (pressed(GLFW_KEY_ESCAPE)) cmd.simple(CommandKind::Cancel);
    if (pressed(GLFW_KEY_F5)) vs.presenter = !vs.presenter;
    if (pressed(GLFW_KEY_F1)) vs.show_help = !vs.show_help;
    if (pressed(GLFW_KEY_F2)) vs.show_controls = !vs.show_controls;
    if (pressed(GLFW_KEY_F3)) vs.show_lesson = !vs.show_lesson;
    if (pressed(GLFW_KEY_F12)) cmd.simple(CommandKind::SavePng);
    // Presenter mode shows a page of one or two views; Page Up / Page Down turn the pages.
    if (vs.presenter && pressed(GLFW_KEY_PAGE_DOWN)) ++vs.presenter_page;
    if (vs.presenter && pressed(GLFW_KEY_PAGE_UP)) --vs.presenter_page;
    if (changed) cmd.set_scenario(edit, preset);
}

}  // namespace moelab_gui
