// Pieces of the wgmma expert FFN (experts_wgmma.cu) that are not the kernel's control flow: its tiling (Cfg) and
// arguments (Args), how an item is located and handed from the producer to the consumers and the storer (Slot), and
// how the epilogue converts the accumulators and stages them for the storer (out_pair, stage_round), and a call's
// tensor maps (tile_map, make_maps, host). Device code for sm_90a, included by experts_wgmma.cu only.
//
// Accumulators of wgmma.m64nNk16 (fp32), per thread of the warpgroup: warp w's lane l holds rows 16w + l/4 and
// 16w + l/4 + 8; for each n8 column block j, d[4j + 0, 1] are (row, 8j + 2·(l % 4) + 0, 1) and d[4j + 2, 3] the same
// columns of row + 8 (hopper.cuh).
#pragma once
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/common/bf16.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/experts_common.cuh"
#include "kernels/cuda/experts_order.hpp"
#include "kernels/cuda/hopper.cuh"

namespace moe::gpu::wgmma_parts {

using experts_detail::expert_of_chunk;
using experts_detail::silu_gate;
using order::make_order;
using order::Order;
using order::order_item;
using namespace hopper;

// An item's place: the expert, the weight tile, the token tile and which GEMM.
struct Item {
    int e, nt, mt;
    bool gated;
};

// Within an expert the items run in groups of `group` token tiles (0: all of them): weight tile by weight tile, token
// tile innermost, within a group; with `snake`, every second group takes the weight tiles in the reverse order, so it
// starts on the ones its predecessor read last.
__device__ __forceinline__ Item locate(bool gated, std::int64_t j, const int* pre, int experts, int nt_gated,
                                       int nt_down, int group, bool snake) {
    Item w;
    w.gated = gated;
    const int ntiles = w.gated ? nt_gated : nt_down;
    w.e = expert_of_chunk(pre, experts, j, ntiles);
    const int ntt = pre[w.e + 1] - pre[w.e];
    int local = static_cast<int>(j - std::int64_t(pre[w.e]) * ntiles);
    const int gs = group > 0 && group < ntt ? group : ntt;
    const int g = local / (gs * ntiles), first = g * gs, in = min(gs, ntt - first);
    local -= g * gs * ntiles;
    w.nt = local / in;
    if (snake && (g & 1)) w.nt = ntiles - 1 - w.nt;
    w.mt = first + local % in;
    return w;
}

// An item as the producer located it, handed to the consumers with its first stage and from them to the storer with
// the output tile: no lookup and no global read of the plan on the consumers' path.
struct Slot {
    std::int64_t it;  // the item's number; -1: no more
    int e, nt, mt;
    int ntok;  // its tokens (the tile's rows that are stored)
    int row0;  // its first row in xp, h and y
    int gated;
};

// The producer's next item, located ahead of its first stage: its number, its place, and its expert's tokens and first
// row (their reads in flight until the item is handed over).
struct Next {
    std::int64_t it;
    Item w;
    int cnt, off;
};

// A gate/up item whose token rows are gathered (nopack), as the producer hands it to the gatherer warps: its first
// row in row_token, its tokens and the ring position of its first stage; `end`: no more items.
struct Gather {
    int row0, ntok, c, end;
};
constexpr int kGatherLanes = 64;  // two warps copy gathered token tiles

// The producer's lane 0 hands each gate/up item (and at the end, no more) to the gatherer warps through slot[n % 2],
// once both have read what it held before: bars[q] says slot q is written (count 1), bars[2 + q] that it is read (one
// arrival a gatherer warp).
struct GatherQueue {
    Gather slot[2];
    alignas(8) std::uint64_t bars[4];
    __device__ void init() {
        for (int q = 0; q < 2; ++q)
            mbar_init(smem_addr(bars + q), 1), mbar_init(smem_addr(bars + 2 + q), kGatherLanes / 32);
    }
    __device__ void post(const Gather& g, int& posted) {
        const int q = posted & 1;
        mbar_wait(smem_addr(bars + 2 + q), ((posted >> 1) & 1) ^ 1);
        slot[q] = g;
        mbar_arrive(smem_addr(bars + q));  // a release: the gatherers' wait on it acquires the slot
        ++posted;
    }
};

// Lane 0's read of a Gather, for the whole warp (the only read is by the lane whose arrival frees the slot).
__device__ __forceinline__ Gather warp_broadcast(const Gather& g, int lane) {
    Gather v{};
    if (lane == 0) v = g;
    v.row0 = __shfl_sync(~0u, v.row0, 0), v.ntok = __shfl_sync(~0u, v.ntok, 0);
    v.c = __shfl_sync(~0u, v.c, 0), v.end = __shfl_sync(~0u, v.end, 0);
    return v;
}

// Lane 0's read of a slot, for the whole warp.
__device__ __forceinline__ Slot warp_broadcast(const Slot& s, int lane) {
    Slot v{};
    if (lane == 0) v = s;
    v.it = __shfl_sync(~0u, v.it, 0);
    v.e = __shfl_sync(~0u, v.e, 0), v.nt = __shfl_sync(~0u, v.nt, 0), v.mt = __shfl_sync(~0u, v.mt, 0);
    v.ntok = __shfl_sync(~0u, v.ntok, 0), v.row0 = __shfl_sync(~0u, v.row0, 0), v.gated = __shfl_sync(~0u, v.gated, 0);
    return v;
}

constexpr int kBK = 64;  // k per MMA tile: 128 bytes of every row, one swizzle atom wide
constexpr int kSmemMax = 227 * 1024;
constexpr int kSmemMisc = 3 * 1024;  // alignment slack, static, barriers, the tile prefix (wgmma_staged_fits)

// kStaged: the output tile goes through shared memory and the storer warp writes it out (a TMA store for a full token
// tile, its own stores for a partial one), so the consumers go on with the next item while it is written; otherwise
// the consumers store it from registers. kKS: k steps of 64 a stage holds (2 or 3: each box is kKS k tiles, one after
// the other, so an SM asks TMA for fewer boxes of more bytes; where the tiles are stored from registers; 3 with
// 64-token tiles, whose stages of 72 KB the ring holds three of in 216 KB).
template <int kWG, int kBN, bool kStaged, int kKS = 1>
struct Cfg {
    static constexpr int kBM = 64 * kWG;  // tokens per tile
    // the consumer warpgroups, then one more: the producer warp, the storer warp and two gatherer (or idle) ones. ptxas
    // allots registers by warpgroup (65536 / 384 = 168 a thread for two consumer warpgroups, which leaves the 128
    // accumulators of a 128 × 256 tile 40 others), so with two the kernel moves registers from the producer warpgroup
    // to the consumers (setmaxnreg: 72 and 216; with 40 the producer and the storer spill, and with 56 the producer's
    // gather of x's rows).
    static constexpr int kThreads = 128 * kWG + 128;
    static constexpr int kASub = kBM * kBK * 2, kBSub = kBN * kBK * 2;  // one k tile of tokens, of weights
    static constexpr int kABytes = kKS * kASub;                         // a stage's token tiles, then its weight tiles
    static constexpr int kBBytes = kKS * kBSub;
    static constexpr int kStageBytes = kABytes + kBBytes;
    static constexpr int kStepK = kKS * kBK;  // k a stage covers
    // The output tile (kBM rows × kBN columns for down, half for gate/up) is staged in rounds of 64 columns (one TMA
    // box) through two buffers, so the consumers write a round while the storer writes out the one before: 32 KB for
    // 128-token tiles, and the ring keeps 4 stages for 128 × 256 tiles.
    static constexpr int kBufBytes = kBM * 64 * 2;
    static constexpr int kOutBytes = kStaged ? 2 * kBufBytes : 0;
    static constexpr int kFit =
        (kStaged ? kSmemMax - kSmemMisc - kOutBytes : (kKS == 3 ? 216 : 200) * 1024) / kStageBytes;
    static constexpr int kStages = kFit > 8 ? 8 : kFit;
    static constexpr int kAcc = kBN / 2;  // accumulators per consumer thread
    static_assert(kStages >= 3, "the ring needs three stages");
};

// The tiles of stage step kt from `row` on: a box of one k tile, or (kKS = 2, 3; k_pair_map) of kKS, one after another.
template <int kKS>
__device__ __forceinline__ void load_k_tiles(unsigned dst, const CUtensorMap* m, unsigned bar, int kt, int row) {
    if constexpr (kKS == 1)
        tma_load_2d(dst, m, bar, kt * kBK, row);
    else
        tma_load_3d(dst, m, bar, 0, row, kt * kKS);
}

template <int kWG, int kBN, bool kStaged, int kKS>
int smem_bytes(int experts) {
    using C = Cfg<kWG, kBN, kStaged, kKS>;
    // 1024 for aligning the stages, the stages, the two output buffers, 2 barriers per stage and 2 per output buffer,
    // the tile prefix
    return 1024 + C::kStages * C::kStageBytes + C::kOutBytes + (2 * C::kStages + 4) * 8 + (experts + 1) * 4;
}

template <int kN>
__device__ __forceinline__ void wgmma_step(float (&d)[kN / 2], std::uint64_t a, std::uint64_t b) {
    if constexpr (kN == 128)
        wgmma_m64n128k16(d, a, b);
    else
        wgmma_m64n256k16(d, a, b);
}

// What the kernel runs: both GEMMs (fused), or one of them (a launch each, in stream order).
enum Mode : int { kBoth = 0, kGateUpOnly = 1, kDownOnly = 2 };

struct Args {
    const std::int32_t* counts;
    const std::int32_t* offsets;
    int experts, hidden, ffn, mode;
    bf16_t* h;
    bf16_t* y;
    int* sched;            // [0]: the next item; [1 + e]: expert e's gate/up items done. Zero before the launch.
    int preload;           // a down item whose h is not ready asks for its first stages' weights before it waits
    std::uint64_t* trace;  // MOELAB_TRACE_ITEMS: kTraceWords per item (item_trace.cuh; h ready for down). Null: off.
    int skip_idle;  // a consumer warpgroup with no tokens in its rows skips the MMAs (MOELAB_WGMMA_SKIP=0: it does not)
    int group;      // token tiles an expert's items run in groups of (MOELAB_WGMMA_GROUP; 0: all)
    int early;      // down items among the gate/up ones (Order; MOELAB_WGMMA_EARLY: -1 auto, 0 none, n for tests)
    // Gathered rows (nopack): row_token[r] is the token of packed row r, and the two gatherer warps copy the gate/up
    // token tiles from x with cp.async (gather_rows). Null: packed rows through TMA.
    const bf16_t* x;
    const std::int32_t* row_token;
    int short_box;  // a partial token tile is read in a box of its tokens rounded up to 16 rows (MOELAB_WGMMA_BOX)
    int snake;      // every second group of token tiles takes the weight tiles backwards (locate; MOELAB_WGMMA_SNAKE)
    int ahead;      // the producer takes the next item this many stages before an item's last (MOELAB_WGMMA_AHEAD)
    int own_first;  // a block's first item is its own number, the counter's after it (MOELAB_WGMMA_OWN)
};

// Zeroes the item counters and the per-expert counts (Args::sched) for the launch after it, which starts
// programmatically at once: its launch and prologue overlap this kernel instead of following a memset (the measured
// difference: kernels/bench/RESULTS.md, thirty-second session).
__global__ void reset_sched_kernel(int* sched, int n) {
    experts_detail::launch_dependents();
    for (int i = threadIdx.x; i < n; i += blockDim.x) sched[i] = 0;
}

// Token boxes shorter than the tile, for partial token tiles: x[i] and h[i] hold 16·(i + 1) rows. The rows of the
// stage past the box are left as they were: they feed only output rows past the expert's tokens, which are not stored.
// Fewer bytes from L2 into the SM for the same MMAs (MOELAB_WGMMA_BOX=0: every token tile in a box of the whole tile).
struct ShortBoxes {
    CUtensorMap x[7], h[7];
};

// A gatherer warp g (0 or 1: the last two of the producer warpgroup, gathered rows only): for each gate/up item the
// producer posts, it reads the tokens of its rows into tok (row r + 8j holds token tile row r + 8j, lanes 8r .. 8r + 7
// of the two warps' 64), then for each k step waits for the stage to be free, copies 16-byte piece lane % 8 of its rows
// into the 128-byte swizzle TMA would have written (zeros past the expert's tokens and past K) with cp.async, and
// arrives on the stage's `full` barrier (at bars + 8s; `empty` after them) once its copies land.
template <class C>
__device__ __forceinline__ void gather_rows(const Args& a, GatherQueue& gq, int* tok, unsigned bars, unsigned base,
                                            int g, int lane) {
    const int r = (32 * g + lane) / 8, p = lane % 8;
    for (int n = 0;; ++n) {
        const int q = n & 1;
        mbar_wait(smem_addr(gq.bars + q), (n >> 1) & 1);
        const Gather gi = warp_broadcast(gq.slot[q], lane);  // lane 0 reads the slot, which its arrival frees
        __syncwarp();                                        // every lane is past the previous item's reads of tok
        if (lane == 0) mbar_arrive(smem_addr(gq.bars + 2 + q));
        if (gi.end) return;
        for (int i = lane; i < C::kBM / 2; i += 32) {  // this warp's rows: 4g + i % 4 + 8 (i / 4)
            const int m = 4 * g + i % 4 + 8 * (i / 4);
            tok[i] = m < gi.ntok ? a.row_token[gi.row0 + m] : -1;
        }
        __syncwarp();
        const int K = a.hidden, nk = (K + kBK - 1) / kBK;
        for (int kt = 0; kt < nk; ++kt) {
            const int cc = gi.c + kt, st = cc % C::kStages;
            mbar_wait(bars + 8 * (C::kStages + st), ((cc / C::kStages) & 1) ^ 1);
            const unsigned sa = base + st * C::kStageBytes;
            const int col = kt * kBK + 8 * p;
            const bool in_k = col < K;
#pragma unroll
            for (int b = 0; b < C::kBM / 64; ++b) {  // in batches of 8 rows, their tokens read first
                int t[8];
#pragma unroll
                for (int j = 0; j < 8; ++j) t[j] = tok[4 * (8 * b + j) + r % 4];
#pragma unroll
                for (int j = 0; j < 8; ++j) {
                    const int m = r + 8 * (8 * b + j);
                    const bool on = t[j] >= 0 && in_k;
                    const bf16_t* src = a.x + (on ? std::int64_t(t[j]) * K + col : 0);
                    cp_async_16(sa + m * 128 + ((p ^ r) << 4), src, on ? 16 : 0);
                }
            }
            cp_async_arrive_noinc(bars + 8 * st);
        }
    }
}

constexpr bool kFastEpilogue = true;

// lo and hi rounded to bf16 (to nearest even, as f32_to_bf16 does) in one instruction: lo in the low half.
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
    unsigned d;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(d) : "f"(hi), "f"(lo));
    return d;
}

