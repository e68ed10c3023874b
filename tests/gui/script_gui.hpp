// The fixture of the GUI tests that play a script in the real app under Xvfb: a fresh folder per test (named after
// the suite and the test), the app run there with Mesa's software GL, no lesson or config folder inherited from
// the environment, and a small starting scenario so that the app's own background runs stay short.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/scratch.hpp"
#include "tests/support/test_support.hpp"

namespace moelab_test {

class ScriptGui : public ::testing::Test {
  protected:
    // prefix: the folder's name before the pid and the test's name; frames: the app's frame budget.
    ScriptGui(std::string prefix, int frames) : prefix_(std::move(prefix)), frames_(frames) {}

    void SetUp() override {
        if (!x_.ok()) GTEST_SKIP() << x_.why();
        dir_ = scratch(
            (std::filesystem::temp_directory_path() / (prefix_ + "_" + std::to_string(::getpid()) + "_" +
                                                       ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_ + "/cfg");
    }
    // Runs the app with `script` (and `extra` flags) in the test's folder; the config lives in cfg/.
    Shell play(const char* script, const std::string& extra = "") {
        std::ofstream(dir_ + "/script.txt") << script;
        return shell("cd " + dir_ + " && env -u MOELAB_LESSONS_DIR -u MOELAB_CONFIG_DIR DISPLAY=" + x_.display() +
                     " LIBGL_ALWAYS_SOFTWARE=1 " + std::string(MOELAB_BIN) + " --script script.txt --frames " +
                     std::to_string(frames_) + " --no-vsync --config-dir " + dir_ +
                     "/cfg --tokens 1024 --hidden 256 --ffn 512 " + extra);
    }
    // Whether a played script ended well: the app exited 0 and no script check failed (else the output says why).
    static ::testing::AssertionResult played_cleanly(const Shell& r) {
        if (r.rc == 0 && r.out.find("failed") == std::string::npos) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "exit status " << r.rc << "\n" << r.out;
    }
    // A file of the test's folder, whole ("" when missing).
    std::string read(const std::string& name) const {
        std::ifstream f(dir_ + "/" + name);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }

    Xvfb x_;
    std::string dir_;

  private:
    std::string prefix_;
    int frames_;
};

}  // namespace moelab_test
