// The decode expert FFN (experts_decode.cuh): two persistent launches, gate/up with the SiLU gate in the epilogue,
// then down. A warp owns 16 weight rows (gate/up: 8 gate rows and the matching 8 up rows; down: 16 rows of w2) and
// one chunk of an expert's tokens; each thread streams 16-byte pieces of its two weight rows, and the k order inside
// each 32-wide step is permuted the same way for weights and tokens, so the loads feed mma.sync without shuffles.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/common/bf16.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/experts_common.cuh"
#include "kernels/cuda/experts_decode.cuh"
#include "kernels/cuda/item_trace.cuh"
#include "kernels/cuda/launchers.hpp"

namespace moe::gpu {

namespace {

using namespace experts_detail;

constexpr int kThreads = 128;  // 4 warps per block; each warp takes its own items
constexpr int kWarps = kThreads / 32;

// Weights are read once per chunk: stream them past L1. Token rows are re-read by the neighbouring warps (same
// expert, next rows of the weights): those go through L1.
// kPf: also ask L2 to fetch the whole 256-byte block on a miss (a warp reads 64 bytes of each of its rows per load
// and the rest of the block in the next loads: one DRAM burst instead of four).
template <int kPf = 0>
__device__ __forceinline__ uint4 ld_stream(const bf16_t* p) {
    uint4 v;
    if constexpr (kPf)
        asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
            : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
            : "l"(p));
    else
        asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
            : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
            : "l"(p));
    return v;
}
__device__ __forceinline__ uint4 ld_cached(const bf16_t* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }

// Eight elements row[k, k + 8) with zeros past K. kVec: K % 8 == 0 and rows 16-byte aligned, so a piece is all in or
// all out; otherwise element by element (odd shapes).
template <bool kVec>
__device__ __forceinline__ uint4 ld_part(const bf16_t* row, int k, int K) {
    if constexpr (kVec) {
        return k + 8 <= K ? ld_cached(row + k) : make_uint4(0, 0, 0, 0);
    } else {
        unsigned w[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const unsigned lo = k + 2 * i < K ? row[k + 2 * i] : 0u;
            const unsigned hi = k + 2 * i + 1 < K ? row[k + 2 * i + 1] : 0u;
            w[i] = lo | (hi << 16);
        }
        return make_uint4(w[0], w[1], w[2], w[3]);
    }
}

