// Background jobs in the desktop app, under its own Xvfb: the loads view's per-expert FFN times arrive from the
// runner and show with their provenance on screen; a lesson's reveal measures its experiment on the runner while the
// window keeps drawing ("Measuring …"), and the reveal arrives.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "kernels/api.hpp"
#include "tests/gui/script_gui.hpp"
#include "tests/support/test_support.hpp"

namespace {

using moelab_test::shell;
using moelab_test::Shell;
using moelab_test::Xvfb;

// The overlay: off until asked, then timed in the background, labelled with where its numbers came from.
const char* kExpertTimes = R"(# loads view: expert times overlay
full_layer off
wait_idle 3000
set_view dispatch off
solo loads
wait 3
expect_no_anchor loads:expert_times
click loads_expert_times
wait 3
wait_idle 3000
wait 3
expect_any_anchor loads:expert_times:measured-gpu loads:expert_times:measured-cpu loads:expert_times:modeled
expect_anchor loads:expert_times
expect_anchor loads:expert_times_chart
move loads:expert_times_chart@0.3,0.6
wait 3
screenshot ${out}/expert-times.png
key G
wait 3
wait_idle 3000
wait 3
expect_anchor loads:expert_times
click loads_expert_times
wait 3
expect_no_anchor loads:expert_times_chart
)";

// Lesson 1 names the expert-ffn experiment: after the runs the reveal measures it as a job of its own. Frames that
// drew the "Measuring" state and the frames that drew the running state are counted.
const char* kReveal = R"(# lesson: a reveal measured on the runner
full_layer off
wait_idle 3000
set_view dispatch off
key F3
wait 3
wait_anchor lesson:item:straggler 600
click lesson:item:straggler
wait 3
click lesson:answer
type 6,1*15
wait 2
click lesson:confidence:3
wait 2
count_frames lesson:running
count_frames lesson:measuring
mark reveal
click lesson:commit
wait 3
wait_idle 6000
wait 3
mark done
expect_frames lesson:measuring 1
expect_anchor lesson:score
expect_anchor lesson:explanation
expect_anchor lesson:noise:hot_expert_ms
expect_no_anchor lesson:error
screenshot ${out}/lesson-reveal-measured.png
)";

class BackgroundGui : public moelab_test::ScriptGui {
  protected:
    BackgroundGui() : ScriptGui("moelab_background_gui", 8000) {}
};

}  // namespace

TEST_F(BackgroundGui, ExpertTimesOverlayArrivesWithItsProvenance) {
    Shell r = play(kExpertTimes);
    ASSERT_TRUE(played_cleanly(r));
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/cfg/expert-times.png"));
    // Which label showed depends on the machine: on the GPU the times are measured there, else modelled.
    EXPECT_NE(r.out.find("drawn: loads:expert_times:"), std::string::npos) << r.out;
    if (moe::gpu::devices().empty()) {
        EXPECT_NE(r.out.find("drawn: loads:expert_times:modeled"), std::string::npos) << r.out;
    }
}

TEST_F(BackgroundGui, TheRevealMeasuresWhileTheWindowKeepsDrawing) {
    Shell r = play(kReveal, "--report-frame-times");
    ASSERT_TRUE(played_cleanly(r));
    EXPECT_NE(r.out.find("frame(s) drew lesson:measuring"), std::string::npos) << r.out;
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/cfg/lesson-reveal-measured.png"));
    std::ifstream f(dir_ + "/cfg/progress.toml");
    std::stringstream ss;
    ss << f.rdbuf();
    EXPECT_NE(ss.str().find("[lessons.straggler]"), std::string::npos) << ss.str();
}
