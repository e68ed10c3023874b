// Helpers the lesson test files share (tests/cpu/test_lessons*.cpp): the built-in lesson set, a fresh folder per
// test, the terminal player with answers piped in, and a file's text.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "demos/lesson.hpp"
#include "tests/support/scratch.hpp"
#include "tests/support/test_support.hpp"

namespace moelab_test {

// A fresh folder per test, so progress files and lesson folders never leak between tests.
inline std::string fresh_dir(const std::string& name) {
    auto d = std::filesystem::temp_directory_path() / ("moelab_lessons_" + std::to_string(::getpid()) + "_" + name);
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return scratch(d.string());
}

// The player with answers piped in; progress goes to a private file, the lessons folder is only the built-ins.
inline Shell play(const std::string& id, const std::string& answers, const std::string& extra = "") {
    std::string dir = fresh_dir("play");
    return shell("cd " + dir + " && printf '" + answers + "' | " + MOELAB_BIN + " lesson " + id + " --progress " + dir +
                 "/progress.toml " + extra);
}

inline const demos::LessonSet& builtins() {
    static const demos::LessonSet set = demos::load_lessons("");
    return set;
}

inline std::string read_text(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace moelab_test
