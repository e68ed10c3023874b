// Decode attention on the GPU (kernels/attention.hpp): cuBLAS projections around a split-K, flash-decoding style
// kernel that streams the bf16 KV cache with 16-byte loads straight into tensor-core fragments. See ATTENTION.md.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/attention.hpp"
#include "kernels/common/bf16.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/cuda/workspace.hpp"

namespace moe::attention::gpu {

namespace {

constexpr int kD = Spec::head_dim;
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRows = 16;                 // query heads per CTA: the M of the mma
constexpr int kStep = 16;                 // positions per warp and iteration: the K of the p·v mma
constexpr int kCtaStep = kWarps * kStep;  // positions per CTA and iteration
constexpr int kMaxSplits = 256;
constexpr int kSmemStride = kD + 4;                // floats per row of the warp-merge buffer
constexpr int kStages = 3;                         // Kernel::Pipelined: steps in each warp's shared-memory ring
constexpr int kStageU4 = 2 * kStep * kD * 2 / 16;  // one step of K and V in 16-byte chunks (8 KB)
constexpr std::size_t kMergeBytes = (std::size_t(kWarps) * kRows * kSmemStride + 2 * kWarps * kRows) * 4;
constexpr std::size_t kRingBytes = std::size_t(kWarps) * kStages * kStageU4 * 16;

struct Args {
    const bf16_t* qkv;
    const bf16_t* k;
    const bf16_t* v;
    bf16_t* attn;       // written directly when splits == 1
    float* part_o;      // [ctas, 16, 128] normalised partial outputs, when splits > 1
    float* part_lse;    // [ctas, 16] log2 of each partial's softmax denominator, with its max added
    std::int64_t cols;  // qkv row length
    int context, q_heads, kv_groups, per_group, head_tiles, splits, chunk;
    float scale_log2;  // log2(e)/sqrt(128): scores in base 2, so exp2 does the softmax
};

__device__ __forceinline__ void mma_bf16(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                         std::uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats → bf16x2 (round to nearest even), `lo` in the low half.
__device__ __forceinline__ std::uint32_t pack_bf16(float lo, float hi) {
    std::uint32_t d;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(d) : "f"(hi), "f"(lo));
    return d;
}
__device__ __forceinline__ float lo_f32(std::uint32_t u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float hi_f32(std::uint32_t u) { return __uint_as_float(u & 0xffff0000u); }

__device__ __forceinline__ std::uint32_t word(const uint4& u, int w) {
    return w == 0 ? u.x : w == 1 ? u.y : w == 2 ? u.z : u.w;
}

__device__ __forceinline__ uint4 load16(const bf16_t* p, bool ok) {
    return ok ? __ldg(reinterpret_cast<const uint4*>(p)) : make_uint4(0, 0, 0, 0);
}

// S[16 heads, 16 positions] = Q·K^T for one step: two n-tiles of 8 positions, 8 k-steps over the head dim.
__device__ __forceinline__ void step_scores(const std::uint32_t (&qa)[8][4], const uint4 (&kr)[2][4],
                                            float (&s)[2][4]) {
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
        s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            mma_bf16(s[nt], qa[2 * j], kr[nt][j].x, kr[nt][j].y);
            mma_bf16(s[nt], qa[2 * j + 1], kr[nt][j].z, kr[nt][j].w);
        }
    }
}

// The online softmax of one step (rows gq and gq + 8 of this thread; S column c of tile nt is position
// base + nt·8 + c), then O += P·V with P split as bf16 hi + lo.
__device__ __forceinline__ void step_softmax_pv(int base, int p_end, int t, float scale_log2, const float (&s)[2][4],
                                                const uint4 (&vr)[4][2], float (&m)[2], float (&l)[2],
                                                float (&o)[16][4]) {
    std::uint32_t pa_hi[4], pa_lo[4];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float x[4];
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            const int p = base + (c >> 1) * 8 + 2 * t + (c & 1);
            x[c] = p < p_end ? s[c >> 1][2 * r + (c & 1)] * scale_log2 : -INFINITY;
        }
        float mx = fmaxf(fmaxf(x[0], x[1]), fmaxf(x[2], x[3]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m[r], mx);
        const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // nothing seen yet: every p is 0
        const float alpha = exp2f(m[r] - m_use);
        m[r] = m_new;
        float pr[4];
#pragma unroll
        for (int c = 0; c < 4; ++c) pr[c] = exp2f(x[c] - m_use);
        l[r] = l[r] * alpha + ((pr[0] + pr[1]) + (pr[2] + pr[3]));
#pragma unroll
        for (int i = 0; i < 16; ++i) o[i][2 * r] *= alpha, o[i][2 * r + 1] *= alpha;
            // A fragment: a0/a2 hold row gq, a1/a3 row gq + 8; a0/a1 positions 2t, 2t+1 of tile 0, a2/a3 of tile 1.
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const std::uint32_t hi = pack_bf16(pr[2 * half], pr[2 * half + 1]);
            pa_hi[2 * half + r] = hi;
            pa_lo[2 * half + r] = pack_bf16(pr[2 * half] - lo_f32(hi), pr[2 * half + 1] - hi_f32(hi));
        }
    }
