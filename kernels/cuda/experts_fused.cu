// The gathering gate/up GEMM of the nopack path: tensor-core mma.sync (bf16 in, fp32 accumulate) over a 4-stage
// cp.async pipeline, A rows fetched through row_token, SiLU·up in the epilogue. Odd shapes take a plain kernel.
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "kernels/common/bf16.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/experts_common.cuh"
#include "kernels/cuda/experts_fused.cuh"

namespace moe::gpu {

namespace {

using namespace experts_detail;

constexpr int kBM = kFusedBM;      // rows of x per block
constexpr int kBN = 64;            // columns of h per block: 64 gate rows + 64 up rows of w1
constexpr int kBK = 32;            // depth per pipeline stage
constexpr int kStages = 4;
constexpr int kThreads = 256;      // 8 warps: 4 along M × 2 along N, each 32 rows × 32 columns of h
constexpr int kLd = kBK + 8;       // padded smem row (80 B): the 8 rows an ldmatrix reads hit distinct banks
constexpr int kStageElems = (kBM + 2 * kBN) * kLd;
constexpr int kSmemBytes = kStages * kStageElems * int(sizeof(bf16_t));

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool pred) {
    unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
    int n = pred ? 16 : 0;  // 0: zero-fill, nothing is read
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}

__global__ void __launch_bounds__(kThreads, 2)
    fused_gate_up_kernel(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const FusedTile* tiles,
                         const std::int32_t* counts, const std::int32_t* offsets, int hidden, int ffn,
                         const bf16_t* w1, bf16_t* h) {
    extern __shared__ __align__(16) bf16_t smem[];
    const FusedTile tile = tiles[blockIdx.x];
    const int e = tile.expert;
    const int n_rows = counts[e] - tile.m0;  // rows of this tile that exist (may exceed kBM)
    const std::int64_t r0 = offsets[e] + tile.m0;
    const int n0 = blockIdx.y * kBN;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int wm = warp & 3, wn = warp >> 2;

    // Each thread copies two 16-byte chunks of A and two of B per stage; their source rows are fixed.
    const bf16_t* a_src[2];
    const bf16_t* b_src[2];
    bool a_ok[2];
    int s_row[2], s_col[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int q = tid + i * kThreads;
        s_row[i] = q >> 2;
        s_col[i] = (q & 3) * 8;
        const int m = s_row[i];
        a_ok[i] = m < n_rows;
        const std::int64_t r = r0 + m;
        a_src[i] = !a_ok[i] ? x ? x : xp
                   : xp     ? xp + r * hidden
                            : x + std::int64_t(row_token[r]) * hidden;
        const int wrow = m < kBN ? n0 + m : ffn + n0 + (m - kBN);  // gate rows, then the matching up rows
        b_src[i] = w1 + (std::int64_t(e) * 2 * ffn + wrow) * hidden;
    }
    auto load_stage = [&](int stage, int k0) {
        bf16_t* sa = smem + stage * kStageElems;
        bf16_t* sb = sa + kBM * kLd;
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            cp_async16(sa + s_row[i] * kLd + s_col[i], a_ok[i] ? a_src[i] + k0 + s_col[i] : a_src[i], a_ok[i]);
            cp_async16(sb + s_row[i] * kLd + s_col[i], b_src[i] + k0 + s_col[i], true);
        }
    };

    float acc[2][8][4] = {};
    const int ktiles = hidden / kBK;
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
        if (s < ktiles) load_stage(s, s * kBK);
        cp_async_commit();
    }
    for (int kt = 0; kt < ktiles; ++kt) {
        cp_async_wait<kStages - 2>();
        __syncthreads();  // stage kt is in; every warp is done with the stage about to be refilled
        const int pre = kt + kStages - 1;
        if (pre < ktiles) load_stage(pre % kStages, pre * kBK);
        cp_async_commit();

        const bf16_t* sa = smem + (kt % kStages) * kStageElems;
        const bf16_t* sb = sa + kBM * kLd;
#pragma unroll
        for (int kk = 0; kk < kBK; kk += 16) {
            unsigned a[2][4];
#pragma unroll
            for (int mi = 0; mi < 2; ++mi)
                ldmatrix_x4(a[mi], sa + (wm * 32 + mi * 16 + (lane & 15)) * kLd + kk + (lane >> 4) * 8);
            unsigned b[8][2];
#pragma unroll
            for (int p = 0; p < 4; ++p) {  // pairs of n8 tiles: 0-1 gate, 2-3 gate, 4-5 up, 6-7 up
                const int base = (p < 2 ? 0 : kBN) + wn * 32 + (p & 1) * 16;
                unsigned r[4];
                ldmatrix_x4(r, sb + (base + (lane & 7) + ((lane >> 4) << 3)) * kLd + kk + ((lane >> 3) & 1) * 8);
                b[2 * p][0] = r[0], b[2 * p][1] = r[1], b[2 * p + 1][0] = r[2], b[2 * p + 1][1] = r[3];
            }
#pragma unroll
            for (int mi = 0; mi < 2; ++mi)
#pragma unroll
                for (int ni = 0; ni < 8; ++ni) mma_bf16(acc[mi][ni], a[mi], b[ni][0], b[ni][1]);
        }
    }
    cp_async_wait<0>();

    // Gate tile ni (0-3) and up tile ni + 4 hold the same columns of h.
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int m = wm * 32 + mi * 16 + (lane >> 2) + half * 8;
            if (m >= n_rows || m >= kBM) continue;
            bf16_t* out = h + (r0 + m) * ffn + n0 + wn * 32 + (lane & 3) * 2;
