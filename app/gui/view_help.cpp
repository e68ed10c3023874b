// Help: the keyboard shortcuts, what each provenance tag means, and where the terminal and snapshot modes are.
// Its table comes from shortcuts.cpp, so the help and the handler cannot drift apart.
#include "app/gui/app_state.hpp"
#include "app/gui/shortcuts.hpp"

namespace moelab_gui {

void draw_help(const AppState& app, ViewState& vs) {
    ImGui::PushFont(vs.fonts.bold);
    ImGui::TextUnformatted("Keyboard shortcuts");
    ImGui::PopFont();
    if (ImGui::BeginTable("keys", 2, ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit)) {
        for (const Shortcut& k : shortcut_table()) {
            ImGui::TableNextRow();
            ImGui::TableNextColumn();
            ImGui::TextUnformatted(k.keys);
            ImGui::TableNextColumn();
            ImGui::TextUnformatted(k.what);
        }
        ImGui::EndTable();
    }
    ImGui::Spacing();
    ImGui::PushFont(vs.fonts.bold);
    ImGui::TextUnformatted("Where the numbers come from");
    ImGui::PopFont();
    for (demos::Provenance p : {demos::Provenance::MeasuredGpu, demos::Provenance::MeasuredCpu,
                                demos::Provenance::Emulated, demos::Provenance::Modeled}) {
        provenance_badge(vs.pal, p);
        ImGui::SameLine();
        ImGui::PushTextWrapPos(0);
        ImGui::TextUnformatted(provenance_help(p));
        ImGui::PopTextWrapPos();
    }
    ImGui::Spacing();
    ImGui::TextWrapped(
        "Terminal modes: `moelab run layer|routing|dispatch|pipeline [flags]` prints the same numbers; "
        "`moelab snapshot --view overview --out FILE.png` renders any view without a window.");
    ImGui::TextDisabled("moelab %s · Dear ImGui %s · font: %s", MOELAB_VERSION, ImGui::GetVersion(),
                        vs.fonts.dejavu ? "DejaVu Sans" : "ImGui default (DejaVu Sans not found)");
    (void)app;
}

void show_help(const AppState& app, ViewState& vs, bool* p_open) {
    if (ImGui::Begin("Help", p_open)) {
        view_begun(vs, "help");
        draw_help(app, vs);
    }
    ImGui::End();
}

}  // namespace moelab_gui
