// The decode expert FFN in one launch (decode_ffn, experts_decode.cuh; MOELAB_DECODE_ONE=0 runs the two launches of
// experts_decode.cu instead). The two-launch kernels run each GEMM's items in one round and the down kernel waits for
// the whole gate/up grid: the weights stop streaming while the gate/up items drain and the down items start. Here a
// persistent kernel of a few blocks an SM takes its items in order from a counter, a block at a time: every gate/up
// item (chunk-major), then every down item. A down item waits only for the gate/up items of its chunk of tokens
// (a count per chunk), which were taken long before it, so the weights stream without a gap from the first gate/up
// item to the last down item, and the only drain is the call's end.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/common/bf16.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/experts_common.cuh"
#include "kernels/cuda/experts_decode_parts.cuh"
#include "kernels/cuda/item_trace.cuh"  // global_ns
#include "kernels/cuda/launchers.hpp"   // device_sms

namespace moe::gpu::decode_detail {

namespace {

using namespace experts_detail;

// Asks L2 for bytes [p, p + bytes) in one request (sm_90's bulk prefetch; p and bytes multiples of 16): a warp's
// whole slice of its weight rows in flight at once, where its registers hold 8 KB of it.
__device__ __forceinline__ void prefetch_l2(const bf16_t* p, int bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (bytes > 0) asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(p), "r"(bytes) : "memory");
#endif
}

// sync[0]: the next take; sync[1 + j]: chunk j's gate/up items done (zeroed before the launch). A take is one item
// for each of the block's kWarps / split groups of warps: takes [0, takes_gu) are gate/up items, the rest down items.
template <int kNT, bool kVec, int kFlavor>
__global__ void __launch_bounds__(kThreads)
    decode_one_kernel(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                      const std::int32_t* offsets, int experts, int hidden, int ffn, const bf16_t* w1,
                      const bf16_t* w2, bf16_t* h, bf16_t* y, int split_gu, int split_dn, int pf, int* sync) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    int* pre = reinterpret_cast<int*>(smem_raw);
    float* red = reinterpret_cast<float*>(smem_raw + decode_red_offset(experts));
    __shared__ int warp_sums[32];
    __shared__ int slot[2];  // the block's take, alternating: one barrier a take
    constexpr int kChunk = 8 * kNT;
    const int chunks = chunk_prefix(counts, experts, kChunk, pre, warp_sums);
    zero_padding_rows(counts, offsets, experts, hidden, y);  // y's other rows are the down items'
    const int tiles_gu = (ffn + 7) / 8, tiles_dn = (hidden + 15) / 16;
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, warp = threadIdx.x >> 5;
    const std::int64_t items_gu = std::int64_t(chunks) * tiles_gu, items_dn = std::int64_t(chunks) * tiles_dn;
    const std::int64_t takes_gu = (items_gu + kWarps / split_gu - 1) / (kWarps / split_gu);
    const std::int64_t takes = takes_gu + (items_dn + kWarps / split_dn - 1) / (kWarps / split_dn);
    int* done = sync + 1;
    for (int round = 0;; ++round) {
        if (threadIdx.x == 0) slot[round & 1] = atomicAdd(sync, 1);
        __syncthreads();
        const std::int64_t v = slot[round & 1];
        if (v >= takes) break;
        const bool gated = v < takes_gu;
        const int split = gated ? split_gu : split_dn, grp = warp / split, part = warp % split;
        const int K = gated ? hidden : ffn, tiles = gated ? tiles_gu : tiles_dn;
        const int per = ((K + 31) / 32 + split - 1) / split * 32;  // k per warp of a group
        const int kb = min(K, part * per), ke = min(K, kb + per);
        const std::int64_t it = (gated ? v : v - takes_gu) * (kWarps / split) + grp;
        const bool have = it < (gated ? items_gu : items_dn);
        float acc[kNT][4] = {};
        int ntok = 0, j = 0, col = 0;
        std::int64_t r0 = 0;
        if (have) {
            j = static_cast<int>(it / tiles);
            const int tile = static_cast<int>(it % tiles), e = expert_of_chunk(pre, experts, j);
            const int tok0 = (j - pre[e]) * kChunk;
            ntok = min(kChunk, counts[e] - tok0);
            r0 = std::int64_t(offsets[e]) + tok0;
            const bf16_t* b[kNT];
            if (gated) {
                col = tile * 8 + g;                                                                 // h column
                const bf16_t* a_lo = w1 + (std::int64_t(e) * 2 * ffn + min(col, ffn - 1)) * hidden;  // gate row
                const bf16_t* a_hi = a_lo + std::int64_t(ffn) * hidden;                              // up row
#pragma unroll
                for (int jj = 0; jj < kNT; ++jj) {
                    const std::int64_t r = r0 + (jj * 8 + g < ntok ? jj * 8 + g : 0);  // past the chunk: never stored
                    b[jj] = xp ? xp + r * hidden : x + std::int64_t(row_token[r]) * hidden;
                }
                if (kVec && pf && t < 2) prefetch_l2((t ? a_hi : a_lo) + kb, 2 * (ke - kb));
                warp_rows_by_tokens<kNT, kVec, kFlavor>(a_lo, a_hi, b, (ntok + 7) / 8, kb, ke, hidden, acc);
            } else {
                col = tile * 16 + g;  // y columns col and col + 8
                const bf16_t* we = w2 + std::int64_t(e) * hidden * ffn;
                const bf16_t* a_lo = we + std::int64_t(min(col, hidden - 1)) * ffn;
                const bf16_t* a_hi = we + std::int64_t(min(col + 8, hidden - 1)) * ffn;
#pragma unroll
                for (int jj = 0; jj < kNT; ++jj) b[jj] = h + (r0 + (jj * 8 + g < ntok ? jj * 8 + g : 0)) * ffn;
                if (kVec && pf && t < 2) prefetch_l2((t ? a_hi : a_lo) + kb, 2 * (ke - kb));
                // The chunk's h: every gate/up item of it counted itself done after its stores (below).
                if (lane == 0) {
                    const std::uint64_t t0 = global_ns();
                    while (load_acquire(done + j) < tiles_gu) {
                        __nanosleep(64);
                        if (global_ns() - t0 > 60'000'000'000ull) __trap();  // a lost count: fail, do not hang
                    }
                }
                __syncwarp();
                warp_rows_by_tokens<kNT, kVec, kFlavor, true>(a_lo, a_hi, b, (ntok + 7) / 8, kb, ke, ffn, acc);
            }
        }
        group_reduce<kNT>(acc, red, split);
        if (!have || part != 0) continue;
#pragma unroll
        for (int jj = 0; jj < kNT; ++jj)
#pragma unroll
            for (int c = 0; c < 2; ++c) {
                const int m = jj * 8 + 2 * t + c;
                if (m >= ntok) continue;
                if (gated) {
                    if (col < ffn) h[(r0 + m) * ffn + col] = silu_gate(acc[jj][c], acc[jj][2 + c]);
                } else {
                    bf16_t* out = y + (r0 + m) * hidden;
                    if (col < hidden) out[col] = f32_to_bf16(acc[jj][c]);
                    if (col + 8 < hidden) out[col + 8] = f32_to_bf16(acc[jj][2 + c]);
                }
            }
        if (gated) {  // release: the warp's stores, then the count (the fence is cumulative over the warp's barrier)
            __syncwarp();
            if (lane == 0) __threadfence(), atomicAdd(done + j, 1);
        }
    }
}

template <int kNT, bool kVec, int kFlavor>
void launch_one(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                const std::int32_t* offsets, int experts, int hidden, int ffn, const bf16_t* w1, const bf16_t* w2,
                bf16_t* h, bf16_t* y, int* sync, std::int64_t chunks, cudaStream_t st) {
    auto k = decode_one_kernel<kNT, kVec, kFlavor>;
    const int smem = decode_smem_bytes<kNT>(experts);
    // Warps an item: enough that a warp streams at most about 1,024 of K (its loads' round trips), so that the last
    // items, which drain alone at the end, are short. MOELAB_DECODE_SPLIT(_DOWN)=1|2|4 forces them (tests).
    auto split_for = [](int K) { return K <= 1024 ? 1 : K <= 2048 ? 2 : 4; };
    int split_gu = env_choice("MOELAB_DECODE_SPLIT", {1, 2, 4}, split_for(hidden));
    int split_dn = env_choice("MOELAB_DECODE_SPLIT_DOWN", {1, 2, 4}, env_choice("MOELAB_DECODE_SPLIT", {1, 2, 4},
                                                                                 split_for(ffn)));
    // Blocks an SM: enough bytes in flight to cover the memory's latency, few enough that an item is short (the
    // drain at the end lasts about one item). MOELAB_DECODE_ONE_BLOCKS=N forces N an SM (0: as many as fit).
    const int per_sm = env_choice("MOELAB_DECODE_ONE_BLOCKS", {0, 1, 2, 3, 4, 6, 8}, 4);
    const int pf = env_choice("MOELAB_DECODE_ONE_PF", {0, 1}, 1);
    const std::int64_t takes = chunks * ((ffn + 7) / 8) * split_gu / kWarps + chunks * ((hidden + 15) / 16) * split_dn /
                                                                                  kWarps + 2;
    const unsigned all = persistent_blocks(k, kThreads, smem, 1LL << 40);
    const unsigned grid = persistent_blocks(k, kThreads, smem,
                                            std::min<std::int64_t>(per_sm ? std::int64_t(device_sms()) * per_sm : all,
                                                                   takes));
    MOE_CUDA_CHECK(cudaMemsetAsync(sync, 0, sizeof(int) * std::size_t(1 + chunks), st));
    k<<<grid, kThreads, smem, st>>>(xp, x, row_token, counts, offsets, experts, hidden, ffn, w1, w2, h, y, split_gu,
                                    split_dn, pf, sync);
    MOE_CUDA_LAUNCH_CHECK("decode_one_kernel");
}

template <bool kVec, int kFlavor, class... Args>
void launch_chunk(int chunk_tokens, Args... args) {
    switch (chunk_tokens) {
        case 8:
            return launch_one<1, kVec, kFlavor>(args...);
        case 16:
            return launch_one<2, kVec, kFlavor>(args...);
        case 32:
            return launch_one<4, kVec, kFlavor>(args...);
        default:
            return launch_one<8, kVec, kFlavor>(args...);
    }
}

}  // namespace

bool launch_decode_one(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
                       const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn,
                       const bf16_t* w1, const bf16_t* w2, bf16_t* h, bf16_t* y, int chunk_tokens, int flavor, bool vec,
                       int* sync, std::int64_t sync_ints, cudaStream_t st) {
    // Chunks: at most one per row, and at most rows / chunk + one partial chunk per expert.
    const std::int64_t chunks = std::min<std::int64_t>(max_rows, max_rows / chunk_tokens + experts);
    if (!sync || sync_ints < 1 + chunks) return false;
#define MOE_ONE_ARGS xp, x, row_token, counts, offsets, experts, hidden, ffn, w1, w2, h, y, sync, chunks, st
    // The two-launch kernels' instantiations: odd shapes element by element, else flavor 3 or 1 (decode_ffn).
    if (!vec) {
        launch_chunk<false, 0>(chunk_tokens, MOE_ONE_ARGS);
    } else if (flavor == 3) {
        launch_chunk<true, 3>(chunk_tokens, MOE_ONE_ARGS);
    } else {
        launch_chunk<true, 1>(chunk_tokens, MOE_ONE_ARGS);
    }
#undef MOE_ONE_ARGS
    return true;
}

}  // namespace moe::gpu::decode_detail
