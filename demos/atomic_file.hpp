// Writing a file so that a crash never leaves half of it: a temporary file beside it, then a rename.
// Used for scenarios, .npy dumps, lesson progress, preferences and exports.
#pragma once
#include <string>

namespace demos {

// Returns false with `*err` naming the file and the reason.
bool write_file_atomic(const std::string& path, const std::string& content, std::string* err);
// Throws moe::Error (Runtime) naming the file and the reason.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace demos