#pragma unroll
    for (int i = 0; i < 16; ++i) {
        const int h = i >> 3, e = i & 7;
        const std::uint32_t sel = (e & 1) ? 0x7632u : 0x5410u;  // high or low halves of the two words
        const std::uint32_t b0 = __byte_perm(word(vr[0][h], e >> 1), word(vr[1][h], e >> 1), sel);
        const std::uint32_t b1 = __byte_perm(word(vr[2][h], e >> 1), word(vr[3][h], e >> 1), sel);
        mma_bf16(o[i], pa_hi, b0, b1);
        mma_bf16(o[i], pa_lo, b0, b1);
    }
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool ok) {
    const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(ok ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

// 16-byte chunk c of row r of a staged tile lives at chunk c ^ swizzle(r): the K reads (rows g, chunks 4j + t) and
// the V reads (rows 2t + x, chunks g and 8 + g) of each quarter-warp then hit eight different bank groups.
__device__ __forceinline__ int swizzle(int r) { return ((r & 1) << 2) ^ (((r >> 1) & 3) << 1); }

// One CTA = one (sequence b, kv group g, tile of up to 16 query heads, split of `chunk` positions). Its four warps
// take 16-position steps in turn, each with its own online softmax, and merge in shared memory at the end.
//
// Per step and warp, with g = lane / 4 and t = lane % 4 (the mma fragment coordinates):
//   S[16 heads, 16 pos] = Q·K^T: two m16n8k16 tiles of 8 positions, 8 k-steps over the head dim. Thread (g, t)
//     takes K row (pos g) at dims (4j + t)·8 .. +8 as one uint4 for j = 0..3: since the dot product may sum the
//     head dim in any order, those 8 dims fill its b0/b1 of k-steps 2j and 2j + 1, and the Q fragments are
//     loaded with the same order.
//   O[16 heads, 128 dims] += P·V: P comes straight from the S accumulators (FlashAttention-2's register reuse),
//     split as bf16 hi + lo so that p keeps ~16 bits and the sum stays fp32-grade. For V, thread (g, t) takes
//     positions 2t, 2t+1, 2t+8, 2t+9 at dims g·8 .. +8 and 64 + g·8 .. +8 (a uint4 each), and output n-tile i's
//     column n stands for dim (i/8)·64 + n·8 + i%8.
// kAsync = false (Kernel::Registers): each thread loads its fragments from global memory (4 threads read 64, or
//   8 threads 128, contiguous bytes of a row); the next step's K is in flight during this step's softmax and P·V.
// kAsync = true (Kernel::Pipelined): each warp streams its steps through a private ring of kStages shared-memory
//   tiles with cp.async (coalesced 512-byte rows, zero-fill past the end), kStages − 1 steps ahead, and reads its
//   fragments from there: more bytes in flight per SM, so fewer SMs (a green context) still fill HBM.
template <bool kAsync>
__global__ void __launch_bounds__(kThreads, 2) attend_kernel(Args a) {
    extern __shared__ uint4 dyn_smem[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int gq = lane >> 2, t = lane & 3;
    const std::int64_t cta = blockIdx.x;
    const int split = static_cast<int>(cta % a.splits);
    const std::int64_t unit = cta / a.splits;
    const int ht = static_cast<int>(unit % a.head_tiles);
    const std::int64_t bg = unit / a.head_tiles;  // b·G + g
    const int grp = static_cast<int>(bg % a.kv_groups);
    const std::int64_t b = bg / a.kv_groups;
    const int h0 = grp * a.per_group + ht * kRows;
    const int nh = min(kRows, a.per_group - ht * kRows);
    const int past = a.context - 1;
    const int p_begin = split * a.chunk, p_end = min(a.context, p_begin + a.chunk);

    const bf16_t* qkv_b = a.qkv + b * a.cols;
    const bf16_t* kc = a.k + bg * past * kD;
    const bf16_t* vc = a.v + bg * past * kD;
    const bf16_t* kf = qkv_b + std::int64_t(a.q_heads + grp) * kD;  // this token's k and v
    const bf16_t* vf = qkv_b + std::int64_t(a.q_heads + a.kv_groups + grp) * kD;

    // Q as the A operand: rows gq and gq + 8 (zero past the tile's heads).
    std::uint32_t qa[8][4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const uint4 r0 = load16(qkv_b + std::int64_t(h0 + gq) * kD + (4 * j + t) * 8, gq < nh);
        const uint4 r1 = load16(qkv_b + std::int64_t(h0 + gq + 8) * kD + (4 * j + t) * 8, gq + 8 < nh);
        qa[2 * j][0] = r0.x, qa[2 * j][1] = r1.x, qa[2 * j][2] = r0.y, qa[2 * j][3] = r1.y;
        qa[2 * j + 1][0] = r0.z, qa[2 * j + 1][1] = r1.z, qa[2 * j + 1][2] = r0.w, qa[2 * j + 1][3] = r1.w;
    }

    float o[16][4];
#pragma unroll
    for (int i = 0; i < 16; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const int base0 = p_begin + warp * kStep;

    if constexpr (!kAsync) {
        auto load_k = [&](int base, uint4(&kr)[2][4]) {
#pragma unroll
            for (int nt = 0; nt < 2; ++nt) {
                const int p = base + nt * 8 + gq;
                const bf16_t* row = p < past ? kc + std::int64_t(p) * kD : kf;
#pragma unroll
                for (int j = 0; j < 4; ++j) kr[nt][j] = load16(row + (4 * j + t) * 8, p < p_end);
            }
        };
        auto load_v = [&](int base, uint4(&vr)[4][2]) {
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int p = base + 2 * t + (q & 1) + (q >> 1) * 8;
                const bf16_t* row = p < past ? vc + std::int64_t(p) * kD : vf;
                vr[q][0] = load16(row + gq * 8, p < p_end);
                vr[q][1] = load16(row + 64 + gq * 8, p < p_end);
            }
        };
        uint4 kr[2][4];
        if (base0 < p_end) load_k(base0, kr);
        for (int base = base0; base < p_end; base += kCtaStep) {
            uint4 vr[4][2];
            load_v(base, vr);
            float s[2][4];
            step_scores(qa, kr, s);
            if (base + kCtaStep < p_end) load_k(base + kCtaStep, kr);  // in flight during the softmax and p·v
            step_softmax_pv(base, p_end, t, a.scale_log2, s, vr, m, l, o);
        }
    } else {
        uint4* ring = dyn_smem + warp * kStages * kStageU4;  // [kStages][K, V][16 rows][16 chunks]
        const int n_it = base0 < p_end ? (p_end - base0 + kCtaStep - 1) / kCtaStep : 0;
        auto issue = [&](int it) {
            const int base = base0 + it * kCtaStep;
            uint4* st = ring + (it % kStages) * kStageU4;
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const int idx = lane + 32 * i, r = idx >> 4, c = idx & 15;
                const int p = base + r;
                const bool ok = p < p_end;
                const bf16_t* krow = p < past ? kc + std::int64_t(p) * kD : kf;
                const bf16_t* vrow = p < past ? vc + std::int64_t(p) * kD : vf;
                const int at = r * 16 + (c ^ swizzle(r));
                cp_async16(st + at, ok ? krow + c * 8 : kf, ok);
                cp_async16(st + kStageU4 / 2 + at, ok ? vrow + c * 8 : vf, ok);
            }
        };
#pragma unroll
        for (int it = 0; it < kStages - 1; ++it) {
            if (it < n_it) issue(it);
            cp_async_commit();
        }
        for (int it = 0; it < n_it; ++it) {
            if (it + kStages - 1 < n_it) issue(it + kStages - 1);
            cp_async_commit();
            cp_async_wait<kStages - 1>();  // this step's group has landed (for this thread)
            __syncwarp();                  // ... and for every lane of the warp
            const uint4* st = ring + (it % kStages) * kStageU4;
            uint4 kr[2][4];
#pragma unroll
            for (int nt = 0; nt < 2; ++nt) {
                const int r = nt * 8 + gq;
#pragma unroll
                for (int j = 0; j < 4; ++j) kr[nt][j] = st[r * 16 + ((4 * j + t) ^ swizzle(r))];
            }
            float s[2][4];
            step_scores(qa, kr, s);
            uint4 vr[4][2];
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int r = 2 * t + (q & 1) + (q >> 1) * 8;
                vr[q][0] = st[kStageU4 / 2 + r * 16 + (gq ^ swizzle(r))];
                vr[q][1] = st[kStageU4 / 2 + r * 16 + ((8 + gq) ^ swizzle(r))];
            }
            step_softmax_pv(base0 + it * kCtaStep, p_end, t, a.scale_log2, s, vr, m, l, o);
            __syncwarp();  // every lane is done with this stage before it is refilled
        }
        cp_async_wait<0>();
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }

    // Merge the four warps: O = Σ_w 2^(m_w − M)·O_w / Σ_w 2^(m_w − M)·l_w. The buffer reuses the ring.
    float* sm_o = reinterpret_cast<float*>(dyn_smem);   // [kWarps][kRows][kSmemStride]
    float* sm_m = sm_o + kWarps * kRows * kSmemStride;  // [kWarps][kRows]
    float* sm_l = sm_m + kWarps * kRows;                // [kWarps][kRows]
    __syncthreads();
#pragma unroll
    for (int i = 0; i < 16; ++i) {
        const int dim0 = (i >> 3) * 64 + (i & 7);
#pragma unroll
        for (int c = 0; c < 2; ++c) {
            sm_o[(warp * kRows + gq) * kSmemStride + dim0 + (2 * t + c) * 8] = o[i][c];
            sm_o[(warp * kRows + gq + 8) * kSmemStride + dim0 + (2 * t + c) * 8] = o[i][2 + c];
        }
    }
    if (t == 0) {
        sm_m[warp * kRows + gq] = m[0], sm_m[warp * kRows + gq + 8] = m[1];
        sm_l[warp * kRows + gq] = l[0], sm_l[warp * kRows + gq + 8] = l[1];
    }
    __syncthreads();
    const int dim = threadIdx.x;  // kThreads == kD
    for (int row = 0; row < nh; ++row) {
        float mx = -INFINITY;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, sm_m[w * kRows + row]);
        const float m_use = mx == -INFINITY ? 0.0f : mx;
        float den = 0.0f, num = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) {
            const float f = exp2f(sm_m[w * kRows + row] - m_use);
            den += f * sm_l[w * kRows + row];
            num += f * sm_o[(w * kRows + row) * kSmemStride + dim];
        }
        if (a.splits == 1) {
            a.attn[(b * a.q_heads + h0 + row) * kD + dim] = f32_to_bf16(num / den);
        } else {
            a.part_o[(cta * kRows + row) * kD + dim] = den > 0.0f ? num / den : 0.0f;
            if (dim == 0) a.part_lse[cta * kRows + row] = den > 0.0f ? mx + log2f(den) : -INFINITY;
        }
    }
}