// SiLU(gate)·up as the reference computes it (gate and up rounded to bf16 first), with one op of the special-function
// unit: g·sigmoid(g) = g/2 + g/2·tanh(g/2), with the hardware tanh (tanh.approx.f32, about 2^-11 relative, so the
// sigmoid is within 2^-12, well inside h's bf16 rounding). The fast exponential and division took two such ops, at 16
// a clock per SM: the gate/up epilogue of a 128 × 256 tile took 2.79 µs with them and 1.75 with tanh, and the
// classroom shape at 512 tokens per expert 246.7-247.4 µs against 252.7-253.2 (kernels/bench/RESULTS.md, fourteenth
// session).
__device__ __forceinline__ float silu_gate_fast(float g_acc, float u_acc) {
    const unsigned gu = pack_bf16x2(g_acc, u_acc);
    const float g = __uint_as_float(gu << 16), u = __uint_as_float(gu & 0xffff0000u), gh = 0.5f * g;
    float t;
    asm("tanh.approx.f32 %0, %1;\n" : "=f"(t) : "f"(gh));
    return fmaf(gh, t, gh) * u;
}

// This thread's two adjacent output values of n8 block j, row + 8·half, packed as bf16: h = SiLU(gate)·up for gate/up
// (gate column c and up column c + kBN/2 are in the same thread), or y. kFast: hardware conversions and the fast
// SiLU; else the reference's arithmetic (silu_gate and f32_to_bf16).
template <int kBN, bool kFast = kFastEpilogue>
__device__ __forceinline__ unsigned out_pair(const float (&acc)[kBN / 2], bool gated, int j, int half) {
    if (gated) {
        const int g = 4 * j + 2 * half, u = 4 * (j + kBN / 16) + 2 * half;
        if constexpr (kFast) return pack_bf16x2(silu_gate_fast(acc[g], acc[u]), silu_gate_fast(acc[g + 1], acc[u + 1]));
        return unsigned(silu_gate(acc[g], acc[u])) | (unsigned(silu_gate(acc[g + 1], acc[u + 1])) << 16);
    }
    const int q = 4 * j + 2 * half;
    if constexpr (kFast) return pack_bf16x2(acc[q], acc[q + 1]);
    return unsigned(f32_to_bf16(acc[q])) | (unsigned(f32_to_bf16(acc[q + 1])) << 16);
}

