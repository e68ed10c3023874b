// The mid expert FFN (experts_mid.cuh): two persistent launches of one swap-AB GEMM kernel, gate/up with the SiLU
// gate in the epilogue, then down. A block takes one item at a time: 128 weight rows of one expert × one tile of that
// expert's tokens; its 8 warps split it 4 (weight rows) × 2 (tokens). Each k step of 64 brings 128 bytes of every
// weight row and token row into a swizzled shared-memory stage with cp.async; ldmatrix feeds mma.sync m16n8k16 from
// there while the next stages load. Items are ordered expert, row tile, token tile, so the token tiles of one row
// tile run on neighbouring blocks at the same time and the second reads the weights from L2. The down kernel's items
// start as soon as the gate/up blocks that ran their expert's items have ended (the hand-off, mid_handoff), not when
// the whole gate/up kernel has completed.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "kernels/common/bf16.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/experts_common.cuh"
#include "kernels/cuda/experts_mid.cuh"
#include "kernels/cuda/item_trace.cuh"
#include "kernels/cuda/launchers.hpp"

namespace moe::gpu {

namespace {

using namespace experts_detail;

constexpr int kThreads = 256;  // 8 warps
constexpr int kBK = 64;        // k per stage: 128 bytes of each row, 8 pieces of 16 bytes

// The block's tile: 4 warps along the weight rows (kMI 16-row mma tiles each) and 2 along the tokens, kNT 8-token mma
// tiles per warp at most: 64·kMI weight rows × 16·kNT tokens, two blocks per SM, each with as many stages as fit in
// 108 KB (3 to 8). gate/up has kMI = 2: each warp 16 gate rows and the same 16 up rows. The down GEMM takes 64-row
// tiles (kMI = 1) when its 128-row items would run in few rounds (mid_down_narrow). Measured and retired
// (kernels/bench/RESULTS.md): a wide tile (256 rows, 8 warps × all the tokens, one block per SM), slower at every size
// but one, and 64-row gate/up tiles (8 gate and 8 up rows a warp), slower at 8 tokens per expert.
template <int kNT, int kMI = 2>
struct Tile {
    static constexpr int kWM = 4, kWN = 2;
    static constexpr int kBM = 16 * kMI * kWM;
    static constexpr int kBN = kWN * 8 * kNT;
    static constexpr int kABytes = kBM * kBK * 2;
    static constexpr int kStageBytes = kABytes + kBN * kBK * 2;
    static constexpr int kStages = 108 * 1024 / kStageBytes < 8 ? 108 * 1024 / kStageBytes : 8;
    static constexpr int kPipeBytes = kStages * kStageBytes;
    static constexpr int kAPerThread = kBM * 8 / kThreads;  // 16-byte pieces of the weight tile per thread
    static constexpr int kBPerThread = kBN * 8 / kThreads;  // and of the token tile
};

template <int kNT, int kMI>
constexpr int mid_smem_bytes(int experts) {
    return Tile<kNT, kMI>::kPipeBytes + ((experts + 1) * 4 + 15) / 16 * 16;
}

// Byte offset of 16-byte piece `chunk` of tile row `row`: rows of 128 bytes, pieces XOR-swizzled by the row so that
// the 8 row addresses of one ldmatrix phase hit 8 different bank groups.
__device__ __forceinline__ int swz(int row, int chunk) { return row * 128 + ((chunk ^ (row & 7)) << 4); }

// 16 bytes global → shared, zero-filled when src_bytes is 0. kPf: ask L2 for the whole 256-byte block (weights: the
// next stage's 128 bytes of the row come with this one's).
template <bool kPf>
__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, int src_bytes) {
    if constexpr (kPf)
        asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes)
                     : "memory");
    else
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
// One 16-byte piece of a row (elements [k, k + 8), zeros past K or for a missing row) into shared memory; a zero
// fill still names a valid address (`any`).
// kVec: K % 8 == 0 and rows 16-byte aligned, so a piece is all in or all out and goes by cp.async; otherwise
// element by element through registers (odd shapes), which the barrier before its use orders.
template <bool kVec, bool kPf>
__device__ __forceinline__ void load_piece(unsigned char* smem, unsigned smem_u32, int off, const bf16_t* row, int k,
                                           int K, const bf16_t* any) {
    if constexpr (kVec) {
        const bool ok = row != nullptr && k < K;
        cp_async16<kPf>(smem_u32 + off, ok ? row + k : any, ok ? 16 : 0);
    } else {
        unsigned w[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const unsigned lo = row && k + 2 * i < K ? row[k + 2 * i] : 0u;
            const unsigned hi = row && k + 2 * i + 1 < K ? row[k + 2 * i + 1] : 0u;
            w[i] = lo | (hi << 16);
        }
        *reinterpret_cast<uint4*>(smem + off) = make_uint4(w[0], w[1], w[2], w[3]);
    }
}