// attn[b, h] = Σ_s 2^(lse_s − M)·o_s / Σ_s 2^(lse_s − M) over the splits of (b, h); one CTA per (b, h), one
// thread per dim.
__global__ void combine_kernel(Args a) {
    const std::int64_t bh = blockIdx.x;
    const int h = static_cast<int>(bh % a.q_heads);
    const std::int64_t b = bh / a.q_heads;
    const int grp = h / a.per_group, in_group = h % a.per_group;
    const std::int64_t unit = (b * a.kv_groups + grp) * a.head_tiles + in_group / kRows;
    const int row = in_group % kRows;
    const float* lse = a.part_lse + unit * a.splits * kRows + row;
    const float* po = a.part_o + (unit * a.splits * kRows + row) * kD + threadIdx.x;
    float mx = -INFINITY;
    for (int sp = 0; sp < a.splits; ++sp) mx = fmaxf(mx, lse[sp * kRows]);
    const float m_use = mx == -INFINITY ? 0.0f : mx;
    float den = 0.0f, num = 0.0f;
    for (int sp = 0; sp < a.splits; ++sp) {
        const float f = exp2f(lse[sp * kRows] - m_use);
        den += f;
        num += f * po[std::int64_t(sp) * kRows * kD];
    }
    a.attn[bh * kD + threadIdx.x] = f32_to_bf16(num / den);
}

