// prefs.toml: any bytes give preferences (the defaults, with a warning, when the file is bad); never a crash.
#include <unistd.h>

#include <fstream>

#include "app/gui/prefs.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    static const std::string dir = [] {
        char tmpl[] = "/tmp/moelab-fuzz-prefs-XXXXXX";
        return std::string(mkdtemp(tmpl));
    }();
    const std::string path = dir + "/prefs.toml";
    {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    std::string warning;
    (void)moelab_gui::load_prefs(path, &warning);
    return 0;
}
