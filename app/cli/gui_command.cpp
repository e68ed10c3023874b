// Placeholder registration for `gui_command` until its capability lands; it registers nothing.
// The owner of this capability replaces this file.
#include "app/cli/commands.hpp"

namespace moelab_cli {
void add_gui_options(CLI::App&, Handler*) {}
}  // namespace moelab_cli
