// Hot-expert copies and where they go: MegaScale-Infer's greedy redundancy and placement, the engine's contiguous
// placement in the same form, and the replicated expert layer on the CPU reference. Pure functions of the loads;
// the lesson experiments (demos/experiments.hpp) time them.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/common/bf16.hpp"

namespace demos {

// MegaScale-Infer's greedy redundancy: `copies` extra copies, each given to the expert whose per-copy load is the
// highest at that moment; then every copy (originals included), heaviest first, goes to the GPU with the least
// load that does not already hold a copy of the same expert. A copy takes an equal share of its expert's tokens
// (the remainder to the first copies). Returns per GPU the (expert, rows) it computes.
struct PlacedCopy {
    int expert = 0;
    std::int64_t rows = 0;
};
std::vector<std::vector<PlacedCopy>> greedy_placement(const std::vector<std::int64_t>& loads, int gpus, int copies);
// The contiguous placement of the engine (E/G experts per GPU, no copies), in the same form.
std::vector<std::vector<PlacedCopy>> contiguous_placement(const std::vector<std::int64_t>& loads, int gpus);
std::int64_t busiest_gpu_rows(const std::vector<std::vector<PlacedCopy>>& placement);
// The same placement with each copy's rows re-split from `loads` (a plan made on one batch, applied to the next).
std::vector<std::vector<PlacedCopy>> apply_placement(const std::vector<std::vector<PlacedCopy>>& plan,
                                                     const std::vector<std::int64_t>& loads);
// The replicated expert layer on the CPU reference: every copy computes its share of its expert's packed rows with
// that expert's weights. Returns the outputs in the original packed order: the plain layer's, up to one bf16
// rounding where the reference groups a split segment's rows differently.
std::vector<moe::bf16_t> replicated_ffn_cpu(const std::vector<moe::bf16_t>& xp, const std::vector<std::int32_t>& counts,
                                       const std::vector<std::vector<PlacedCopy>>& placement, int hidden, int ffn,
                                       const std::vector<moe::bf16_t>& w1, const std::vector<moe::bf16_t>& w2);

}  // namespace demos
