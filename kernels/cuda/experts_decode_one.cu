// The decode expert FFN in one launch (experts_decode.cuh, decode_one_ffn): split along F instead of two GEMMs.
// An item is (chunk of an expert's tokens, slice of kFC columns of h). Its block computes that slice of h (gate/up
// rows through decode's weight-streaming warps, the SiLU gate, h into shared memory), then contracts it at once with
// the matching kFC columns of every row of w2, and adds the partial y into fp32 sums in L2 (red.global.add). The
// last item of a chunk (a counter per chunk) rounds the chunk's sums to y. No item waits for another, so the weights
// stream from the first item to the last as one phase: the two-launch decode lost about 4 µs between its GEMMs,
// where the down kernel waited for the whole gate/up grid (kernels/bench/RESULTS.md, twelfth and fourteenth
// sessions). A small kernel before it zeroes the sums and counters; the FFN kernel is launched programmatically after
// it (PDL), so its plan, padding rows and first gate/up slices overlap the zeroing, and it waits for it before the
// first sum.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "kernels/common/bf16.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/experts_common.cuh"
#include "kernels/cuda/experts_decode.cuh"
#include "kernels/cuda/experts_stream.cuh"
#include "kernels/cuda/item_trace.cuh"

namespace moe::gpu {

namespace {

using namespace experts_detail;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;

__global__ void decode_one_zero_kernel(float4* sums, std::int64_t n4, int* done, int nd) {
    launch_dependents();  // the FFN kernel may start; it waits for this grid before its first sum
    const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
    const std::int64_t i0 = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    for (std::int64_t i = i0; i < n4; i += stride) sums[i] = make_float4(0.f, 0.f, 0.f, 0.f);
    for (std::int64_t i = i0; i < nd; i += stride) done[i] = 0;
}

// Items chunk-major: item = chunk · slices + slice, taken round-robin by the persistent blocks. kNT: token tiles of 8
// in a chunk (1 or 2); kFlavor: the gate/up weights' load flavor (warp_rows_by_tokens); kFC: columns of h an item
// owns (64 or 128: a w2 row's slice is then 128 or 256 contiguous bytes).
template <int kNT, int kFlavor, int kFC>
__global__ void __launch_bounds__(kThreads)
    decode_one_kernel(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                      const std::int32_t* offsets, int experts, int hidden, int ffn, const bf16_t* w1, const bf16_t* w2,
                      bf16_t* y, float* sums, int* done) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    int* pre = reinterpret_cast<int*>(smem_raw);        // [experts + 1]
    constexpr int kChunk = 8 * kNT, kStride = kFC + 8;  // h rows padded by 16 bytes: the 16-byte reads spread banks
    __shared__ __align__(16) bf16_t hs[kChunk * kStride];
    __shared__ int warp_sums[32];
    __shared__ int last;
    const int chunks = chunk_prefix(counts, experts, kChunk, pre, warp_sums);
    zero_padding_rows(counts, offsets, experts, hidden, y);
    const int slices = (ffn + kFC - 1) / kFC, row_groups = (hidden + 15) / 16;
    const std::int64_t items = std::int64_t(chunks) * slices;
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, warp = threadIdx.x >> 5;
    bool waited = false;
    for (std::int64_t it = blockIdx.x; it < items; it += gridDim.x) {
        const int j = static_cast<int>(it / slices), sl = static_cast<int>(it % slices);
        const int e = expert_of_chunk(pre, experts, j);
        const int tok0 = (j - pre[e]) * kChunk;
        const int ntok = min(kChunk, counts[e] - tok0), live = (ntok + 7) / 8;
        const std::int64_t r0 = std::int64_t(offsets[e]) + tok0;
        const int f0 = sl * kFC, nf = min(kFC, ffn - f0);  // F % 8 == 0: nf too
        const bf16_t* b[kNT];
#pragma unroll
        for (int jj = 0; jj < kNT; ++jj) {
            const int m = jj * 8 + g < ntok ? jj * 8 + g : 0;  // past the chunk: any valid row, never summed
            const std::int64_t r = r0 + m;
            b[jj] = xp ? xp + r * hidden : x + std::int64_t(row_token[r]) * hidden;
        }
        // h[:, f0 + 8q + (0..7)] for the warp's groups q: 8 gate rows and the matching 8 up rows each
        for (int q = warp; q < kFC / 8; q += kWarps) {
            float acc[kNT][4] = {};
            const bool in = q * 8 < nf;
            if (in) {
                const bf16_t* a_lo = w1 + (std::int64_t(e) * 2 * ffn + f0 + q * 8 + g) * hidden;  // gate row
                const bf16_t* a_hi = a_lo + std::int64_t(ffn) * hidden;                           // up row
                warp_rows_by_tokens<kNT, true, kFlavor>(a_lo, a_hi, b, live, 0, hidden, hidden, acc);
            }
#pragma unroll
            for (int jj = 0; jj < kNT; ++jj)
#pragma unroll
                for (int c = 0; c < 2; ++c)
                    hs[(jj * 8 + 2 * t + c) * kStride + q * 8 + g] =
                        in ? silu_gate(acc[jj][c], acc[jj][2 + c]) : bf16_t(0);  // zeros past F: no product
        }
        __syncthreads();
        if (!waited) {
            wait_for_producer();  // the sums and counters are zero
            waited = true;
        }
        // y[r0 + m, o] += Σ_k h[m, f0 + k]·w2[e, o, f0 + k] for k < nf: 16 rows o of w2 per step, the warp's steps
        // rg = warp, warp + 4, ...; kU of them with all their loads issued before the products.
        // (kPf: a w2 row's slice of 256 bytes is one L2 fetch, as decode asks for its weights)
        constexpr int kS = kFC / 32, kU = kFC == 64 ? 4 : 2, kPf = kFC >= 128 ? 1 : 0;
        uint4 xv[kS][kNT];
#pragma unroll
        for (int s = 0; s < kS; ++s)
#pragma unroll
            for (int jj = 0; jj < kNT; ++jj)
                xv[s][jj] = *reinterpret_cast<const uint4*>(hs + (jj * 8 + g) * kStride + 32 * s + 8 * t);
        const bf16_t* we = w2 + std::int64_t(e) * hidden * ffn + f0;
        for (int rg0 = warp; rg0 < row_groups; rg0 += kWarps * kU) {
            uint4 lo[kU][kS], hi[kU][kS];
#pragma unroll
            for (int u = 0; u < kU; ++u) {
                const int rg = rg0 + u * kWarps, o = rg * 16 + g;
                const bf16_t* plo = we + std::int64_t(min(o, hidden - 1)) * ffn;
                const bf16_t* phi = we + std::int64_t(min(o + 8, hidden - 1)) * ffn;
#pragma unroll
                for (int s = 0; s < kS; ++s) {
                    const int k = 32 * s + 8 * t;
                    const bool ok = rg < row_groups && k < nf;  // rows past d: clamped, never summed
                    lo[u][s] = ok ? ld_stream<kPf>(plo + k) : make_uint4(0, 0, 0, 0);
                    hi[u][s] = ok ? ld_stream<kPf>(phi + k) : make_uint4(0, 0, 0, 0);
                }
            }
#pragma unroll
            for (int u = 0; u < kU; ++u) {
                const int rg = rg0 + u * kWarps, o = rg * 16 + g;
                if (rg >= row_groups) break;  // warp-uniform
                float acc[kNT][4] = {};
#pragma unroll
                for (int s = 0; s < kS; ++s)
#pragma unroll
                    for (int jj = 0; jj < kNT; ++jj)
                        if (jj < live) mma_step(acc[jj], lo[u][s], hi[u][s], xv[s][jj]);
#pragma unroll
                for (int jj = 0; jj < kNT; ++jj)
#pragma unroll
                    for (int c = 0; c < 2; ++c) {
                        const int m = jj * 8 + 2 * t + c;
                        if (m >= ntok) continue;
                        float* row = sums + (r0 + m) * hidden;
                        if (o < hidden) atomicAdd(row + o, acc[jj][c]);
                        if (o + 8 < hidden) atomicAdd(row + o + 8, acc[jj][2 + c]);
                    }
            }
        }
        __threadfence();  // this thread's sums are performed before the block counts the item done
        __syncthreads();  // (and hs is free for the next item)
        if (threadIdx.x == 0) last = atomicAdd(done + j, 1) == slices - 1;
        __syncthreads();
        if (last) {  // every slice of the chunk is summed: round its rows to y
            __threadfence();
            const float* src = sums + r0 * hidden;
            bf16_t* dst = y + r0 * hidden;
            const int n = ntok * hidden;  // d % 8 == 0: whole groups of 4
#pragma unroll 4
            for (int i = threadIdx.x * 4; i < n; i += kThreads * 4) {
                const float4 v = __ldcg(reinterpret_cast<const float4*>(src + i));
                uint2 packed;
                packed.x = unsigned(f32_to_bf16(v.x)) | (unsigned(f32_to_bf16(v.y)) << 16);
                packed.y = unsigned(f32_to_bf16(v.z)) | (unsigned(f32_to_bf16(v.w)) << 16);
                *reinterpret_cast<uint2*>(dst + i) = packed;
            }
        }
    }
}

template <int kNT, int kFlavor, int kFC>
void launch_one(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                const std::int32_t* offsets, std::int64_t max_rows, std::int64_t est_chunks, int experts, int hidden,
                int ffn, const bf16_t* w1, const bf16_t* w2, bf16_t* y, float* sums, int* done, cudaStream_t st) {
    const std::int64_t n4 = max_rows * hidden / 4;
    const unsigned zgrid = static_cast<unsigned>(std::clamp<std::int64_t>((n4 + 255) / 256, 1, 264));
    decode_one_zero_kernel<<<zgrid, 256, 0, st>>>(reinterpret_cast<float4*>(sums), n4, done,
                                                  static_cast<int>(est_chunks));
    MOE_CUDA_LAUNCH_CHECK("decode_one_zero_kernel");
    auto kernel = decode_one_kernel<kNT, kFlavor, kFC>;
    const int smem = (experts + 1) * 4;
    static_assert(8 * 2 * (128 + 8) * 2 + 6145 * 4 <= 48 * 1024, "the default shared memory limit suffices");
    const std::int64_t items = est_chunks * ((ffn + kFC - 1) / kFC);
    const unsigned grid = persistent_blocks(kernel, kThreads, smem, items);
    launch_after_producer(kernel, grid, kThreads, smem, st, xp, x, row_token, counts, offsets, experts, hidden, ffn, w1,
                          w2, y, sums, done);
    MOE_CUDA_LAUNCH_CHECK("decode_one_kernel");
}

}  // namespace