__device__ __forceinline__ void mma_bf16(float (&c)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0,
                                         unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// One 32-wide k step as two m16n8k16 products. Thread (g = lane/4, t = lane%4) holds physical k [8t, 8t + 8) of
// weight rows g (lo) and g + 8 (hi) and of token g (x). Logical k {2t, 2t+1, 2t+8, 2t+9} of the first product are
// physical {8t, 8t+1, 8t+2, 8t+3}, of the second {8t+4, ..., 8t+7}: the same map on both sides, so the sum over k
// is unchanged. Accumulators: c0, c1 = (row g, tokens 2t, 2t+1), c2, c3 = (row g + 8, tokens 2t, 2t+1).
__device__ __forceinline__ void mma_step(float (&c)[4], const uint4& lo, const uint4& hi, const uint4& x) {
    mma_bf16(c, lo.x, hi.x, lo.y, hi.y, x.x, x.y);
    mma_bf16(c, lo.z, hi.z, lo.w, hi.w, x.z, x.w);
}

// acc[j] += (rows lo/hi of the weights)·(token rows b[j])^T over k in [kb, ke) (kb a multiple of 32; ke too, or
// K), for token tiles j < live; K bounds the loads.
// kFlavor (weights' loads): bit 0 the L2 256-byte prefetch, bit 1 twice as many 32-wide steps in flight. Measured
// on the H200 (kernels/bench/RESULTS.md): the prefetch took S1 at 1 token per expert from 69% to 89% of the weight
// roofline; the deeper unroll helps 8-token chunks (S3: 74% → 95%) and not 16-token ones, so flavor 3 runs the
// 8-token chunks and flavor 1 the rest. Flavors 0 and 2 (no prefetch) and a shared-memory cp.async ring were slower
// at every size and are gone.
template <int kNT, bool kVec, int kFlavor>
__device__ __forceinline__ void warp_rows_by_tokens(const bf16_t* a_lo, const bf16_t* a_hi,
                                                    const bf16_t* const (&b)[kNT], int live, int kb, int ke, int K,
                                                    float (&acc)[kNT][4]) {
    // 32-wide steps whose loads are all issued before the first product
    constexpr int kU = (kNT <= 2 ? 4 : 2) * (kFlavor & 2 ? 2 : 1);
    constexpr int kPf = kFlavor & 1;
    const int t8 = (threadIdx.x & 3) * 8;
    int k0 = kb;
    if constexpr (kVec) {
        for (; k0 + 32 * kU <= ke; k0 += 32 * kU) {
            uint4 lo[kU], hi[kU], xv[kU][kNT];
#pragma unroll
            for (int u = 0; u < kU; ++u) {
                lo[u] = ld_stream<kPf>(a_lo + k0 + 32 * u + t8);
                hi[u] = ld_stream<kPf>(a_hi + k0 + 32 * u + t8);
            }
#pragma unroll
            for (int u = 0; u < kU; ++u)
#pragma unroll
                for (int j = 0; j < kNT; ++j)
                    xv[u][j] = j < live ? ld_cached(b[j] + k0 + 32 * u + t8) : make_uint4(0, 0, 0, 0);
#pragma unroll
            for (int u = 0; u < kU; ++u)
#pragma unroll
                for (int j = 0; j < kNT; ++j)
                    if (j < live) mma_step(acc[j], lo[u], hi[u], xv[u][j]);
        }
        for (; k0 + 32 <= ke; k0 += 32) {
            const uint4 lo = ld_stream<kPf>(a_lo + k0 + t8), hi = ld_stream<kPf>(a_hi + k0 + t8);
#pragma unroll
            for (int j = 0; j < kNT; ++j)
                if (j < live) mma_step(acc[j], lo, hi, ld_cached(b[j] + k0 + t8));
        }
    }
    for (; k0 < ke; k0 += 32) {  // the last partial step (vector path), or every step of an odd shape
        const uint4 lo = ld_part<kVec>(a_lo, k0 + t8, K), hi = ld_part<kVec>(a_hi, k0 + t8, K);
#pragma unroll
        for (int j = 0; j < kNT; ++j)
            if (j < live) mma_step(acc[j], lo, hi, ld_part<kVec>(b[j], k0 + t8, K));
    }
}

// A traced kernel's blocks an SM: as many as the untraced one gets (ptxas, sm_90), so that the timeline is the same
// schedule's (the stamps' code would otherwise take registers and blocks).
constexpr int traced_min_blocks(int nt, bool traced) {
    return !traced ? 0 : nt == 1 ? 7 : nt == 2 ? 5 : nt == 4 ? 4 : 2;
}

// Sums the accumulators of the `split` warps of each group into the group's first warp (part 0); red holds
// kWarps·kNT·4·32 floats. Contains block-wide barriers: every thread of the block calls it, with the same split.
template <int kNT>
__device__ __forceinline__ void group_reduce(float (&acc)[kNT][4], float* red, int split) {
    if (split == 1) return;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, part = warp % split;
    constexpr int kPerWarp = kNT * 4 * 32;
    if (part != 0) {
#pragma unroll
        for (int jj = 0; jj < kNT; ++jj)
#pragma unroll
            for (int c = 0; c < 4; ++c) red[warp * kPerWarp + (jj * 4 + c) * 32 + lane] = acc[jj][c];
    }
    __syncthreads();
    if (part == 0) {
        for (int q = 1; q < split; ++q) {
#pragma unroll
            for (int jj = 0; jj < kNT; ++jj)
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[jj][c] += red[(warp + q) * kPerWarp + (jj * 4 + c) * 32 + lane];
        }
    }
    __syncthreads();  // red is free for the next item
}

// The shared-memory layout of both kernels: the chunk prefix table, then the reduction buffer (16-byte aligned).
__host__ __device__ constexpr int decode_red_offset(int experts) { return ((experts + 1) * 4 + 15) / 16 * 16; }
template <int kNT>
__host__ __device__ constexpr int decode_smem_bytes(int experts) {
    return decode_red_offset(experts) + kWarps * kNT * 4 * 32 * 4;
}

// Items: (chunk of an expert's tokens, 8 columns of h), chunk-major. The block's warps form kWarps / split groups;
// the `split` warps of a group share one item, each streaming its own slice of d, and are summed before the
// SiLU gate (which is not linear) by the group's first warp.
// kTrace (MOELAB_TRACE_ITEMS, item_trace.cuh; a separate instantiation, so that the kernels timed are the ones that
// run untraced): each item's timeline in `trace`, written by its group's first lane.
// Both kernels write the item's start as `take` (the kernel's start for a group's first item), the start of its
// loads as `ready` and `first` (the down kernel's first items: after the wait for the gate/up grid), the end of its
// products and reduction as `mma`, and the end of its stores as `end`.
template <int kNT, bool kVec, int kFlavor, bool kTrace>
__global__ void __launch_bounds__(kThreads, traced_min_blocks(kNT, kTrace))
    decode_gate_up_kernel(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                          const std::int32_t* offsets, int experts, int hidden, int ffn, const bf16_t* w1, bf16_t* h,
                          int split, std::uint64_t* trace) {
    __shared__ std::uint64_t t_start;  // kTrace: when this block started (a group's first item was taken then)
    if (kTrace && threadIdx.x == 0) t_start = global_ns();
    extern __shared__ __align__(16) unsigned char smem_raw[];
    int* pre = reinterpret_cast<int*>(smem_raw);  // [experts + 1]
    // The down kernel may be scheduled on SMs this grid frees; it waits for this grid's completion before reading h.
    launch_dependents();
    float* red = reinterpret_cast<float*>(smem_raw + decode_red_offset(experts));
    __shared__ int warp_sums[32];
    constexpr int kChunk = 8 * kNT;
    const int chunks = chunk_prefix(counts, experts, kChunk, pre, warp_sums);
    const int tiles = (ffn + 7) / 8;
    const std::int64_t items = std::int64_t(chunks) * tiles;
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, warp = threadIdx.x >> 5;
    const int groups = kWarps / split, grp = warp / split, part = warp % split;
    const int per = ((hidden + 31) / 32 + split - 1) / split * 32;  // k per warp of a group
    const int kb = min(hidden, part * per), ke = min(hidden, kb + per);
    for (std::int64_t base = std::int64_t(blockIdx.x) * groups; base < items;
         base += std::int64_t(gridDim.x) * groups) {
        const std::int64_t it = base + grp;
        const bool have = it < items;
        float acc[kNT][4] = {};
        int ntok = 0, f = 0;
        std::int64_t r0 = 0;
        if (have) {
            const int j = static_cast<int>(it / tiles), tile = static_cast<int>(it % tiles);
            const int e = expert_of_chunk(pre, experts, j);
            const int tok0 = (j - pre[e]) * kChunk;
            ntok = min(kChunk, counts[e] - tok0);
            r0 = std::int64_t(offsets[e]) + tok0;
            f = tile * 8 + g;
            if (kTrace && part == 0 && lane == 0)
                trace_begin(trace + it * kTraceWords, base == std::int64_t(blockIdx.x) * groups ? t_start : 0);
            const bf16_t* a_lo = w1 + (std::int64_t(e) * 2 * ffn + min(f, ffn - 1)) * hidden;  // gate row f
            const bf16_t* a_hi = a_lo + std::int64_t(ffn) * hidden;                            // up row f
            const bf16_t* b[kNT];
#pragma unroll
            for (int jj = 0; jj < kNT; ++jj) {
                const int m = jj * 8 + g < ntok ? jj * 8 + g : 0;  // past the chunk: any valid row, never stored
                const std::int64_t r = r0 + m;
                b[jj] = xp ? xp + r * hidden : x + std::int64_t(row_token[r]) * hidden;
            }
            warp_rows_by_tokens<kNT, kVec, kFlavor>(a_lo, a_hi, b, (ntok + 7) / 8, kb, ke, hidden, acc);
        }
        group_reduce<kNT>(acc, red, split);
        if (kTrace && have && part == 0 && lane == 0) trace_mark(trace + it * kTraceWords, kTraceMma);
        if (have && part == 0 && f < ffn) {
#pragma unroll
            for (int jj = 0; jj < kNT; ++jj)
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    const int m = jj * 8 + 2 * t + c;
                    if (m < ntok) h[(r0 + m) * ffn + f] = silu_gate(acc[jj][c], acc[jj][2 + c]);
                }
        }
        if (kTrace && have && part == 0 && lane == 0)
            trace_end(trace + it * kTraceWords, 1, expert_of_chunk(pre, experts, static_cast<int>(it / tiles)));
    }
}

