// Issue 12, hostile input, the window's items (label gui): snapshot --scale nan, a script's resize -5 -5 and a
// prefs.toml nested 40,000 levels deep each crashed the app, as did a deep progress.toml or a deep lesson file in
// ./lessons once the Lessons view opened; now each is refused with a message.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "app/gui/prefs.hpp"
#include "tests/support/scratch.hpp"
#include "tests/support/test_support.hpp"

namespace {

const std::string kBin = MOELAB_BIN;
const char* kNoDisplay = "env -u DISPLAY -u WAYLAND_DISPLAY ";

std::string temp_dir() { return moelab_test::scratch_dir("moelab-hostile-gui"); }

std::string repeat(const std::string& s, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += s;
    return out;
}

}  // namespace

TEST(HostileGui, SnapshotScaleMustBeANumberInRange) {
    for (const char* bad : {"nan", "-nan", "inf", "0.1", "5"}) {
        auto p =
            moelab_test::shell(kNoDisplay + kBin + " snapshot -q --view loads --out /tmp/never.png --scale " + bad);
        EXPECT_EQ(p.rc, 2) << bad << "\n" << p.out;
        EXPECT_NE(p.out.find("--scale"), std::string::npos) << p.out;
    }
}

TEST(HostileGui, DeepPrefsFileFallsBackToDefaultsWithAWarning) {
    const std::string dir = temp_dir();
    for (const std::string& text : {"[" + repeat("a.", 39999) + "a]\n", repeat("a.", 39999) + "a = 1\n",
                                    "views = " + repeat("[", 5000) + repeat("]", 5000) + "\n"}) {
        std::ofstream(dir + "/prefs.toml") << text;
        std::string warning;
        moelab_gui::Prefs p = moelab_gui::load_prefs(dir + "/prefs.toml", &warning);
        EXPECT_NE(warning.find("prefs.toml:1: nested more than 32 levels"), std::string::npos) << warning;
        EXPECT_EQ(p.theme, moelab_gui::Prefs{}.theme);
    }
    // A folder or a FIFO where prefs.toml should be: defaults and a warning, never a hang.
    const std::string d2 = temp_dir();
    ASSERT_EQ(::mkfifo((d2 + "/prefs.toml").c_str(), 0644), 0);
    std::string warning;
    moelab_gui::load_prefs(d2 + "/prefs.toml", &warning);
    EXPECT_NE(warning.find("not a regular file (a FIFO)"), std::string::npos) << warning;
}

TEST(HostileGui, ScriptResizeOutOfRangeIsAScriptErrorNotAnAbort) {
    moelab_test::Xvfb x;
    if (!x.ok()) GTEST_SKIP() << x.why();
    const std::string dir = temp_dir();
    std::ofstream(dir + "/resize.txt") << "wait 2\nresize -5 -5\nwait 2\n";
    auto p = moelab_test::shell("env DISPLAY=" + x.display() + " LIBGL_ALWAYS_SOFTWARE=1 " + kBin +
                                " --frames 60 --script " + dir + "/resize.txt --config-dir " + dir +
                                " --tokens 1024 --hidden 256 --ffn 512");
    EXPECT_EQ(p.rc, 1) << p.out;  // a failed script command, not SIGABRT (rc -1 through the shell)
    EXPECT_NE(p.out.find("between 64 and 8192"), std::string::npos) << p.out;
}

TEST(HostileGui, WindowSizeOutOfRangeIsBadInput) {
    for (const char* a : {"--width 0", "--width 100000", "--height 10"}) {
        auto p = moelab_test::shell(kNoDisplay + kBin + " --frames 1 " + a);
        EXPECT_EQ(p.rc, 2) << a << "\n" << p.out;
    }
}

TEST(HostileGui, DeepConfigAndLessonFilesNeverCrashTheApp) {
    moelab_test::Xvfb x;
    if (!x.ok()) GTEST_SKIP() << x.why();
    // prefs.toml and progress.toml 40,000 levels deep, and an auto-found ./lessons holding a deep table, a
    // 100,001-character answer expression and a FIFO named like a lesson.
    const std::string dir = temp_dir();
    std::filesystem::create_directories(dir + "/cfg");
    std::filesystem::create_directories(dir + "/lessons");
    std::ofstream(dir + "/cfg/prefs.toml") << "[" + repeat("a.", 39999) + "a]\n";
    std::ofstream(dir + "/cfg/progress.toml") << repeat("a.", 39999) + "a = 1\n";
    std::ofstream(dir + "/lessons/nest.toml") << "[" + repeat("a.", 39999) + "a]\nx = 1\n";
    std::ofstream(dir + "/lessons/long.toml") << "id = \"x\"\n[question]\nanswer = \"" + repeat("-", 100000) + "1\"\n";
    ASSERT_EQ(::mkfifo((dir + "/lessons/fifo.toml").c_str(), 0644), 0);
    // The Lessons view opens with the built-in lessons listed.
    std::ofstream(dir + "/script.txt") << "wait_idle 3000\nkey F3\nwait 3\nwait_idle 3000\nwait 3\n"
                                          "expect_anchor lesson:item:dispatch-bytes\n";
    auto p = moelab_test::shell("cd " + dir + " && env -u MOELAB_LESSONS_DIR -u MOELAB_CONFIG_DIR DISPLAY=" +
                                x.display() + " LIBGL_ALWAYS_SOFTWARE=1 " + kBin +
                                " --script script.txt --frames 3000 --no-vsync --config-dir cfg"
                                " --tokens 1024 --hidden 256 --ffn 512");
    EXPECT_EQ(p.rc, 0) << p.out;
    EXPECT_NE(p.out.find("prefs.toml:1: nested more than 32 levels"), std::string::npos) << p.out;
}