bool decode_one_ffn(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                    const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn,
                    const bf16_t* w1, const bf16_t* w2, bf16_t* y, void* scratch, std::size_t scratch_bytes,
                    int chunk_tokens, cudaStream_t st) {
    if (max_rows <= 0 || (chunk_tokens != 8 && chunk_tokens != 16)) return false;
    if (env_choice("MOELAB_DECODE_ONE", {0, 1}, 1) == 0 || item_trace_path(st)) return false;
    if (!rows_in_16_byte_pieces(hidden, ffn, xp, x, w1, w2, scratch) || reinterpret_cast<std::uintptr_t>(y) % 16 != 0)
        return false;
    // The sums [max_rows, d] in fp32, then a counter per chunk (at most one a row, and at most rows / chunk plus a
    // partial one an expert).
    const std::int64_t est_chunks = std::min<std::int64_t>(max_rows, max_rows / chunk_tokens + experts);
    const std::size_t sum_bytes = std::size_t(max_rows) * hidden * 4;
    if (sum_bytes + std::size_t(est_chunks) * 4 > scratch_bytes) return false;
    float* sums = static_cast<float*>(scratch);
    int* done = reinterpret_cast<int*>(static_cast<char*>(scratch) + sum_bytes);
    const int fc = env_choice("MOELAB_DECODE_ONE_FC", {64, 128}, 64);
#define MOE_ONE_ARGS \
    xp, x, row_token, counts, offsets, max_rows, est_chunks, experts, hidden, ffn, w1, w2, y, sums, done, st
    if (chunk_tokens == 8)
        fc == 64 ? launch_one<1, 3, 64>(MOE_ONE_ARGS) : launch_one<1, 3, 128>(MOE_ONE_ARGS);
    else
        fc == 64 ? launch_one<2, 1, 64>(MOE_ONE_ARGS) : launch_one<2, 1, 128>(MOE_ONE_ARGS);
#undef MOE_ONE_ARGS
    return true;
}

}  // namespace moe::gpu