std::size_t smem_bytes(Kernel k) { return k == Kernel::Pipelined ? std::max(kRingBytes, kMergeBytes) : kMergeBytes; }

// The kernel for `k`, with its shared memory allowed (once) and its occupancy measured (once).
struct KernelInfo {
    void (*fn)(Args) = nullptr;
    std::size_t smem = 0;
    int blocks_per_sm = 1;
};
const KernelInfo& kernel_info(Kernel k) {
    auto make = [](Kernel k) {
        KernelInfo ki;
        ki.fn = k == Kernel::Pipelined ? attend_kernel<true> : attend_kernel<false>;
        ki.smem = smem_bytes(k);
        MOE_CUDA_CHECK(cudaFuncSetAttribute(ki.fn, cudaFuncAttributeMaxDynamicSharedMemorySize, int(ki.smem)));
        int v = 0;
        MOE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&v, ki.fn, kThreads, ki.smem));
        ki.blocks_per_sm = std::max(v, 1);
        return ki;
    };
    if (k == Kernel::Pipelined) {
        static const KernelInfo pipelined = make(Kernel::Pipelined);
        return pipelined;
    }
    static const KernelInfo registers = make(Kernel::Registers);
    return registers;
}
int blocks_per_sm() { return kernel_info(kernel()).blocks_per_sm; }