// Items: (chunk of an expert's tokens, 16 columns of y); groups of `split` warps share an item over slices of F.
template <int kNT, bool kVec, int kFlavor, bool kTrace>
__global__ void __launch_bounds__(kThreads, traced_min_blocks(kNT, kTrace))
    decode_down_kernel(const bf16_t* h, const std::int32_t* counts, const std::int32_t* offsets, int experts,
                       int hidden, int ffn, const bf16_t* w2, bf16_t* y, int split, std::uint64_t* trace) {
    __shared__ std::uint64_t t_start;  // kTrace: when this block started (a group's first item was taken then)
    if (kTrace && threadIdx.x == 0) t_start = global_ns();
    extern __shared__ __align__(16) unsigned char smem_raw[];
    int* pre = reinterpret_cast<int*>(smem_raw);
    float* red = reinterpret_cast<float*>(smem_raw + decode_red_offset(experts));
    __shared__ int warp_sums[32];
    constexpr int kChunk = 8 * kNT;
    const int chunks = chunk_prefix(counts, experts, kChunk, pre, warp_sums);
    // Padding rows of y are zeros (align > 1): block b clears those of experts b, b + grid, ... GEMM 1 never
    // touches y, so this runs before waiting for it.
    zero_padding_rows(counts, offsets, experts, hidden, y);
    const int tiles = (hidden + 15) / 16;
    const std::int64_t items = std::int64_t(chunks) * tiles;
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, warp = threadIdx.x >> 5;
    const int groups = kWarps / split, grp = warp / split, part = warp % split;
    const int per = ((ffn + 31) / 32 + split - 1) / split * 32;
    const int kb = min(ffn, part * per), ke = min(ffn, kb + per);
    // Launched programmatically after the gate/up kernel (see launch_decode): everything above overlapped its
    // tail; h is read only after it has completed and its writes are visible.
    wait_for_producer();
    for (std::int64_t base = std::int64_t(blockIdx.x) * groups; base < items;
         base += std::int64_t(gridDim.x) * groups) {
        const std::int64_t it = base + grp;
        const bool have = it < items;
        float acc[kNT][4] = {};
        int ntok = 0, o_lo = 0;
        std::int64_t r0 = 0;
        if (have) {
            const int j = static_cast<int>(it / tiles), tile = static_cast<int>(it % tiles);
            const int e = expert_of_chunk(pre, experts, j);
            const int tok0 = (j - pre[e]) * kChunk;
            ntok = min(kChunk, counts[e] - tok0);
            r0 = std::int64_t(offsets[e]) + tok0;
            o_lo = tile * 16 + g;
            if (kTrace && part == 0 && lane == 0)
                trace_begin(trace + it * kTraceWords, base == std::int64_t(blockIdx.x) * groups ? t_start : 0);
            const bf16_t* we = w2 + std::int64_t(e) * hidden * ffn;
            const bf16_t* a_lo = we + std::int64_t(min(o_lo, hidden - 1)) * ffn;
            const bf16_t* a_hi = we + std::int64_t(min(o_lo + 8, hidden - 1)) * ffn;
            const bf16_t* b[kNT];
#pragma unroll
            for (int jj = 0; jj < kNT; ++jj) {
                const int m = jj * 8 + g < ntok ? jj * 8 + g : 0;
                b[jj] = h + (r0 + m) * ffn;
            }
            warp_rows_by_tokens<kNT, kVec, kFlavor>(a_lo, a_hi, b, (ntok + 7) / 8, kb, ke, ffn, acc);
        }
        group_reduce<kNT>(acc, red, split);
        if (kTrace && have && part == 0 && lane == 0) trace_mark(trace + it * kTraceWords, kTraceMma);
        if (have && part == 0) {
            const int o_hi = o_lo + 8;
#pragma unroll
            for (int jj = 0; jj < kNT; ++jj)
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    const int m = jj * 8 + 2 * t + c;
                    if (m >= ntok) continue;
                    bf16_t* out = y + (r0 + m) * hidden;
                    if (o_lo < hidden) out[o_lo] = f32_to_bf16(acc[jj][c]);
                    if (o_hi < hidden) out[o_hi] = f32_to_bf16(acc[jj][2 + c]);
                }
        }
        if (kTrace && have && part == 0 && lane == 0)  // (trace: past the gate/up items' rows)
            trace_end(trace + it * kTraceWords, 0, expert_of_chunk(pre, experts, static_cast<int>(it / tiles)));
    }
}

