// Our own first expert GEMM: h = silu(x_r·w1g^T)·(x_r·w1u^T) with x rows gathered by index (the nopack path)
// or read packed, the SiLU gate fused into the epilogue so that h1 never reaches memory.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/bf16.hpp"

namespace moe::gpu {

struct FusedTile {
    std::int32_t expert;
    std::int32_t m0;  // first row of this tile inside the expert's segment
};

constexpr int kFusedBM = 128;  // rows per tile

inline std::int64_t fused_max_tiles(std::int64_t max_rows, int experts) { return max_rows / kFusedBM + experts + 1; }

// Writes h[offsets[e] + m, f] for every kept row m < counts[e]. tiles: device scratch of fused_max_tiles entries.
void fused_gate_up(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                   const std::int32_t* offsets, const std::int32_t* counts_host, const std::int32_t* offsets_host,
                   int experts, int hidden, int ffn, const bf16_t* w1, FusedTile* tiles, bf16_t* h,
                   cudaStream_t st);

}  // namespace moe::gpu