// sm_count <= 0: every SM of the current device.
int resolve_sms(int sm_count) {
    if (sm_count > 0) return sm_count;
    int dev = 0;
    MOE_CUDA_CHECK(cudaGetDevice(&dev));
    MOE_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, dev));
    return sm_count;
}

struct Layout {
    bf16_t* qkv = nullptr;
    bf16_t* attn = nullptr;
    float* part_o = nullptr;
    float* part_lse = nullptr;
};

// One carving for both the size query (base null) and the launch.
Layout carve(const Spec& s, const Plan& pl, bool projections, void* base, std::size_t bytes, std::size_t* used) {
    Layout l;
    moe::gpu::Carver c(base, bytes);
    if (projections) {
        l.qkv = c.take<bf16_t>(std::size_t(s.batch * qkv_cols(s)));
        l.attn = c.take<bf16_t>(std::size_t(s.batch) * s.q_heads * kD);
    }
    if (pl.splits > 1) {
        l.part_o = c.take<float>(std::size_t(pl.ctas) * kRows * kD);
        l.part_lse = c.take<float>(std::size_t(pl.ctas) * kRows);
    }
    *used = c.used();
    return l;
}

// Row-major C[n, m] = A[n, K]·B[m, K]^T is column-major C^T[m, n] = op_T(B)·A^T; bf16 in and out, fp32 compute.
void gemm_nt(cublasHandle_t h, const bf16_t* a, std::int64_t n, const bf16_t* b, std::int64_t m, std::int64_t kdim,
             bf16_t* c) {
    const float one = 1.0f, zero = 0.0f;
    MOE_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(m), int(n), int(kdim), &one, b, CUDA_R_16BF,
                                  int(kdim), a, CUDA_R_16BF, int(kdim), &zero, c, CUDA_R_16BF, int(m),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void require_aligned(const void* p, const char* what) {
    MOE_ASSERT((reinterpret_cast<std::uintptr_t>(p) & 15) == 0,
               "attention: " << what << " must be 16-byte aligned for the kernel's vector loads");
}

void launch_attend(const Spec& s, const Plan& pl, const bf16_t* qkv, const bf16_t* k, const bf16_t* v, bf16_t* attn,
                   const Layout& l, cudaStream_t st) {
    Args a{};
    a.qkv = qkv, a.k = k, a.v = v, a.attn = attn, a.part_o = l.part_o, a.part_lse = l.part_lse;
    a.cols = qkv_cols(s);
    a.context = s.context, a.q_heads = s.q_heads, a.kv_groups = s.kv_groups;
    a.per_group = s.q_heads / s.kv_groups, a.head_tiles = pl.head_tiles, a.splits = pl.splits, a.chunk = pl.chunk;
    a.scale_log2 = static_cast<float>(1.4426950408889634 / std::sqrt(double(kD)));
    MOE_ASSERT(pl.ctas < (std::int64_t(1) << 31), "attention: " << pl.ctas << " CTAs is more than a grid holds");
    const KernelInfo& ki = kernel_info(kernel());
    ki.fn<<<static_cast<unsigned>(pl.ctas), kThreads, ki.smem, st>>>(a);
    MOE_CUDA_LAUNCH_CHECK("attend_kernel");
    if (pl.splits > 1) {
        combine_kernel<<<static_cast<unsigned>(s.batch * s.q_heads), kD, 0, st>>>(a);
        MOE_CUDA_LAUNCH_CHECK("combine_kernel");
    }
}

}  // namespace