#pragma unroll
            for (int ni = 0; ni < 4; ++ni) {
                bf16_t v0 = silu_gate(acc[mi][ni][half * 2], acc[mi][ni + 4][half * 2]);
                bf16_t v1 = silu_gate(acc[mi][ni][half * 2 + 1], acc[mi][ni + 4][half * 2 + 1]);
                *reinterpret_cast<unsigned*>(out + ni * 8) = unsigned(v0) | (unsigned(v1) << 16);
            }
        }
}

// Any shape: one thread per (row, column of h), plain fp32 dot products.
__global__ void fused_gate_up_plain_kernel(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token,
                                           const std::int32_t* counts, const std::int32_t* offsets, int experts,
                                           std::int64_t rows, int hidden, int ffn, const bf16_t* w1, bf16_t* h) {
    const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= rows * ffn) return;
    const std::int64_t r = i / ffn;
    const int f = static_cast<int>(i % ffn);
    if (row_token[r] < 0) return;  // padding
    int e = 0;
    while (e + 1 < experts && offsets[e + 1] <= r) ++e;
    const bf16_t* a = xp ? xp + r * hidden : x + std::int64_t(row_token[r]) * hidden;
    const bf16_t* wg = w1 + (std::int64_t(e) * 2 * ffn + f) * hidden;
    const bf16_t* wu = wg + std::int64_t(ffn) * hidden;
    float g = 0.f, u = 0.f;
    for (int j = 0; j < hidden; ++j) {
        float av = bf16_to_f32(a[j]);
        g += av * bf16_to_f32(wg[j]);
        u += av * bf16_to_f32(wu[j]);
    }
    h[r * ffn + f] = silu_gate(g, u);
}

}  // namespace

void fused_gate_up(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                   const std::int32_t* offsets, const std::int32_t* counts_host, const std::int32_t* offsets_host,
                   int experts, int hidden, int ffn, const bf16_t* w1, FusedTile* tiles, bf16_t* h,
                   cudaStream_t st) {
    const std::int64_t rows = offsets_host[experts];
    if (rows == 0) return;
    if (hidden % kBK != 0 || ffn % kBN != 0) {
        fused_gate_up_plain_kernel<<<grid_for(rows * ffn, 256), 256, 0, st>>>(xp, x, row_token, counts, offsets,
                                                                              experts, rows, hidden, ffn, w1, h);
        MOE_CUDA_LAUNCH_CHECK("fused_gate_up_plain_kernel");
        return;
    }
    // One tile per 128 kept rows of each expert: experts with no tokens get no blocks.
    std::vector<FusedTile> host;
    for (int e = 0; e < experts; ++e)
        for (int m0 = 0; m0 < counts_host[e]; m0 += kBM) host.push_back({e, m0});
    if (host.empty()) return;
    MOE_ASSERT(std::int64_t(host.size()) <= fused_max_tiles(rows, experts), "fused GEMM: tile list overflow");
    // From pageable memory: cudaMemcpyAsync stages the bytes before it returns, so `host` may die after.
    MOE_CUDA_CHECK(
        cudaMemcpyAsync(tiles, host.data(), host.size() * sizeof(FusedTile), cudaMemcpyHostToDevice, st));
    static thread_local bool attr_set = false;
    if (!attr_set) {
        MOE_CUDA_CHECK(
            cudaFuncSetAttribute(fused_gate_up_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
        attr_set = true;
    }
    // Tiles along x (no 65535 limit); the h columns along y.
    dim3 grid(static_cast<unsigned>(host.size()), ffn / kBN);
    fused_gate_up_kernel<<<grid, kThreads, kSmemBytes, st>>>(xp, x, row_token, tiles, counts, offsets, hidden, ffn,
                                                           w1, h);
    MOE_CUDA_LAUNCH_CHECK("fused_gate_up_kernel");
}

}  // namespace moe::gpu