// Writes this thread's part of columns [c0, c0 + 64) of an output tile (h = SiLU(gate)·up for gate/up, or y) into
// shared memory at `out`, as one box of 64 columns × kBM rows with the 128-byte swizzle (what a TMA store of map_h or
// map_y reads): column c0 + c of row m at byte m·128 + ((c / 8) ^ (m % 8))·16 + (c % 8)·2. The 8 rows of one store are
// 8 different 16-byte pieces of the 128-byte line: no bank conflicts. Rows from ntok on are left out (the storer does
// not store them). Straight-line code for one GEMM, so the conversions of all 16 pairs can overlap.
template <int kBN, int c0, bool kGated>
__device__ __forceinline__ void stage_round(const float (&acc)[kBN / 2], unsigned out, int row, int col, int ntok) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int m = row + 8 * half;
        if (m >= ntok) continue;  // past the expert's tokens: never stored
        const unsigned line = out + m * 128 + col * 2;
#pragma unroll
        for (int jl = 0; jl < 8; ++jl) {
            const unsigned v = out_pair<kBN>(acc, kGated, c0 / 8 + jl, half);
            asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(line + ((jl ^ (m % 8)) << 4)), "r"(v) : "memory");
        }
    }
}

// f(integral_constant<int, 0>), ..., f(integral_constant<int, N - 1>): a loop whose index is a compile-time constant.
template <int N, int I = 0, class F>
__device__ __forceinline__ void unroll(F&& f) {
    if constexpr (I < N) {
        f(std::integral_constant<int, I>{});
        unroll<N, I + 1>(f);
    }
}