void make_weights(std::uint64_t seed, int layer, const Spec& s, bf16_t* wqkv, bf16_t* wo, Stream st) {
    validate(s);
    if (layer < 0 || layer >= kMaxLayers)
        MOE_BAD_INPUT("attention: layer " << layer << " is out of range; allowed: 0 .. " << kMaxLayers - 1);
    moe::gpu::make_bf16(seed, kStreamWeights + 2 * std::uint64_t(layer), qkv_cols(s) * s.hidden, wqkv_scale(s), wqkv,
                        st);
    moe::gpu::make_bf16(seed, kStreamWeights + 2 * std::uint64_t(layer) + 1, std::int64_t(s.hidden) * s.q_heads * kD,
                        wo_scale(s), wo, st);
}

void make_kv(std::uint64_t seed, const Spec& s, bf16_t* k, bf16_t* v, Stream st) {
    validate(s);
    moe::gpu::make_bf16(seed, kStreamK, kv_elems(s), kv_scale(), k, st);
    moe::gpu::make_bf16(seed, kStreamV, kv_elems(s), kv_scale(), v, st);
}

Plan plan(const Spec& s, int sm_count) {
    validate(s);
    sm_count = resolve_sms(sm_count);
    Plan pl;
    pl.head_tiles = (s.q_heads / s.kv_groups + kRows - 1) / kRows;
    const std::int64_t units = s.batch * s.kv_groups * pl.head_tiles;
    const std::int64_t slots = std::int64_t(sm_count) * blocks_per_sm();
    const int steps = (s.context + kCtaStep - 1) / kCtaStep;  // CTA-sized position steps
    // Flash-decoding's choice: the fewest splits whose last wave is nearly as full as the best possible.
    auto chunk_steps = [&](int n) { return (steps + n - 1) / n; };
    auto efficiency = [&](int n) {
        const int used = (steps + chunk_steps(n) - 1) / chunk_steps(n);
        const double waves = double(units) * used / double(slots);
        return waves / std::ceil(waves);
    };
    const int max_splits = std::min(steps, kMaxSplits);
    double best = 0.0;
    for (int n = 1; n <= max_splits; ++n) best = std::max(best, efficiency(n));
    int n = 1;
    while (n < max_splits && efficiency(n) < 0.85 * best) ++n;
    pl.chunk = chunk_steps(n) * kCtaStep;
    pl.splits = (s.context + pl.chunk - 1) / pl.chunk;  // every split non-empty
    pl.ctas = units * pl.splits;
    return pl;
}