// How many warps share one item. Items are equal, so the last round of a static schedule runs part-empty: the
// smallest split that gives each resident warp about 16 items keeps that tail near 1/16, as long as a warp keeps
// at least 256 of K (its loads' start-up is paid per item). MOELAB_DECODE_SPLIT=1|2|4 forces it for both kernels
// (tests), MOELAB_DECODE_SPLIT_DOWN=1|2|4 for the down kernel (`down`) alone.
int choose_split(std::int64_t est_items, std::int64_t resident_warps, int K, std::int64_t one_round_items, bool down) {
    if (const int v = down ? env_choice("MOELAB_DECODE_SPLIT_DOWN", {1, 2, 4}, 0) : 0) return v;
    if (const int v = env_choice("MOELAB_DECODE_SPLIT", {1, 2, 4}, 0)) return v;
    // Gate/up with K = d <= 2048 whose items all fit in one round of the resident warps (one_round_items: the items
    // expected from the experts uniform routing would give tokens): no split. Measured on the H200 (RESULTS.md,
    // twelfth session, item traces): at the classroom shape's 1 token per expert, 4 warps an item ran the 3,168 items
    // of 32 KB in 3.4 rounds of one 8 µs batch each, and the last round, 43% full, left DRAM idle for 4 µs; one warp
    // an item runs them in one round of whole items, the phase ends 4 µs sooner and the call 3% sooner (48.4-48.8
    // against 49.8-50.4 µs). At 2 tokens per expert (1.3 rounds) it was 2% slower, so only where one round holds all.
    if (!down && K <= 2048 && one_round_items <= resident_warps) return 1;
    int s = 1;
    while (s < 4 && est_items * s < 16 * resident_warps && K >= 256 * (2 * s)) s *= 2;
    return s;
}

