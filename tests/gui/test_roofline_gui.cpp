// The expert FFN's roofline in the desktop app, under its own Xvfb: the panel opens from the dispatch view and
// shows the chart with its provenance (measured on a GPU, modeled without one, and the CPU backend named); the
// decode-vs-prefill lesson's reveal draws its expert-ffn sweep with the same chart.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "kernels/api.hpp"
#include "tests/gui/script_gui.hpp"
#include "tests/support/test_support.hpp"

namespace {

using moelab_test::shell;
using moelab_test::Shell;
using moelab_test::Xvfb;

// Opened from the dispatch view's button; without a GPU the chart is modeled and the panel says the CPU backend is
// in use; on a GPU the job measures it (progress while it runs), then the measured chart shows.
const char* kPanel = R"(# dispatch view: the expert FFN roofline panel
full_layer off
wait_idle 3000
solo dispatch
wait 3
wait_anchor dispatch:roofline 600
expect_no_anchor roofline:chart
click dispatch:roofline
wait 3
wait_idle 6000
wait 3
expect_anchor win:roofline
expect_anchor roofline:chart
expect_anchor roofline:caption
expect_any_anchor roofline:measured-gpu roofline:modeled
expect_any_anchor roofline:cpu_note roofline:measured roofline:measuring roofline:measure roofline:error
move roofline:chart@0.5,0.5
wait 3
screenshot ${out}/roofline.png
)";

// Lesson 10 names the expert-ffn experiment: its reveal draws one expert's sweep on the roofline chart.
const char* kLesson = R"(# lesson: decode vs prefill reveal with the roofline chart
full_layer off
wait_idle 3000
set_view dispatch off
key F3
wait 3
wait_anchor lesson:item:decode-prefill 600
click lesson:item:decode-prefill
wait 3
click lesson:choice:c
wait 2
click lesson:confidence:3
wait 2
click lesson:commit
wait 3
wait_idle 6000
wait 3
wait_anchor lesson:explanation 600
expect_anchor lesson:roofline
expect_any_anchor lesson:roofline:measured-gpu lesson:roofline:modeled
expect_no_anchor lesson:error
screenshot ${out}/lesson-roofline.png
)";

class RooflineGui : public moelab_test::ScriptGui {
  protected:
    RooflineGui() : ScriptGui("moelab_roofline_gui", 8000) {}
};

}  // namespace

TEST_F(RooflineGui, PanelOpensFromTheDispatchViewWithItsProvenance) {
    Shell r = play(kPanel);
    ASSERT_TRUE(played_cleanly(r));
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/cfg/roofline.png"));
    if (moe::gpu::devices().empty()) {
        // No GPU here: the modeled chart, labelled, and the panel names the CPU backend.
        EXPECT_NE(r.out.find("drawn: roofline:modeled"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("drawn: roofline:cpu_note"), std::string::npos) << r.out;
        EXPECT_EQ(r.out.find("drawn: roofline:measured-gpu"), std::string::npos) << r.out;
    }
}

TEST_F(RooflineGui, TheDecodePrefillRevealDrawsTheSweepOnTheRoofline) {
    Shell r = play(kLesson);
    ASSERT_TRUE(played_cleanly(r));
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/cfg/lesson-roofline.png"));
    if (moe::gpu::devices().empty()) {
        EXPECT_NE(r.out.find("drawn: lesson:roofline:modeled"), std::string::npos) << r.out;
    }
}
