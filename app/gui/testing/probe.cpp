// The process's probe: filled by the views each frame, read by the script driver and the window tiling.
#include "app/gui/testing/probe.hpp"

namespace moelab_gui::testing {

Probe& probe() {
    static Probe p;
    return p;
}

}  // namespace moelab_gui::testing
