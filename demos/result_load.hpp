// A Result back from its JSON (demos/result_io.hpp's to_json): a run measured on a GPU machine can be shown,
// snapshotted or taught from on any machine, with its provenance and device intact.
#pragma once
#include <string>

#include "demos/result.hpp"

namespace demos {

// BadInput naming the source and what is wrong when the JSON is not a moelab Result.
Result result_from_json(const std::string& text, const std::string& source);
Result load_result(const std::string& path);  // only regular files of at most 64 MiB

}  // namespace demos
