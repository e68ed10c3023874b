// prefs.toml: any bytes give preferences (the defaults, with a warning, when the file is bad); never a crash.
// What loads saves to TOML that loads back to the same preferences without a warning.
#include <unistd.h>

#include <fstream>

#include "app/gui/prefs.hpp"
#include "tests/fuzz/fuzz_common.hpp"

namespace {

void put(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    static const std::string dir = [] {
        char tmpl[] = "/tmp/moelab-fuzz-prefs-XXXXXX";
        return std::string(mkdtemp(tmpl));
    }();
    const std::string path = dir + "/prefs.toml";
    put(path, fuzz_text(data, size));
    std::string warning;
    const moelab_gui::Prefs p = moelab_gui::load_prefs(path, &warning);
    const std::string saved = moelab_gui::prefs_to_toml(p);
    put(path, saved);
    std::string again_warning;
    const moelab_gui::Prefs q = moelab_gui::load_prefs(path, &again_warning);
    FUZZ_CHECK(again_warning.empty(), "saved preferences load back without a warning");
    FUZZ_CHECK(moelab_gui::prefs_to_toml(q) == saved, "saved preferences load back the same");
    return 0;
}