// One GEMM over every expert: out[r, m] = Σ_k B[r, k]·A[m, k] for the kept rows r of each expert, with
//   gate/up (kGated): A = w1 (gate rows m and up rows M + m of each expert; M = F), B = x rows (packed, or gathered
//   through row_token when b_packed is null), out = h = SiLU(gate)·up, [rows, F];
//   down: A = w2 ([d, F] per expert; M = d), B = h, out = y [rows, d], whose padding rows it zeroes.
// K is the common width (d, then F).
// The loads run kStages - 1 stages ahead of the products across item boundaries: the next item's first stages stream
// while this item's last ones are multiplied and stored, instead of the ring draining at the end of every item.
// kTrace (MOELAB_TRACE_ITEMS, item_trace.cuh; a separate instantiation): thread 0 writes each item's timeline to
// `trace` (taken: the block's start for its first item, else when the previous one ended; first: its first stage
// in; mma: its products done; end: thread 0's stores done).
template <int kNT, int kMI, bool kGated, bool kVec, bool kTrace>
__global__ void __launch_bounds__(kThreads, 2)
    mid_gemm_kernel(const bf16_t* b_packed, const bf16_t* b_gather, const std::int32_t* row_token,
                    const std::int32_t* counts, const std::int32_t* offsets, int experts, int K, int M, const bf16_t* w,
                    bf16_t* out, int preload, std::uint64_t* trace, int* progress, int producer_grid) {
    __shared__ std::uint64_t t_start;  // kTrace: when this block started
    if (kTrace && threadIdx.x == 0) t_start = global_ns();
    using T = Tile<kNT, kMI>;
    static_assert(!kGated || kMI == 2, "gate/up pairs 16 gate rows with the same 16 up rows in each warp");
    constexpr int kBM = T::kBM, kABytes = T::kABytes, kS = T::kStages;
    extern __shared__ __align__(128) unsigned char smem[];
    __shared__ int warp_sums[32];
    int* pre = reinterpret_cast<int*>(smem + T::kPipeBytes);  // [experts + 1]: token tiles before each expert
    const unsigned smem_u32 = static_cast<unsigned>(__cvta_generic_to_shared(smem));
    if constexpr (kGated) {
        // The hand-off (progress not null): this block's count of items done starts at 0 for this call before the
        // down kernel can start (it is launched once every block of this grid has called launch_dependents).
        if (progress && threadIdx.x == 0) store_release(progress + blockIdx.x, 0);
        if (progress) __syncthreads();
        launch_dependents();  // the down kernel may take the SMs this grid frees
    }
    const int tiles = chunk_prefix(counts, experts, T::kBN, pre, warp_sums);
    const int mtiles = kGated ? (M + kBM / 2 - 1) / (kBM / 2) : (M + kBM - 1) / kBM;
    const std::int64_t items = std::int64_t(tiles) * mtiles;
    // Whole rounds: with R = ceil(items / grid) rounds of items, only ceil(items / R) blocks take items, R each at
    // most, and the rest leave at once (their slots go to the down kernel, launched programmatically). A last round
    // that ran part-empty kept DRAM below its rate; the blocks that run stream faster instead. Measured on the H200
    // (kernels/bench/RESULTS.md, twelfth session): the classroom shape at 8 tokens per expert, 704 gate/up items on
    // 264 blocks (2.67 rounds): 235 blocks took 77.0-77.5 µs against 78.6-79.1 with all 264.
    const std::int64_t rounds = (items + gridDim.x - 1) / gridDim.x;
    const std::int64_t stride = rounds > 0 ? (items + rounds - 1) / rounds : gridDim.x;
    const std::int64_t first_item = blockIdx.x < stride ? std::int64_t(blockIdx.x) : items;  // items: none
    if constexpr (!kGated) zero_padding_rows(counts, offsets, experts, M, out);  // y only: gate/up never touches it
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    const int wm = warp % T::kWM, wn = warp / T::kWM;
    const int piece = tid & 7, prow = tid >> 3;  // this thread's loads: piece `piece` of rows prow + 32·q
    // The tile rows of this warp's 16-row mma tiles: gate/up, 16 gate rows and the matching 16 up rows (the up half
    // starts at tile row kBM / 2); down, 16·kMI consecutive rows of w2.
    const int mrow0 = kGated ? 16 * wm : 16 * kMI * wm;
    const int mrow1 = kGated ? kBM / 2 + 16 * wm : mrow0 + 16;
    const int nk = (K + kBK - 1) / kBK;

    // Where item `item` is: expert e, row tile mt, its first row r0 and its tokens ntok (token tile tt of e's).
    struct Where {
        int e, mt, ntok;
        std::int64_t r0;
    };
    auto locate = [&](std::int64_t item) {
        Where at;
        at.e = expert_of_chunk(pre, experts, item, mtiles);
        const int ntt = pre[at.e + 1] - pre[at.e];
        const int local = static_cast<int>(item - std::int64_t(pre[at.e]) * mtiles);
        const int tt = local % ntt;
        at.mt = local / ntt;
        at.ntok = min(T::kBN, counts[at.e] - tt * T::kBN);
        at.r0 = std::int64_t(offsets[at.e]) + std::int64_t(tt) * T::kBN;
        return at;
    };

    // The load cursor: item `lit` (of expert `lexp`), k step `lkt`, and this thread's rows of that item.
    std::int64_t lit = first_item;
    int lkt = 0, lexp = -1, ready_exp = -1;
    const bf16_t* arow[T::kAPerThread];  // null: past M (zeros)
    const bf16_t* brow[T::kBPerThread];  // null: past the expert's tokens (zeros)
    auto aim = [&](std::int64_t item) {
        const Where at = locate(item);
        const int e = at.e, mt = at.mt, ntok = at.ntok;
        const std::int64_t r0 = at.r0;
        lexp = e;
#pragma unroll
        for (int q = 0; q < T::kAPerThread; ++q) {
            const int i = prow + 32 * q;
            if constexpr (kGated) {
                const int f = mt * (kBM / 2) + (i % (kBM / 2));
                const std::int64_t wr = std::int64_t(e) * 2 * M + (i < kBM / 2 ? f : M + f);
                arow[q] = f < M ? w + wr * K : nullptr;
            } else {
                const int o = mt * kBM + i;
                arow[q] = o < M ? w + (std::int64_t(e) * M + o) * K : nullptr;
            }
        }
#pragma unroll
        for (int q = 0; q < T::kBPerThread; ++q) {
            const int n = prow + 32 * q;
            const std::int64_t r = r0 + n;
            brow[q] = n >= ntok ? nullptr : b_packed ? b_packed + r * K : b_gather + std::int64_t(row_token[r]) * K;
        }
    };
    auto load_weights = [&](int slot, int k0) {
        const int off = slot * T::kStageBytes, k = k0 + 8 * piece;
#pragma unroll
        for (int q = 0; q < T::kAPerThread; ++q)
            load_piece<kVec, true>(smem, smem_u32, off + swz(prow + 32 * q, piece), arow[q], k, K, w);
    };
    // The down kernel with the hand-off: before the first token (h) loads of an item, wait until every gate/up item
    // of its expert is done. The gate/up kernel's items are numbered as there (the same token tiles, F / 64 row
    // tiles) and ran in whole rounds: item i is block i mod stride's (i / stride + 1)-th, so it is done when that
    // block's count is past i / stride. Warp 0 polls, then the block's barrier orders every thread's loads after it.
    auto await_expert = [&] {
        if (kGated || !progress || lkt != 0 || lexp == ready_exp) return;
        if (warp == 0) {
            constexpr int kRowsG = Tile<kNT, 2>::kBM / 2;  // h columns per gate/up item (this tile may be narrower)
            const std::int64_t mt_g = (K + kRowsG - 1) / kRowsG, items_g = std::int64_t(pre[experts]) * mt_g;
            const std::int64_t rounds_g = (items_g + producer_grid - 1) / producer_grid;
            const std::int64_t stride_g = (items_g + rounds_g - 1) / rounds_g;
            const std::int64_t i0 = std::int64_t(pre[lexp]) * mt_g, i1 = std::int64_t(pre[lexp + 1]) * mt_g;
            const std::uint64_t t0 = global_ns();
            for (;;) {
                bool done = true;
                for (std::int64_t i = i0 + lane; i < i1; i += 32)
                    done = done && load_acquire(progress + i % stride_g) > i / stride_g;
                if (__all_sync(0xffffffffu, done)) break;
                __nanosleep(128);
                if (global_ns() - t0 > 60'000'000'000ull) __trap();  // a lost count: fail, do not hang
            }
        }
        __syncthreads();
        ready_exp = lexp;
    };
    auto load_tokens = [&](int slot, int k0) {
        await_expert();
        const int off = slot * T::kStageBytes, k = k0 + 8 * piece;
#pragma unroll
        for (int q = 0; q < T::kBPerThread; ++q)
            load_piece<kVec, false>(smem, smem_u32, off + kABytes + swz(prow + 32 * q, piece), brow[q], k, K, w);
    };
    auto advance = [&] {
        if (++lkt < nk) return;
        lkt = 0;
        lit += stride;
        if (lit < items) aim(lit);
    };
    if (lit < items) aim(lit);
    // The down kernel: the first item's first stages' weights (which do not depend on h) are asked for before the
    // wait for the gate/up kernel, so that they stream during its tail; they complete with the first stage's group.
    // h is complete and visible after the wait.
    int preloaded = 0;
    if constexpr (!kGated) {
        if ((preload || progress) && lit < items)
            for (; preloaded < kS - 1 && preloaded < nk; ++preloaded) load_weights(preloaded, preloaded * kBK);
        if (!progress) wait_for_producer();
    }
#pragma unroll
    for (int s = 0; s < kS - 1; ++s) {
        if (lit < items) {
            s < preloaded ? load_tokens(s, lkt * kBK) : (load_weights(s, lkt * kBK), load_tokens(s, lkt * kBK));
            advance();
        }
        cp_async_commit();
    }

    int slot = 0;        // the stage the products read next: the ring's stages in order, across items
    int items_done = 0;  // this block's items
    for (std::int64_t it = first_item; it < items; it += stride) {
        const Where at = locate(it);
        const int mt = at.mt, ntok = at.ntok;
        const std::int64_t r0 = at.r0;
        std::uint64_t* tr = kTrace && tid == 0 ? trace + it * kTraceWords : nullptr;
        if (tr) trace_begin(tr, it == first_item ? t_start : 0);

        // The token warps share the tile's 8-token tiles evenly (an even count each, so that ldmatrix's pairs of
        // tiles stay inside the stage): with 64 tokens in a 128-token tile both warps take 32, instead of the first
        // warp 64 and the second none, which left the mma work of the block on half its warps.
        const int tiles8 = (ntok + 7) / 8, per_warp = ((tiles8 + T::kWN - 1) / T::kWN + 1) & ~1;
        const int nbase = wn * 8 * per_warp;                             // this warp's first token of the tile
        const int live = min(per_warp, max(0, tiles8 - wn * per_warp));  // its 8-token tiles with tokens
        float acc[kMI][kNT][4] = {};
        for (int kt = 0; kt < nk; ++kt) {
            cp_async_wait<kS - 2>();
            __syncthreads();  // stage `slot` is in for every thread; the one before it is free
            if (tr && kt == 0) trace_mark(tr, 3);
            if (lit < items) {
                const int free_slot = slot == 0 ? kS - 1 : slot - 1;
                load_weights(free_slot, lkt * kBK);
                load_tokens(free_slot, lkt * kBK);
                advance();
            }
            cp_async_commit();
            const unsigned sa = smem_u32 + slot * T::kStageBytes, sb = sa + kABytes;
            slot = slot + 1 == kS ? 0 : slot + 1;
            if (live == 0) continue;
#pragma unroll
            for (int ks = 0; ks < kBK / 16; ++ks) {
                unsigned a[kMI][4];
                ldmatrix_x4(a[0], sa + swz(mrow0 + (lane & 15), 2 * ks + (lane >> 4)));
                if constexpr (kMI == 2) ldmatrix_x4(a[1], sa + swz(mrow1 + (lane & 15), 2 * ks + (lane >> 4)));
#pragma unroll
                for (int jp = 0; jp < kNT / 2; ++jp) {
                    if (2 * jp >= live) break;
                    unsigned b[4];
                    ldmatrix_x4(
                        b, sb + swz(nbase + 16 * jp + (lane & 7) + ((lane >> 4) << 3), 2 * ks + ((lane >> 3) & 1)));
#pragma unroll
                    for (int mi = 0; mi < kMI; ++mi) {
                        mma_bf16(acc[mi][2 * jp], a[mi], b[0], b[1]);
                        if (2 * jp + 1 < live) mma_bf16(acc[mi][2 * jp + 1], a[mi], b[2], b[3]);
                    }
                }
            }
        }

        // Epilogue from registers (the next item's first stages are loading meanwhile). Accumulator c of tile
        // (mi, j): weight row g (c < 2) or g + 8, token 2t + (c & 1).
        if (tr) trace_mark(tr, kTraceMma);
#pragma unroll
        for (int j = 0; j < kNT; ++j)
#pragma unroll
            for (int c = 0; c < 2; ++c) {
                const int n = nbase + 8 * j + 2 * t + c;
                if (j >= live || n >= ntok) continue;  // tiles past `live` are the other token warp's
                bf16_t* o = out + (r0 + n) * M;
                if constexpr (kGated) {
                    const int f = mt * (kBM / 2) + 16 * wm + g;
                    if (f < M) o[f] = silu_gate(acc[0][j][c], acc[1][j][c]);
                    if (f + 8 < M) o[f + 8] = silu_gate(acc[0][j][2 + c], acc[1][j][2 + c]);
                } else {
#pragma unroll
                    for (int mi = 0; mi < kMI; ++mi) {
                        const int r = mt * kBM + mrow0 + 16 * mi + g;
                        if (r < M) o[r] = f32_to_bf16(acc[mi][j][c]);
                        if (r + 8 < M) o[r + 8] = f32_to_bf16(acc[mi][j][2 + c]);
                    }
                }
            }
        ++items_done;
        if (tr) trace_end(tr, kGated ? 1 : 0, at.e);
    }
    cp_async_wait<0>();  // only empty groups are left; nothing is in flight when the block exits
    // The hand-off: this block's items are done and their h written, once, when the block ends. A count after each
    // item (a barrier and a fence on the block's path: the classroom shape at 16 tokens per expert 88.1-89.6 µs) or a
    // few k steps into the next item (86.8-88.2) was slower than this (84.4-86.5; without the hand-off 89.6-91.9).
    if (kGated && progress && items_done > 0) {
        __syncthreads();
        if (tid == 0) {
            __threadfence();
            store_release(progress + blockIdx.x, items_done);
        }
    }
    // With the hand-off the down kernel never waited for the whole gate/up grid; it does so before it ends, so that
    // the stream's next work finds both kernels complete (the gate/up items are all done by now: this costs nothing).
    if (!kGated && progress) wait_for_producer();
}

// Whether the down kernel's items wait for the gate/up blocks that ran their expert's items (the hand-off) instead of
// the whole gate/up grid: they start as those blocks end, without the wait for the grid's completion and its flush.
// Measured on the H200 (kernels/bench/RESULTS.md, twenty-second session): the classroom shape at 16 tokens per
// expert 84.4-86.5 µs against 89.6-91.9, at 24 94.8-98.3 against 95.9-101.7, at 4 and 8 about 1% faster.
// MOELAB_MID_HANDOFF=0 turns it off (tests, experiments).
bool mid_handoff() { return env_choice("MOELAB_MID_HANDOFF", {0, 1}, 1) == 1; }

// Whether the down GEMM takes 64-row tiles: when its 128-row items (`items128`) would run in fewer than four rounds
// of two blocks an SM, where the last round's idle blocks and a single block an SM with few stages in flight cost
// most (the classroom shape at 8 tokens per expert: 128 items on 132 SMs). Twice the items, each half as long, with
// more stages. MOELAB_MID_DOWN_ROWS=64|128 forces one (tests, the benchmark's side-by-side rows).
bool mid_down_narrow(std::int64_t items128) {
    if (const int rows = env_choice("MOELAB_MID_DOWN_ROWS", {64, 128}, 0)) return rows == 64;
    return items128 < 8 * std::int64_t(device_sms());
}

// The gate/up kernel's grid for these shapes (the down kernel's hand-off needs it).
template <int kNT, bool kVec, bool kTrace>
unsigned mid_gated_grid(std::int64_t est_tiles, int experts, int ffn) {
    using T = Tile<kNT, 2>;
    auto k = mid_gemm_kernel<kNT, 2, true, kVec, kTrace>;
    const int smem = mid_smem_bytes<kNT, 2>(experts);
    MOE_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    return persistent_blocks(k, kThreads, smem, est_tiles * ((ffn + T::kBM / 2 - 1) / (T::kBM / 2)));
}

// One GEMM of the FFN (kGated: gate/up, x → h; else down, h → y, launched programmatically after gate/up).
// trace (MOELAB_TRACE_ITEMS; null: off): this GEMM's items' rows. progress (null: no hand-off): the gate/up blocks'
// counts of items done, gated_grid ints; the down kernel's items each wait for their own expert's instead of the
// whole gate/up grid.
template <int kNT, int kMI, bool kGated, bool kVec, bool kTrace>
void launch_mid_gemm(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                     const std::int32_t* offsets, std::int64_t est_tiles, int experts, int hidden, int ffn,
                     const bf16_t* w, bf16_t* h, bf16_t* y, std::uint64_t* trace, int* progress, unsigned gated_grid,
                     cudaStream_t st) {
    using T = Tile<kNT, kMI>;
    const int smem = mid_smem_bytes<kNT, kMI>(experts);
    auto k = mid_gemm_kernel<kNT, kMI, kGated, kVec, kTrace>;
    if constexpr (kGated) {  // its shared-memory attribute is set by mid_gated_grid, which sized gated_grid
        k<<<gated_grid, kThreads, smem, st>>>(xp, x, row_token, counts, offsets, experts, hidden, ffn, w, h, 0, trace,
                                              progress, 0);
        MOE_CUDA_LAUNCH_CHECK("mid_gemm_kernel (gate/up)");
    } else {
        MOE_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        const unsigned g = persistent_blocks(k, kThreads, smem, est_tiles * ((hidden + T::kBM - 1) / T::kBM));
        const bf16_t* none = nullptr;
        const bf16_t* hc = h;
        const std::int32_t* no_rt = nullptr;
        launch_after_producer(k, g, kThreads, smem, st, hc, none, no_rt, counts, offsets, experts, ffn, hidden, w, y,
                              down_preload(), trace, progress, int(gated_grid));
        MOE_CUDA_LAUNCH_CHECK("mid_gemm_kernel (down)");
    }
}

template <int kNT, bool kVec, bool kTrace>
void launch_mid(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn, const bf16_t* w1,
                const bf16_t* w2, bf16_t* h, bf16_t* y, int* sync, std::int64_t sync_ints, cudaStream_t st) {
    constexpr int kBN = Tile<kNT>::kBN;
    // Token tiles: at most one per row, and at most rows / tile + one partial tile per expert.
    const std::int64_t est_tiles = std::min<std::int64_t>(max_rows, max_rows / kBN + experts);
    const bool narrow = mid_down_narrow(est_tiles * ((hidden + 127) / 128));
    const int down_rows = narrow ? 64 : 128;
    // MOELAB_TRACE_ITEMS: the gate/up items' rows, then the down items'
    const char* trace = kTrace ? item_trace_path(st) : nullptr;
    const std::int64_t est_gated = est_tiles * ((ffn + 63) / 64),
                       est_down = est_tiles * ((hidden + down_rows - 1) / down_rows);
    std::uint64_t* tbuf = trace ? item_trace_buffer(est_gated + est_down, st) : nullptr;
    std::uint64_t* tdown = tbuf ? tbuf + est_gated * kTraceWords : nullptr;
    const unsigned gated_grid = mid_gated_grid<kNT, kVec, kTrace>(est_tiles, experts, ffn);
    int* progress = mid_handoff() && sync && sync_ints >= std::int64_t(gated_grid) ? sync : nullptr;
#define MOE_MID_GEMM_ARGS xp, x, row_token, counts, offsets, est_tiles, experts, hidden, ffn
    launch_mid_gemm<kNT, 2, true, kVec, kTrace>(MOE_MID_GEMM_ARGS, w1, h, y, tbuf, progress, gated_grid, st);
    if (narrow)
        launch_mid_gemm<kNT, 1, false, kVec, kTrace>(MOE_MID_GEMM_ARGS, w2, h, y, tdown, progress, gated_grid, st);
    else
        launch_mid_gemm<kNT, 2, false, kVec, kTrace>(MOE_MID_GEMM_ARGS, w2, h, y, tdown, progress, gated_grid, st);
#undef MOE_MID_GEMM_ARGS
    if (trace)
        write_item_trace(trace, tbuf, est_gated + est_down,
                         "mid experts=" + std::to_string(experts) + " hidden=" + std::to_string(hidden) +
                             " ffn=" + std::to_string(ffn) + " bm=" + std::to_string(kBN) +
                             " bn=128 bn_down=" + std::to_string(down_rows),
                         st);
}

template <int kNT>
void launch_mid_vec(bool vec, const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token,
                    const std::int32_t* counts, const std::int32_t* offsets, std::int64_t max_rows, int experts,
                    int hidden, int ffn, const bf16_t* w1, const bf16_t* w2, bf16_t* h, bf16_t* y, int* sync,
                    std::int64_t sync_ints, cudaStream_t st) {
#define MOE_MID_LAUNCH_ARGS \
    xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn, w1, w2, h, y, sync, sync_ints, st
    const bool traced = item_trace_path(st) != nullptr;
    if (vec)
        traced ? launch_mid<kNT, true, true>(MOE_MID_LAUNCH_ARGS) : launch_mid<kNT, true, false>(MOE_MID_LAUNCH_ARGS);
    else
        traced ? launch_mid<kNT, false, true>(MOE_MID_LAUNCH_ARGS) : launch_mid<kNT, false, false>(MOE_MID_LAUNCH_ARGS);
#undef MOE_MID_LAUNCH_ARGS
}

}  // namespace