// ---- host side ----

inline PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
    static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
        void* p = nullptr;
        cudaDriverEntryPointQueryResult q{};
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) !=
                cudaSuccess ||
            q != cudaDriverEntryPointSuccess)
            p = nullptr;
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
    }();
    return fn;
}

// A bf16 map of `rank` dimensions with the 128-byte swizzle (dims and strides as cuTensorMapEncodeTiled's).
inline CUtensorMap swizzled_map(const bf16_t* p, cuuint32_t rank, const cuuint64_t* dims, const cuuint64_t* strides,
                                const cuuint32_t* box) {
    CUtensorMap m{};
    const cuuint32_t elem[4] = {1, 1, 1, 1};
    const CUresult r = encode_fn()(&m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, rank, const_cast<bf16_t*>(p), dims, strides,
                                   box, elem, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                   CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    MOE_ASSERT(r == CUDA_SUCCESS, "cuTensorMapEncodeTiled failed (" << int(r) << ") for a rank-" << rank << " map of "
                                                                    << dims[0] << " × " << dims[1] << " bf16");
    return m;
}

// A row-major bf16 matrix [rows, cols] read in boxes of 64 columns × box_rows rows.
inline CUtensorMap tile_map(const bf16_t* p, std::int64_t rows, int cols, int box_rows) {
    const cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)}, strides[1] = {cuuint64_t(cols) * 2};
    const cuuint32_t box[2] = {cuuint32_t(kBK), cuuint32_t(box_rows)};
    return swizzled_map(p, 2, dims, strides, box);
}