template <int kNT, bool kVec, int kFlavor, bool kTrace>
void launch_decode_traced(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                          const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn,
                          const bf16_t* w1, const bf16_t* w2, bf16_t* h, bf16_t* y, cudaStream_t st) {
    const int smem = decode_smem_bytes<kNT>(experts);
    // Chunks: at most one per row, and at most rows / chunk + one partial chunk per expert.
    const std::int64_t est_chunks = std::min<std::int64_t>(max_rows, max_rows / (8 * kNT) + experts);
    auto k1 = decode_gate_up_kernel<kNT, kVec, kFlavor, kTrace>;
    auto k2 = decode_down_kernel<kNT, kVec, kFlavor, kTrace>;
    static_assert(decode_smem_bytes<8>(6144) <= 48 * 1024, "the default dynamic shared memory limit suffices");
    const std::int64_t est_gated = est_chunks * ((ffn + 7) / 8), est_down = est_chunks * ((hidden + 15) / 16);
    // MOELAB_TRACE_ITEMS: the gate/up items' rows, then the down items'
    const char* trace = kTrace ? item_trace_path(st) : nullptr;
    std::uint64_t* tbuf = trace ? item_trace_buffer(est_gated + est_down, st) : nullptr;
    int split[2];
    {
        const std::int64_t resident = std::int64_t(persistent_blocks(k1, kThreads, smem, 1LL << 40)) * kWarps;
        // The chunks if routing were uniform: about E·(1 - e^(-rows/E)) experts hold tokens (one chunk each at
        // these sizes), and never fewer chunks than rows / kChunk.
        const double e_busy = experts * (1.0 - std::exp(-double(max_rows) / std::max(experts, 1)));
        const std::int64_t one_round = std::llround(std::max(e_busy, double(max_rows) / (8 * kNT))) * ((ffn + 7) / 8);
        split[0] = choose_split(est_gated, resident, hidden, std::min(one_round, est_gated), false);
        const unsigned grid = persistent_blocks(k1, kThreads, smem, (est_gated * split[0] + kWarps - 1) / kWarps);
        k1<<<grid, kThreads, smem, st>>>(xp, x, row_token, counts, offsets, experts, hidden, ffn, w1, h, split[0],
                                         tbuf);
        MOE_CUDA_LAUNCH_CHECK("decode_gate_up_kernel");
    }
    {
        const std::int64_t resident = std::int64_t(persistent_blocks(k2, kThreads, smem, 1LL << 40)) * kWarps;
        split[1] = choose_split(est_down, resident, ffn, est_down, true);
        const unsigned grid = persistent_blocks(k2, kThreads, smem, (est_down * split[1] + kWarps - 1) / kWarps);
        // Programmatic dependent launch: the down kernel's prologue (its plan table, the padding rows) overlaps the
        // gate/up kernel's tail instead of waiting for it to drain; griddepcontrol.wait guards the reads of h.
        std::uint64_t* tdown = tbuf ? tbuf + est_gated * kTraceWords : nullptr;
        launch_after_producer(k2, grid, kThreads, smem, st, h, counts, offsets, experts, hidden, ffn, w2, y, split[1],
                              tdown);
        MOE_CUDA_LAUNCH_CHECK("decode_down_kernel");
    }
    if (trace)
        write_item_trace(trace, tbuf, est_gated + est_down,
                         "decode experts=" + std::to_string(experts) + " hidden=" + std::to_string(hidden) +
                             " ffn=" + std::to_string(ffn) + " bm=" + std::to_string(8 * kNT) +
                             " bn=16 flavor=" + std::to_string(kFlavor) + " split=" + std::to_string(split[0]) +
                             " split_down=" + std::to_string(split[1]),
                         st);
}