namespace {
// The most CTAs that write partials for any batch in 1 .. s.batch (the rest of the spec fixed), so that a workspace
// sized for a pipeline's largest micro-batch also serves its smaller ones. Only batches with fewer than ~8 waves of
// units can split (with 8 or more waves one split is >= 85% efficient), which bounds the search.
std::int64_t max_partial_ctas(const Spec& s, int sm_count) {
    const Plan full = plan(s, sm_count);
    std::int64_t most = full.splits > 1 ? full.ctas : 0;
    const std::int64_t per_seq = std::int64_t(s.kv_groups) * full.head_tiles;
    const std::int64_t slots = std::int64_t(resolve_sms(sm_count)) * blocks_per_sm();
    const std::int64_t last = std::min<std::int64_t>(s.batch - 1, 9 * slots / per_seq + 1);
    Spec b = s;
    for (b.batch = 1; b.batch <= last; ++b.batch) {
        const Plan pl = plan(b, sm_count);
        if (pl.splits > 1) most = std::max(most, pl.ctas);
    }
    return most;
}

std::size_t bytes_for(const Spec& s, int sm_count, bool projections) {
    Plan pl = plan(s, sm_count);
    pl.ctas = max_partial_ctas(s, sm_count);
    pl.splits = pl.ctas > 0 ? 2 : 1;  // carve() only asks whether there are partials, and how many CTAs write them
    std::size_t used = 0;
    carve(s, pl, projections, nullptr, 0, &used);
    return used;
}
}  // namespace

std::size_t workspace_bytes(const Spec& s, int sm_count) { return bytes_for(s, sm_count, true); }
std::size_t attend_workspace_bytes(const Spec& s, int sm_count) { return bytes_for(s, sm_count, false); }

void attend(const Spec& s, const bf16_t* qkv, const bf16_t* k, const bf16_t* v, bf16_t* attn, void* ws,
            std::size_t ws_bytes, int sm_count, Stream st) {
    const Plan pl = plan(s, sm_count);
    std::size_t need = 0;
    carve(s, pl, false, nullptr, 0, &need);
    MOE_ASSERT(need == 0 || (ws && ws_bytes >= need),
               "attention: the workspace holds " << ws_bytes << " bytes, " << need << " needed");
    require_aligned(qkv, "qkv");
    if (s.context > 1) require_aligned(k, "the k cache"), require_aligned(v, "the v cache");
    std::size_t used = 0;
    const Layout l = carve(s, pl, false, ws, ws_bytes, &used);
    launch_attend(s, pl, qkv, k, v, attn, l, moe::gpu::to_cuda(st));
}

void decode(const Spec& s, const bf16_t* x, const bf16_t* wqkv, const bf16_t* wo, const bf16_t* k, const bf16_t* v,
            bf16_t* out, void* ws, std::size_t ws_bytes, int sm_count, Stream st) {
    const Plan pl = plan(s, sm_count);
    std::size_t need = 0;
    carve(s, pl, true, nullptr, 0, &need);
    MOE_ASSERT(ws && ws_bytes >= need,
               "attention: the workspace holds " << ws_bytes << " bytes, " << need << " needed");
    if (s.context > 1) require_aligned(k, "the k cache"), require_aligned(v, "the v cache");
    std::size_t used = 0;
    const Layout l = carve(s, pl, true, ws, ws_bytes, &used);
    const cudaStream_t cs = moe::gpu::to_cuda(st);
    cublasHandle_t h = moe::gpu::blas_on(cs);
    gemm_nt(h, x, s.batch, wqkv, qkv_cols(s), s.hidden, l.qkv);
    launch_attend(s, pl, l.qkv, k, v, l.attn, l, cs);
    gemm_nt(h, l.attn, s.batch, wo, s.hidden, std::int64_t(s.q_heads) * kD, out);
}

}  // namespace moe::attention::gpu
