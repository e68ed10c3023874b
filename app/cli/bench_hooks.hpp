// Extra `moelab bench WHAT` subcommands that live in their own files (e.g. bench_pipeline.cpp). Each one is a
// BenchExtension listed in bench_extensions() (bench_extensions.cpp): an explicit list, because a static
// initialiser in the moe_cli static library could be dropped by the linker. bench.cpp adds each extension's own
// flags to `moelab bench`, names it in the help, and runs it when `what` equals its name.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace moelab_cli {

// The flags every bench shares, as parsed (custom shape fields are 0 when not given).
struct BenchCommon {
    std::string what;
    std::vector<std::string> shapes;  // --shape
    std::int64_t tokens = 0;
    int hidden = 0, experts = 0, top_k = 0, ffn = 0;
    std::string skew = "uniform";
    int warmup = 10, repeats = 50;
    std::uint64_t seed = 1;
    bool sweep = false, no_check = false, json = false, quiet = false;
    std::string save, peer;
};

struct BenchExtension {
    const char* name;                    // the `what` it answers to
    void (*add_options)(CLI::App& cmd);  // its own flags on `moelab bench` (may be null); names must not clash
    int (*run)(const BenchCommon& common);
};

const std::vector<BenchExtension>& bench_extensions();  // bench_extensions.cpp

}  // namespace moelab_cli