template <int kNT, bool kVec, int kFlavor>
void launch_decode(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                   const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn,
                   const bf16_t* w1, const bf16_t* w2, bf16_t* h, bf16_t* y, cudaStream_t st) {
    if (item_trace_path(st))
        launch_decode_traced<kNT, kVec, kFlavor, true>(xp, x, row_token, counts, offsets, max_rows, experts, hidden,
                                                       ffn, w1, w2, h, y, st);
    else
        launch_decode_traced<kNT, kVec, kFlavor, false>(xp, x, row_token, counts, offsets, max_rows, experts, hidden,
                                                        ffn, w1, w2, h, y, st);
}

template <bool kVec, int kFlavor>
void launch_decode_nt(int chunk_tokens, const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token,
                      const std::int32_t* counts, const std::int32_t* offsets, std::int64_t max_rows, int experts,
                      int hidden, int ffn, const bf16_t* w1, const bf16_t* w2, bf16_t* h, bf16_t* y, cudaStream_t st) {
    switch (chunk_tokens) {
        case 8:
            return launch_decode<1, kVec, kFlavor>(xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn,
                                                   w1, w2, h, y, st);
        case 16:
            return launch_decode<2, kVec, kFlavor>(xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn,
                                                   w1, w2, h, y, st);
        case 32:
            return launch_decode<4, kVec, kFlavor>(xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn,
                                                   w1, w2, h, y, st);
        default:
            return launch_decode<8, kVec, kFlavor>(xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn,
                                                   w1, w2, h, y, st);
    }
}

// The read ceiling's loop: n 16-byte pieces, piece i at at(i), four loads in flight a thread, grid-stride. The
// pieces are folded into one word that is stored only if it matches a constant, which keeps the loads.
template <class At>
__device__ __forceinline__ void read_pieces(At at, std::int64_t n, unsigned* sink) {
    unsigned acc = 0;
    const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
    std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n; i += 4 * stride) {
        uint4 v[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) v[u] = ld_stream(at(i + u * stride));
#pragma unroll
        for (int u = 0; u < 4; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
    for (; i < n; i += stride) {
        const uint4 v = ld_stream(at(i));
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x9E3779B9u) *sink = acc;  // practically never taken
}

__global__ void read_kernel(const uint4* src, std::int64_t n, unsigned* sink) {
    read_pieces([&](std::int64_t i) { return reinterpret_cast<const bf16_t*>(src + i); }, n, sink);
}

// read_kernel over n 16-byte pieces of src, then nb of src_b (stream_read). kPhase 0: a read alone; 1: the first of
// two, which lets the second launch at once; 2: the second, whose loads wait until the first has completed.
template <int kPhase>
__global__ void read_two_kernel(const uint4* src, std::int64_t n, const uint4* src_b, std::int64_t nb, unsigned* sink) {
    if constexpr (kPhase == 1) launch_dependents();
    if constexpr (kPhase == 2) wait_for_producer();
    read_pieces([&](std::int64_t i) { return reinterpret_cast<const bf16_t*>(i < n ? src + i : src_b + (i - n)); },
                n + nb, sink);
}

}  // namespace

