// Test hooks, outside the production structs: the probe records where named widgets were drawn in the last
// frame (scripts click on them; 1.86 has no test engine), the errors shown under controls, and each view's
// window rectangle. Views record through anchor() and error_under() in app_state.hpp.
#pragma once
#include <imgui.h>

#include <map>
#include <string>
#include <utility>

namespace moelab_gui::testing {

struct Probe {
    std::map<std::string, ImVec4> anchors;      // name → (x0, y0, x1, y1)
    std::map<std::string, std::string> errors;  // control → the error text drawn next to it this frame
    std::map<std::string, ImVec4> windows;      // view key → window rectangle
    // parameter name → the range its slider was drawn with this frame (tests compare it with validation)
    std::map<std::string, std::pair<double, double>> ranges;

    void clear() {
        anchors.clear();
        errors.clear();
        windows.clear();
        ranges.clear();
    }
};

// The one probe of this process (there is one ImGui context, one app).
Probe& probe();

}  // namespace moelab_gui::testing