int mid_tile_tokens(double tokens_per_expert) {
    if (const int v = env_choice("MOELAB_MID_TILE", {32, 64, 128}, 0)) return v;
    // An expert with more tokens than one tile takes several, each streaming its row tiles again (from L2 when the
    // neighbouring block runs the same rows). Headroom over the mean as in decode_chunk_tokens. A smaller token tile
    // leaves room in shared memory for more weight stages in flight (32 tokens: 5 stages, 64: 4, 128: 3).
    return tokens_per_expert <= 16 ? 32 : tokens_per_expert <= 40 ? 64 : 128;
}

void mid_ffn(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
             const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn, const bf16_t* w1,
             const bf16_t* w2, bf16_t* h, bf16_t* y, int tile_tokens, int* sync, std::int64_t sync_ints,
             cudaStream_t st) {
    if (max_rows <= 0) return;
    // cp.async moves whole 16-byte pieces; otherwise the element loads
    const bool vec = rows_in_16_byte_pieces(hidden, ffn, xp, x, w1, w2, h);
#define MOE_MID_ARGS \
    vec, xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn, w1, w2, h, y, sync, sync_ints, st
    if (tile_tokens >= 128) return launch_mid_vec<8>(MOE_MID_ARGS);
    return tile_tokens >= 64 ? launch_mid_vec<4>(MOE_MID_ARGS) : launch_mid_vec<2>(MOE_MID_ARGS);
#undef MOE_MID_ARGS
}

}  // namespace moe::gpu