void stream_read(const void* a, std::size_t a_bytes, const void* b, std::size_t b_bytes, bool two, unsigned* sink,
                 Stream s) {
    cudaStream_t st = static_cast<cudaStream_t>(s);
    const unsigned grid = unsigned(device_sms()) * 8;
    const auto *pa = reinterpret_cast<const uint4*>(a), *pb = reinterpret_cast<const uint4*>(b);
    const std::int64_t na = std::int64_t(a_bytes / 16), nb = std::int64_t(b_bytes / 16);
    if (!two) {
        read_two_kernel<0><<<grid, 256, 0, st>>>(pa, na, pb, nb, sink);
        MOE_CUDA_LAUNCH_CHECK("read_kernel");
        return;
    }
    read_two_kernel<1><<<grid, 256, 0, st>>>(pa, na, pb, std::int64_t(0), sink);
    MOE_CUDA_LAUNCH_CHECK("read_kernel (first)");
    launch_after_producer(read_two_kernel<2>, grid, 256, 0, st, pb, nb, pa, std::int64_t(0), sink);
    MOE_CUDA_LAUNCH_CHECK("read_kernel (second)");
}

int decode_chunk_tokens(double tokens_per_expert) {
    // Headroom over the mean: with random routing the busier experts hold about mean + 2·sqrt(mean) tokens, and a
    // second chunk reads the expert's weights again.
    if (tokens_per_expert <= 4) return 8;
    if (tokens_per_expert <= 10) return 16;
    if (tokens_per_expert <= 22) return 32;
    return 64;
}

void decode_ffn(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn, const bf16_t* w1,
                const bf16_t* w2, bf16_t* h, bf16_t* y, int chunk_tokens, cudaStream_t st) {
    if (max_rows <= 0) return;
    // 16-byte pieces need rows that are a whole number of them (K % 8 == 0 for both GEMMs) and aligned bases
    const bool vec = rows_in_16_byte_pieces(hidden, ffn, xp, x, w1, w2, h);
    // The weights' load flavor (see warp_rows_by_tokens); MOELAB_DECODE_FLAVOR=1|3 overrides the choice (tests, the
    // benchmark's side-by-side rows).
    int flavor = chunk_tokens == 8 ? 3 : 1;
    if (const char* env = std::getenv("MOELAB_DECODE_FLAVOR"); env && (*env == '1' || *env == '3') && !env[1])
        flavor = *env - '0';
#define MOE_DECODE_ARGS \
    chunk_tokens, xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn, w1, w2, h, y, st
    if (!vec) return launch_decode_nt<false, 0>(MOE_DECODE_ARGS);
    if (flavor == 3) return launch_decode_nt<true, 3>(MOE_DECODE_ARGS);
    return launch_decode_nt<true, 1>(MOE_DECODE_ARGS);
#undef MOE_DECODE_ARGS
}

double measure_read_gbps(std::size_t bytes, int repeats) {
    DeviceBuffer<std::uint8_t> a(bytes, "read ceiling source");
    DeviceBuffer<unsigned> sink(1, "read ceiling sink");
    fill_bytes(a.data(), 0x5A, bytes, nullptr);
    int dev = 0, sms = 0;
    MOE_CUDA_CHECK(cudaGetDevice(&dev));
    MOE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const std::int64_t n = std::int64_t(bytes / 16);
    Event e0 = create_event(), e1 = create_event();
    std::vector<double> ms;
    for (int i = 0; i < repeats + 3; ++i) {
        record_event(e0, nullptr);
        read_kernel<<<sms * 8, 256>>>(reinterpret_cast<const uint4*>(a.data()), n, sink.data());
        MOE_CUDA_LAUNCH_CHECK("read_kernel");
        record_event(e1, nullptr);
        const double t = elapsed_ms(e0, e1);
        if (i >= 3) ms.push_back(t);
    }
    destroy_event(e0);
    destroy_event(e1);
    std::sort(ms.begin(), ms.end());
    return double(n) * 16 / (ms[ms.size() / 2] * 1e-3) / 1e9;
}

}  // namespace moe::gpu
