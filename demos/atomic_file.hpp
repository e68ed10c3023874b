// Files in and out, safely. Writing: a temporary file beside the target, then a rename, so a crash never leaves
// half of it; symlinks are followed and devices such as /dev/stdout are written directly. Reading: only regular
// files, of bounded size, so a FIFO, a folder or /dev/zero is refused instead of hanging or eating memory.
// Used for scenarios, .npy dumps, lesson files and progress, preferences and exports.
#pragma once
#include <cstddef>
#include <string>

namespace demos {

// Returns false with `*err` naming the file and the reason.
bool write_file_atomic(const std::string& path, const std::string& content, std::string* err);
// Throws moe::Error (Runtime) naming the file and the reason.
void write_file_atomic(const std::string& path, const std::string& content);

// Removes "<path>.tmp.<pid>" files beside `path` that a killed writer left behind (the pid is no longer
// running). Returns how many were removed.
int remove_stale_temps(const std::string& path);

// Reads a whole regular file of at most `max_bytes`. Returns false with `*err` saying why, without the path:
// "cannot open (No such file or directory)", "not a regular file (a FIFO)", "is 3000000 bytes; the limit is
// 1048576". Never blocks on a FIFO and never reads a device.
bool read_regular_file(const std::string& path, std::size_t max_bytes, std::string* out, std::string* err);

// Size and nesting limits for TOML text, checked before the parser sees it (toml++ recurses per level, so
// 40,000 nested tables would overflow the stack). Returns "" when fine, else a message starting "line N: ".
constexpr std::size_t kMaxTomlBytes = 1 << 20;
constexpr int kMaxTomlDepth = 32;
std::string toml_limits_problem(const std::string& text, std::size_t max_bytes = kMaxTomlBytes,
                                int max_depth = kMaxTomlDepth);

}  // namespace demos
