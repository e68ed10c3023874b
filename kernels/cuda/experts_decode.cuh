// The expert FFN for few tokens per expert (decode): the weights stream through the tensor cores at memory speed.
// Roles are swapped against a usual GEMM: 16 weight rows are the M side of mma.sync m16n8k16 and up to 8·kNT tokens
// the N side, so a warp reads each weight byte once per chunk of tokens. One launch per GEMM covers every expert;
// counts and offsets are read on the device (no host copy of the plan, so it can sit inside a CUDA graph).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/common/bf16.hpp"

namespace moe::gpu {

// h[offsets[e] + m] = bf16(silu(bf16(x_m·w1g^T))·bf16(x_m·w1u^T)), then y[offsets[e] + m] = bf16(h_m·w2^T), for
// every kept row m < counts[e]. x rows are xp's (packed) or gathered from x through row_token when xp is null.
// h: [max_rows, F] scratch. Padding rows of y become zeros. max_rows: the host's bound on offsets[E] (sizes the
// grid only). chunk_tokens: from decode_chunk_tokens (launchers.hpp). scratch: device memory decode_one_ffn may use
// (null: none); where it runs, h is not touched.
void decode_ffn(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn, const bf16_t* w1,
                const bf16_t* w2, bf16_t* h, bf16_t* y, int chunk_tokens, void* scratch, std::size_t scratch_bytes,
                cudaStream_t st);

// The same FFN in one launch, split along F (experts_decode_one.cu): each item computes a slice of h for a chunk of
// tokens and adds its product with w2's matching columns into fp32 sums in `scratch` ([max_rows, d] floats and a
// counter per chunk); the last item of a chunk rounds its rows to y. Runs for chunks of 8 and 16 tokens, rows in
// 16-byte pieces and scratch large enough, unless MOELAB_DECODE_ONE=0 or the item trace is on; returns whether it
// ran (else nothing was launched). MOELAB_DECODE_ONE_FC=64|128: the columns of h an item owns (64 by default).
bool decode_one_ffn(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                    const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn,
                    const bf16_t* w1, const bf16_t* w2, bf16_t* y, void* scratch, std::size_t scratch_bytes,
                    int chunk_tokens, cudaStream_t st);

}  // namespace moe::gpu
