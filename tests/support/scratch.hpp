// The folders and files the tests make under the system's temporary directory: each one is registered here and removed
// when the test program ends with every test passed. After a failure they are kept, for a look at what the app wrote.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

namespace moelab_test {

class ScratchPaths : public ::testing::Environment {
  public:
    void add(const std::string& path) {
        std::lock_guard<std::mutex> lock(m_);
        paths_.push_back(path);
    }
    void TearDown() override {
        if (!::testing::UnitTest::GetInstance()->Passed()) return;
        std::lock_guard<std::mutex> lock(m_);
        std::error_code ec;  // best effort: a path already gone is fine
        for (const std::string& p : paths_) std::filesystem::remove_all(p, ec);
        paths_.clear();
    }

  private:
    std::mutex m_;
    std::vector<std::string> paths_;
};

// Registered before main, so that gtest runs its TearDown after the last test (gtest owns it).
inline ScratchPaths* const kScratchPaths =
    static_cast<ScratchPaths*>(::testing::AddGlobalTestEnvironment(new ScratchPaths));

// `path`, to be removed when the program's tests have all passed.
inline std::string scratch(const std::string& path) {
    kScratchPaths->add(path);
    return path;
}

// A new, empty folder /tmp/<prefix>-XXXXXX (mkdtemp), registered like scratch(); "/tmp" when it cannot be made.
inline std::string scratch_dir(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    const char* d = mkdtemp(tmpl.data());
    return d ? scratch(d) : "/tmp";
}

}  // namespace moelab_test