// w1 [experts · 2F, d] as (d, F, 2·experts), read in boxes of 64 columns × box_rows rows × 2: a gate tile and the
// matching up tile (coordinates (k, first row, 2e)) in one TMA request. Rows past F are zero-filled. With ks = 2 or
// 3, (64, F, 2·experts, d / 64) instead, the last dimension 128 bytes apart (k tiles; d % 128 == 0), in boxes of ks k
// tiles (coordinates (0, first row, 2e, k / 64)).
inline CUtensorMap gate_up_map(const bf16_t* p, int experts, int ffn, int hidden, int box_rows, int ks) {
    const cuuint64_t dims[4] = {cuuint64_t(ks == 1 ? hidden : kBK), cuuint64_t(ffn), cuuint64_t(2) * experts,
                                cuuint64_t(hidden / kBK)};
    const cuuint64_t strides[3] = {cuuint64_t(hidden) * 2, cuuint64_t(hidden) * 2 * ffn, kBK * 2};
    const cuuint32_t box[4] = {cuuint32_t(kBK), cuuint32_t(box_rows), 2, cuuint32_t(ks)};
    return swizzled_map(p, ks == 1 ? 3 : 4, dims, strides, box);
}

// A row-major [rows, cols] matrix (cols % 128 == 0) as (64, rows, cols / 64), the last dimension 128 bytes apart, in
// boxes of box_rows rows × ks k tiles (coordinates (0, row, k / 64)): a stage of ks k steps in one request (k tiles
// past cols zero-filled).
inline CUtensorMap k_pair_map(const bf16_t* p, std::int64_t rows, int cols, int box_rows, int ks) {
    const cuuint64_t dims[3] = {kBK, cuuint64_t(rows), cuuint64_t(cols / kBK)};
    const cuuint64_t strides[2] = {cuuint64_t(cols) * 2, kBK * 2};
    const cuuint32_t box[3] = {cuuint32_t(kBK), cuuint32_t(box_rows), cuuint32_t(ks)};
    return swizzled_map(p, 3, dims, strides, box);
}

