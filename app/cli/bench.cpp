// Placeholder registration for `bench` until its capability lands; it registers nothing.
// The owner of this capability replaces this file.
#include "app/cli/commands.hpp"

namespace moelab_cli {
void add_bench_command(CLI::App&, Handler*) {}
}  // namespace moelab_cli
