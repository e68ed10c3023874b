// progress.toml as a student's machine may hold it: any bytes load as progress or fail with BadInput naming
// the file; what loads takes one more play of each lesson, saves and loads back.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "demos/lesson_progress.hpp"
#include "tests/fuzz/fuzz_common.hpp"

namespace {
const std::string* harness_dir = nullptr;  // never destroyed: the atexit handler that removes it runs after destructors
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    if (!harness_dir) {
        char tmpl[] = "/tmp/moelab-fuzz-progress-XXXXXX";
        harness_dir = new std::string(mkdtemp(tmpl));
        std::atexit([] { std::filesystem::remove_all(*harness_dir); });  // at a normal exit
    }
    const std::string path = *harness_dir + "/progress.toml";
    {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    try {
        demos::Progress p = demos::Progress::load(path);
        // One more play of every lesson the file holds: the counts it read must take another attempt.
        std::vector<std::string> ids;
        for (auto& [id, lp] : p.lessons) ids.push_back(id);
        for (auto& id : ids) p.record(id, size % 2 == 0, 0.5, 4, "1", 1, 2);
        p.save(path);
        demos::Progress q = demos::Progress::load(path);
        FUZZ_CHECK(q.lessons.size() == p.lessons.size(), "saved progress loads back");
    } catch (const moe::Error& e) {
        FUZZ_CHECK(e.kind() == moe::ErrorKind::BadInput || e.kind() == moe::ErrorKind::Runtime,
                   "a progress error is BadInput (or Runtime for a failed save)");
    }
    return 0;
}
