// Help: the keyboard shortcuts, what each provenance tag means, and where the terminal and snapshot modes are.
// Its table comes from shortcuts.cpp, so the help and the handler cannot drift apart.
#include "app/gui/app_state.hpp"
#include "app/gui/shortcuts.hpp"

namespace moelab_gui {

static void draw_help(const Session& ses, ViewState& vs, Commands& cmd) {
    ImGui::PushFont(skin().fonts.bold);
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
    ImGui::PushFont(skin().fonts.bold);
    ImGui::TextUnformatted("Where the numbers come from");
    ImGui::PopFont();
    for (demos::Provenance p : {demos::Provenance::MeasuredGpu, demos::Provenance::MeasuredCpu,
                                demos::Provenance::Emulated, demos::Provenance::Modeled}) {
        provenance_badge(skin().pal, p);
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
                        skin().fonts.dejavu ? "DejaVu Sans" : "ImGui default (DejaVu Sans not found)");
    (void)ses;
    (void)cmd;
}

void show_help(const Session& ses, ViewState& vs, Commands& cmd, bool* p_open) {
    if (begin_view(vs, ViewId::Help, p_open)) draw_help(ses, vs, cmd);
    ImGui::End();
}

}  // namespace moelab_gui
