// `moelab devices`: the GPUs this build can use, or why none, and what `--backend auto` will pick.
// Also prints the CPU the reference runs on.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "app/cli/commands.hpp"
#include "kernels/api.hpp"

namespace moelab_cli {

void add_devices_command(CLI::App& app, Handler* selected) {
    auto* cmd = app.add_subcommand("devices", "List the GPUs moelab can use and the CPU reference");
    cmd->callback([selected] {
        *selected = [] {
            auto devs = moe::gpu::devices();
            std::printf("CUDA backend: %s\n", moe::gpu::built() ? "built" : "not built");
            if (devs.empty()) {
                std::printf("GPUs: none usable (%s)\n", moe::gpu::unavailable_reason().c_str());
            } else {
                for (auto& d : devs)
                    std::printf("GPU %d: %s, %.1f GiB, %d SMs, compute capability %d.%d\n", d.index, d.name.c_str(),
                                d.memory_bytes / double(1ull << 30), d.sm_count, d.cc_major, d.cc_minor);
            }
            std::printf("CPU reference: %s\n", moe::cpu::device_name().c_str());
            std::printf("--backend auto uses: %s\n", devs.empty() ? "cpu (the reference)" : "cuda (GPU 0)");
            return 0;
        };
    });
}

}  // namespace moelab_cli
