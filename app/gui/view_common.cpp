// What every view shares: the table of views, anchors and error notes for scripts and tests, the result header
// (what it was computed for), and the note shown when a view has nothing to draw yet.
#include <algorithm>
#include <cstdio>

#include "app/gui/app_state.hpp"

namespace moelab_gui {

RunPlan run_plan(const ViewState& vs) {
    RunPlan p;
    p.dispatch = vs.show_dispatch;
    p.sweep = vs.sweep_on;
    p.sweep_axis = vs.sweep_axis;
    p.full_layer = vs.run_full_layer;
    p.pipeline = vs.show_timeline;
    p.expert_times = vs.loads_expert_times && vs.show_loads;
    p.roofline = vs.show_roofline;
    return p;
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
        case ViewId::Roofline:
            return &show_roofline;
        case ViewId::Count:
            break;
    }
    return nullptr;
}

const std::vector<ViewInfo>& view_registry() {
    static const std::vector<ViewInfo> kViews = {
        {ViewId::Device, "device", "Device", "", show_device, Placement::Tiled, true},
        {ViewId::Controls, "controls", "Controls", "F2", show_controls, Placement::Tiled, true},
        {ViewId::Loads, "loads", "Expert loads", "Alt+1", show_loads, Placement::Tiled, true},
        {ViewId::Comm, "comm", "Communication", "Alt+2", show_comm, Placement::Tiled, true},
        {ViewId::Timeline, "timeline", "Pipeline timeline", "Alt+4", show_timeline, Placement::Tiled, true},
        {ViewId::Dispatch, "dispatch", "Dispatch strategies", "Alt+3", show_dispatch, Placement::Tiled, true},
        {ViewId::Roofline, "roofline", "Expert FFN roofline", "", show_roofline, Placement::Centered, true},
        {ViewId::Help, "help", "Help", "F1", show_help, Placement::Centered, true},
        {ViewId::Lesson, "lesson", "Lessons", "F3", show_lesson, Placement::Own, false},
    };
    return kViews;
}

const ViewInfo* find_view(const std::string& key) {
    for (const ViewInfo& v : view_registry())
        if (key == v.key) return &v;
    return nullptr;
}

const ViewInfo& view_info(ViewId id) {
    for (const ViewInfo& v : view_registry())
        if (v.id == id) return v;
    return view_registry().front();
}

bool begin_view(ViewState& vs, ViewId id, bool* p_open, ImGuiWindowFlags flags) {
    const ViewInfo& v = view_info(id);
    if (!ImGui::Begin(v.title, p_open, flags)) return false;
    if (ImGui::IsWindowFocused(ImGuiFocusedFlags_RootAndChildWindows)) vs.focused = v.key;
    ImVec2 p = ImGui::GetWindowPos(), sz = ImGui::GetWindowSize();
    testing::Probe& pr = testing::probe();
    pr.windows[v.key] = ImVec4(p.x, p.y, p.x + sz.x, p.y + sz.y);
    pr.anchors[std::string("win:") + v.key] = pr.windows[v.key];
    return true;
}

void anchor(const std::string& name) {
    ImVec2 a = ImGui::GetItemRectMin(), b = ImGui::GetItemRectMax();
    testing::probe().anchors[name] = ImVec4(a.x, a.y, b.x, b.y);
}

void error_under(const std::string& param, const std::vector<std::string>& msgs) {
    std::string text;
    for (const std::string& m : msgs) {
        if (m.compare(0, param.size(), param) == 0 && m.size() > param.size() &&
            (m[param.size()] == ':' || m[param.size()] == ' ')) {
            if (!text.empty()) text += "\n";
            text += m;
        }
    }
    if (text.empty()) return;
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(skin().pal.bad));
    ImGui::PushTextWrapPos(0.0f);
    ImGui::TextUnformatted(text.c_str());
    ImGui::PopTextWrapPos();
    ImGui::PopStyleColor();
    std::string& shown = testing::probe().errors[param];
    shown += (shown.empty() ? "" : "\n") + text;
    anchor("error:" + param);
}

void no_result_note(const Session& s, const char* what) {
    ImGui::Spacing();
    if (s.error().present) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(skin().pal.bad));
        ImGui::TextWrapped("No %s: the last run failed. %s", what, s.error().message.c_str());
        ImGui::PopStyleColor();
    } else if (!s.invalid().empty()) {
        ImGui::TextWrapped("No %s yet: fix the parameters marked in Controls.", what);
    } else if (s.busy()) {
        ImGui::TextWrapped("Computing %s…", what);
    } else {
        ImGui::TextWrapped("No %s for this scenario.", what);
    }
}

void result_header(const demos::Result& r) {
    const demos::Scenario& s = r.scenario;
    ImGui::PushFont(skin().fonts.small);
    ImGui::TextDisabled("T=%lld  E=%d  k=%d  d=%d  %s  skew %s  ranks %d  · %s backend",
                        static_cast<long long>(s.tokens), s.experts, s.top_k, s.hidden, s.dtype.c_str(), s.skew.c_str(),
                        s.ranks, r.backend.c_str());
    ImGui::PopFont();
}

}  // namespace moelab_gui
