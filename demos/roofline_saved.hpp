// Rooflines measured on a GPU machine and saved there (`moelab bench experts --sweep --save FILE`), for any machine:
// the app shows them where nothing can be timed here (the CPU backend) or before its own measurement, with the
// device and date they were measured on. A file gives one ExpertRoofline per shape it swept.
#pragma once
#include <string>
#include <vector>

#include "demos/embedded_file.hpp"
#include "demos/roofline.hpp"

namespace demos {

// Parses a saved sweep: its ceilings, and for each shape the engine's choice (auto) at each tokens-per-expert with
// its probe, balanced run and PyTorch peer where timed. Every roofline is measured-gpu with `recorded` set. BadInput
// naming `source` and what is wrong when the text is not such a file.
std::vector<ExpertRoofline> rooflines_from_sweep_json(const std::string& text, const std::string& source);
// The same from a file (a regular file of at most 64 MiB); `flag` names the option in messages ("--roofline").
std::vector<ExpertRoofline> load_rooflines(const std::string& path, const std::string& flag = "--roofline");
// load_rooflines, and BadInput naming the shapes the file has (as flags) when `shape` is not among them.
std::vector<ExpertRoofline> load_rooflines_for(const std::string& path, const RooflineShape& shape,
                                               const std::string& flag = "--roofline");
// The run of record carried in the binary (kernels/bench/runs/*.json, embedded at build time).
const std::vector<ExpertRoofline>& recorded_rooflines();
// The roofline of `shape` in `set`, or nullptr.
const ExpertRoofline* find_roofline(const std::vector<ExpertRoofline>& set, const RooflineShape& shape);
// The shapes of `set` as the flags that select them: "classroom (--hidden 1024 --ffn 2816 --experts 16 --top-k 2)".
std::string describe_shapes(const std::vector<ExpertRoofline>& set);

const EmbeddedFile* embedded_roofline_runs(int* count);  // generated (demos/CMakeLists.txt)

}  // namespace demos