// A kernel's static shared memory (its barriers' slots and the like), which the dynamic part leaves room for.
template <auto kKernel>
int static_smem() {
    static const int bytes = [] {
        cudaFuncAttributes fa{};
        MOE_CUDA_CHECK(cudaFuncGetAttributes(&fa, kKernel));
        return int(fa.sharedSizeBytes);
    }();
    return bytes;
}

// The pointers and sizes of one call, and how it runs (experts_wgmma.cu's launches).
struct Call {
    const bf16_t *xp, *x;  // packed rows, or (xp null) x gathered through row_token
    const std::int32_t* row_token;
    const std::int32_t *counts, *offsets;
    std::int64_t max_rows;
    int experts, hidden, ffn;
    const bf16_t *w1, *w2;
    bf16_t *h, *y;
    int* sched;
    bool fused, staged, skip_idle;
    int group;
    cudaStream_t st;
    int early = -1;
    bool short_box = true;
    bool snake = false;
    int ahead = 1;
    bool own_first = true;
    int ks = 1;  // k steps a stage holds (Cfg's kKS): 2 or 3 need packed rows and d, F % 128 == 0
};

// The tensor maps of one call for tiles of bm tokens × bn weight rows. A weight tile is one box (one TMA request: an
// SM is served requests at a rate, whatever their size; RESULTS.md): the gate rows and the matching up rows
// (gate_up_map), or bn rows of w2. h and y: boxes of bm rows, which the output tiles are stored as. Gathered rows (no
// xp): a box of one row of x, only for the one that says there are no more items.
struct Maps {
    CUtensorMap x, w1, h, w2, y;
    ShortBoxes boxes;
};
inline Maps make_maps(const Call& q, int bm, int bn) {
    Maps m{};
    // a token or weight matrix in boxes of `rows` rows of one k tile, or (ks = 2, 3) of ks
    auto map = [&](const bf16_t* p, std::int64_t r, int cols, int rows) {
        return q.ks > 1 ? k_pair_map(p, r, cols, rows, q.ks) : tile_map(p, r, cols, rows);
    };
    m.x = q.xp ? map(q.xp, q.max_rows, q.hidden, bm) : tile_map(q.x, q.max_rows, q.hidden, 1);
    m.w1 = gate_up_map(q.w1, q.experts, q.ffn, q.hidden, bn / 2, q.ks);
    m.h = map(q.h, q.max_rows, q.ffn, bm);
    m.w2 = map(q.w2, std::int64_t(q.experts) * q.hidden, q.ffn, bn);
    m.y = tile_map(q.y, q.max_rows, q.hidden, bm);
    if (q.short_box)
        for (int i = 0; 16 * (i + 1) < bm; ++i) {
            if (q.xp) m.boxes.x[i] = map(q.xp, q.max_rows, q.hidden, 16 * (i + 1));
            m.boxes.h[i] = map(q.h, q.max_rows, q.ffn, 16 * (i + 1));
        }
    return m;
}

// The kernel's arguments for a call, both GEMMs (the split launches change mode and sched).
inline Args args_of(const Call& q, std::uint64_t* trace) {
    return Args{q.counts,
                q.offsets,
                q.experts,
                q.hidden,
                q.ffn,
                kBoth,
                q.h,
                q.y,
                q.sched,
                experts_detail::down_preload(),
                trace,
                int(q.skip_idle),
                q.group,
                q.early,
                q.x,
                q.xp ? nullptr : q.row_token,
                int(q.short_box),
                int(q.snake),
                q.ahead,
                int(q.own_first)};
}

}  // namespace moe::gpu::wgmma_parts
