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
#include "tests/support/scratch.hpp"
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
expect_any_anchor lesson:roofline:recorded lesson:roofline:measured-gpu
expect_no_anchor lesson:error
screenshot ${out}/lesson-roofline.png
)";

// A saved sweep of the tests' small shape (d 256, F 512, E 16, top-2), as `moelab bench experts --sweep --save`
// writes it on a GPU machine: auto at two sizes, one with its probe and the PyTorch peer.
const char* kSweep = R"({"ceilings": {"read_gbps": 4000, "gemm_tflops": 800}, "device": "NVIDIA H200",
 "date": "2026-12-01 04:29 UTC", "rows": [
 {"stage": "experts", "skew": "uniform", "shape": "tiny", "hidden": 256, "ffn": 512, "experts": 16, "top_k": 2,
  "tokens_per_expert": 8, "variant": "auto:mid", "median_ms": 0.05, "p95_ms": 0.06, "floor_ms": 0.04, "wrong": 0,
  "torch_ms": 0.1, "torch_variant": "_grouped_mm"},
 {"stage": "experts", "skew": "uniform", "shape": "tiny", "hidden": 256, "ffn": 512, "experts": 16, "top_k": 2,
  "tokens_per_expert": 8, "variant": "probe-stream", "median_ms": 0.045, "floor_ms": 0.04},
 {"stage": "experts", "skew": "uniform", "shape": "tiny", "hidden": 256, "ffn": 512, "experts": 16, "top_k": 2,
  "tokens_per_expert": 512, "variant": "auto:wgmma", "median_ms": 0.3, "p95_ms": 0.31, "floor_ms": 0.25, "wrong": 0}
]})";

// The panel with a saved sweep (--roofline FILE): its measured points, labelled, wherever the app runs.
const char* kSavedPanel = R"(# the roofline panel showing a saved sweep
full_layer off
wait_idle 3000
solo dispatch
wait 3
wait_anchor dispatch:roofline 600
click dispatch:roofline
wait 3
wait_idle 6000
wait 3
expect_anchor roofline:chart
expect_anchor roofline:measured-gpu
expect_no_anchor roofline:modeled
expect_any_anchor roofline:cpu_note roofline:measured roofline:measuring roofline:measure roofline:error
expect_any_anchor roofline:recorded roofline:measured roofline:measuring roofline:measure roofline:error
screenshot ${out}/roofline-saved.png
)";

// A sweep dropped on the window (the script's open_roofline is the same command): the panel opens and shows it.
const char* kDropped = R"(# a saved sweep opened while the app runs
full_layer off
wait_idle 3000
expect_no_anchor roofline:chart
open_roofline sweep.json
wait 3
wait_idle 6000
wait 3
expect_anchor roofline:chart
expect_anchor roofline:measured-gpu
expect_any_anchor roofline:recorded roofline:measured roofline:measuring roofline:measure roofline:error
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
        // and, beside the modelled expert, the engine's FFN on the lesson's shape as the H200 run of record has it
        EXPECT_NE(r.out.find("drawn: lesson:roofline:recorded"), std::string::npos) << r.out;
    }
}

TEST_F(RooflineGui, ASavedSweepShowsItsMeasuredPointsAnywhere) {
    std::ofstream(dir_ + "/sweep.json") << kSweep;
    Shell r = play(kSavedPanel, "--roofline sweep.json");
    ASSERT_TRUE(played_cleanly(r));
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/cfg/roofline-saved.png"));
    if (moe::gpu::devices().empty()) {
        // No GPU: the saved points, and the panel says where they were measured and that nothing is timed here.
        EXPECT_NE(r.out.find("drawn: roofline:recorded"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("drawn: roofline:cpu_note"), std::string::npos) << r.out;
    }
}

TEST_F(RooflineGui, ASweepDroppedOnTheWindowOpensThePanel) {
    std::ofstream(dir_ + "/sweep.json") << kSweep;
    Shell r = play(kDropped);
    ASSERT_TRUE(played_cleanly(r));
    if (moe::gpu::devices().empty()) {
        EXPECT_NE(r.out.find("drawn: roofline:recorded"), std::string::npos) << r.out;
    }
}

// `moelab snapshot --view roofline`: the run of record carried in the binary, or a saved sweep; bad files and a
// --roofline beside another view exit 2 with what is wrong, before anything is drawn.
TEST(RooflineSnapshot, DrawsTheRunOfRecordOrASavedSweepAndRefusesBadFiles) {
    const std::string dir = moelab_test::scratch(
        (std::filesystem::temp_directory_path() / ("moelab_roofline_snap_" + std::to_string(::getpid()))).string());
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/sweep.json") << kSweep;
    std::ofstream(dir + "/bad.json") << "{ not json";
    const std::string bin = std::string("env -u DISPLAY -u WAYLAND_DISPLAY ") + MOELAB_BIN + " snapshot -q ";
    const std::string small = " --tokens 1024 --hidden 256 --ffn 512";
    Shell r = shell(bin + "--view roofline --out " + dir + "/saved.png --width 900 --height 600 --roofline " + dir +
                    "/sweep.json" + small);
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_GT(std::filesystem::file_size(dir + "/saved.png"), 20000u);
    if (moe::gpu::devices().empty()) {  // on a GPU, with no file, the view measures the shape (a minute)
        r = shell(bin + "--view roofline --out " + dir + "/record.png --preset classroom --tokens 512");
        ASSERT_EQ(r.rc, 0) << r.out;
        EXPECT_GT(std::filesystem::file_size(dir + "/record.png"), 20000u);
    }
    r = shell(bin + "--view roofline --out " + dir + "/never.png --roofline " + dir + "/sweep.json --preset classroom");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("no sweep of this scenario's shape (--hidden 1024 --ffn 2816 --experts 16 --top-k 2)"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("it has tiny (--hidden 256 --ffn 512 --experts 16 --top-k 2)"), std::string::npos) << r.out;
    r = shell(bin + "--view roofline --out " + dir + "/never.png --roofline " + dir + "/bad.json" + small);
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("not JSON"), std::string::npos) << r.out;
    r = shell(bin + "--view loads --out " + dir + "/never.png --roofline " + dir + "/sweep.json" + small);
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("--view roofline only"), std::string::npos) << r.out;
    EXPECT_FALSE(std::filesystem::exists(dir + "/never.png"));
    std::filesystem::remove_all(dir);
}
