// A measured lesson in the desktop app, under its own Xvfb: the packing lesson is graded on the packing times
// the reveal measures (CPU reference here, the GPU's kernels where one is present). The script predicts, commits,
// waits for the timed runs and plays the lesson to its explanation; progress records the attempt.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/scratch.hpp"
#include "tests/support/test_support.hpp"

namespace {

using moelab_test::shell;
using moelab_test::Shell;
using moelab_test::Xvfb;

const char* kMeasured = R"(# lesson player: a measured lesson to the end
full_layer off
wait_idle 3000
set_view dispatch off
key F3
wait 3
# The lessons load in the background: wait for the list.
wait_anchor lesson:item:packing 600
click lesson:item:packing
wait 3
expect_no_anchor lesson:score
click lesson:choice:c
wait 2
click lesson:confidence:4
wait 2
click lesson:commit
wait 3
wait_idle 6000
wait 3
expect_anchor lesson:score
expect_anchor lesson:result:right
expect_anchor lesson:explanation
expect_scenario experts 16
screenshot ${out}/lesson-measured.png
)";

}  // namespace

TEST(LessonGuiMeasured, PackingIsGradedOnMeasuredTimes) {
    Xvfb x;
    if (!x.ok()) GTEST_SKIP() << x.why();
    const std::string dir = moelab_test::scratch(
        (std::filesystem::temp_directory_path() / ("moelab_lesson_measured_" + std::to_string(::getpid()))).string());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir + "/cfg");
    std::ofstream(dir + "/script.txt") << kMeasured;
    Shell r = shell("cd " + dir + " && env -u MOELAB_LESSONS_DIR -u MOELAB_CONFIG_DIR DISPLAY=" + x.display() +
                    " LIBGL_ALWAYS_SOFTWARE=1 " + std::string(MOELAB_BIN) +
                    " --script script.txt --frames 8000 --no-vsync --config-dir " + dir +
                    "/cfg --tokens 1024 --hidden 256 --ffn 512");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(r.out.find("failed"), std::string::npos) << r.out;
    EXPECT_TRUE(std::filesystem::exists(dir + "/cfg/lesson-measured.png"));
    std::ifstream f(dir + "/cfg/progress.toml");
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string progress = ss.str();
    EXPECT_NE(progress.find("[lessons.packing]"), std::string::npos) << progress;
    EXPECT_NE(progress.find("last_confidence = 4"), std::string::npos) << progress;
    EXPECT_NE(progress.find("last_correct = true"), std::string::npos) << progress;
}
