// What every view shares: the view registry, anchors and error notes for scripts and tests, the result header
// (what it was computed for, with provenance), and the note shown when a view has nothing to draw yet.
#include <algorithm>
#include <cstdio>

#include "app/gui/app_state.hpp"

namespace moelab_gui {

const demos::Result* ResultSet::loads() const {
    if (layer && routing) return layer_current ? &*layer : &*routing;
    if (routing) return &*routing;
    if (layer) return &*layer;
    if (pipeline) return &*pipeline;
    return nullptr;
}

bool* ViewState::open_flag(ViewId id) {
    switch (id) {
        case ViewId::Controls:
            return &show_controls;
        case ViewId::Device:
            return &show_device;
        case ViewId::Loads:
            return &show_loads;
        case ViewId::Comm:
            return &show_comm;
        case ViewId::Dispatch:
            return &show_dispatch;
        case ViewId::Timeline:
            return &show_timeline;
        case ViewId::Help:
            return &show_help;
        case ViewId::Lesson:
            return &show_lesson;
        case ViewId::Count:
            break;
    }
    return nullptr;
}

const std::vector<ViewInfo>& view_registry() {
    static const std::vector<ViewInfo> kViews = {
        {ViewId::Controls, "controls", "Controls", "F2"},
        {ViewId::Device, "device", "Device", ""},
        {ViewId::Loads, "loads", "Expert loads", "Alt+1"},
        {ViewId::Comm, "comm", "Communication", "Alt+2"},
        {ViewId::Dispatch, "dispatch", "Dispatch strategies", "Alt+3"},
        {ViewId::Timeline, "timeline", "Pipeline timeline", "Alt+4"},
        {ViewId::Help, "help", "Help", "F1"},
        {ViewId::Lesson, "lesson", "Lessons", "F3"},  // view_lesson.cpp
    };
    return kViews;
}

const ViewInfo* find_view(const std::string& key) {
    for (const ViewInfo& v : view_registry())
        if (key == v.key) return &v;
    return nullptr;
}

void view_begun(ViewState& vs, const char* key) {
    if (ImGui::IsWindowFocused(ImGuiFocusedFlags_RootAndChildWindows)) vs.focused = key;
    ImVec2 p = ImGui::GetWindowPos(), sz = ImGui::GetWindowSize();
    vs.probe.windows[key] = ImVec4(p.x, p.y, p.x + sz.x, p.y + sz.y);
    vs.probe.anchors[std::string("win:") + key] = vs.probe.windows[key];
}

void anchor(const ViewState& vs, const std::string& name) {
    ImVec2 a = ImGui::GetItemRectMin(), b = ImGui::GetItemRectMax();
    vs.probe.anchors[name] = ImVec4(a.x, a.y, b.x, b.y);
}

void error_under(ViewState& vs, const std::string& param, const std::vector<std::string>& msgs) {
    std::string text;
    for (const std::string& m : msgs) {
        if (m.compare(0, param.size(), param) == 0 && m.size() > param.size() &&
            (m[param.size()] == ':' || m[param.size()] == ' ')) {
            if (!text.empty()) text += "\n";
            text += m;
        }
    }
    if (text.empty()) return;
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(vs.pal.bad));
    ImGui::PushTextWrapPos(0.0f);
    ImGui::TextUnformatted(text.c_str());
    ImGui::PopTextWrapPos();
    ImGui::PopStyleColor();
    std::string& shown = vs.probe.errors[param];
    shown += (shown.empty() ? "" : "\n") + text;
    anchor(vs, "error:" + param);
}

void no_result_note(const AppState& app, const ViewState& vs, const char* what) {
    ImGui::Spacing();
    if (app.error.present) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(vs.pal.bad));
        ImGui::TextWrapped("No %s: the last run failed. %s", what, app.error.message.c_str());
        ImGui::PopStyleColor();
    } else if (!app.invalid.empty()) {
        ImGui::TextWrapped("No %s yet: fix the parameters marked in Controls.", what);
    } else if (app.status.busy || app.status.pending) {
        ImGui::TextWrapped("Computing %s…", what);
    } else {
        ImGui::TextWrapped("No %s for this scenario.", what);
    }
}

void result_header(const demos::Result& r, const ViewState& vs) {
    const demos::Scenario& s = r.scenario;
    ImGui::PushFont(vs.fonts.small);
    ImGui::TextDisabled("T=%lld  E=%d  k=%d  d=%d  %s  skew %s  ranks %d  · %s backend",
                        static_cast<long long>(s.tokens), s.experts, s.top_k, s.hidden, s.dtype.c_str(), s.skew.c_str(),
                        s.ranks, r.backend.c_str());
    ImGui::PopFont();
}

}  // namespace moelab_gui
