// The tail warps of the wgmma expert FFN (experts_wgmma.cu, staged 128 × 256 tiles): an expert's last token tile may
// hold up to kTailTokens tokens past the tile's 128 (chunk_prefix's absorb), and the producer warpgroup's two
// otherwise idle warps compute those few with mma.sync from the same ring stages, so that no item streams its weight
// tile for them alone (kernels/bench/RESULTS.md, twenty-first session: such an item cost two thirds of a full one).
// Device code for sm_90a, included by experts_wgmma.cu only.
//
// Warp q (0 or 1) takes 128 of the weight tile's 256 rows: gate/up, the gate rows 64q..64q+63 and the matching up rows
// (so SiLU(gate)·up is formed in registers); down, the rows 128q..128q+127 of w2. Its A operands come from the stage's
// weight tile through ldmatrix (the 128-byte swizzle TMA wrote), its B operands (the tail's tokens, at most 16: two n8
// blocks) straight from global memory into registers, a k step ahead, so the ring's stages hold nothing more. It frees
// every stage it is handed, its own items' or not, and stores its rows of h or y itself; a gate/up tail counts itself
// done (each warp once) before the expert's down items may read it.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/bf16.hpp"
#include "kernels/cuda/experts_common.cuh"
#include "kernels/cuda/experts_wgmma_parts.cuh"
#include "kernels/cuda/hopper.cuh"

namespace moe::gpu::wgmma_parts {

constexpr int kTailTokens = 16;

// Where the ring is: the stages' base, the barriers, the number of stages and their size.
struct Ring {
    unsigned base, bars;
    int stages, stage_bytes, a_bytes;
};

// This lane's B fragments of one k step (64 of k) for the tail's two n8 token blocks: b[4·kk + 2·j + 0, 1] are
// (k 16·kk + 2·(lane % 4) + 0, 1 and + 8, token 8j + lane / 4); zeros past the tail's tokens and past K.
__device__ __forceinline__ void tail_load_b(unsigned (&b)[16], const bf16_t* const (&row)[2], int k0, int K, int lane) {
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
#pragma unroll
        for (int j = 0; j < 2; ++j)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int k = k0 + 16 * kk + 2 * (lane % 4) + 8 * h;
                b[4 * kk + 2 * j + h] = row[j] && k < K ? __ldg(reinterpret_cast<const unsigned*>(row[j] + k)) : 0u;
            }
}

// The tail warps' loop: every item in the ring's order, as the consumers see them.
__device__ __forceinline__ void tail_warps(const Args& a, const Slot* stage_slot, const Ring& r, int q, int lane) {
    unsigned s = 0, ph = 0;
    auto next = [&] {
        if (++s == unsigned(r.stages)) s = 0, ph ^= 1;
    };
    auto release = [&](unsigned st) {
        __syncwarp();
        if (lane == 0) hopper::mbar_arrive(r.bars + 8 * (r.stages + st));
    };
    for (;;) {
        hopper::mbar_wait(r.bars + 8 * s, ph);
        const Slot w = warp_broadcast(stage_slot[s], lane);
        if (w.it < 0) return;
        const int K = w.gated ? a.hidden : a.ffn, nk = (K + kBK - 1) / kBK, ntail = w.ntok - 128;
        if (ntail <= 0) {  // nothing of ours in it: free its stages as they come
            for (int kt = 0; kt < nk; ++kt) {
                if (kt > 0) hopper::mbar_wait(r.bars + 8 * s, ph);
                release(s);
                next();
            }
            continue;
        }
        // The tail's token rows: packed x (or x through row_token), or h, which the expert's gate/up items wrote and
        // counted (the producer acquired that count; this read of it orders this warp's loads after it too).
        if (!w.gated && a.mode == kBoth) (void)load_acquire(a.sched + 1 + w.e);
        const bf16_t* row[2];
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            const int t = 8 * j + lane / 4;
            const std::int64_t pr = std::int64_t(w.row0) + 128 + t;
            row[j] = t >= ntail    ? nullptr
                     : !w.gated    ? a.h + pr * a.ffn
                     : a.row_token ? a.x + std::int64_t(a.row_token[pr]) * a.hidden
                                   : a.xp + pr * a.hidden;
        }
        // Blocks of 16 weight rows: gate/up, blocks 0-3 the gate rows and 4-7 the matching up rows; down, 8 blocks.
        auto block_row = [&](int i) {
            return w.gated ? (i < 4 ? 64 * q + 16 * i : 128 + 64 * q + 16 * (i - 4)) : 128 * q + 16 * i;
        };
        float acc[8][2][4];
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 2; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
        unsigned b[16], bn[16];
        tail_load_b(b, row, 0, K, lane);
        for (int kt = 0; kt < nk; ++kt) {
            if (kt > 0) hopper::mbar_wait(r.bars + 8 * s, ph);
            if (kt + 1 < nk) tail_load_b(bn, row, (kt + 1) * kBK, K, lane);
            const unsigned wt = r.base + s * r.stage_bytes + r.a_bytes;  // the stage's weight tile
#pragma unroll
            for (int kk = 0; kk < 4; ++kk)
#pragma unroll
                for (int i = 0; i < 8; ++i) {
                    const int rr = block_row(i) + (lane & 7) + ((lane >> 3) & 1) * 8, chunk = 2 * kk + (lane >> 4);
                    unsigned af[4];
                    ldmatrix_x4(af, wt + rr * 128 + ((chunk ^ (rr & 7)) << 4));
                    mma_bf16(acc[i][0], af, b[4 * kk + 0], b[4 * kk + 1]);
                    mma_bf16(acc[i][1], af, b[4 * kk + 2], b[4 * kk + 3]);
                }
            release(s);
            next();
#pragma unroll
            for (int i = 0; i < 16; ++i) b[i] = bn[i];
        }
        // This lane's values: weight row block_row(i) + lane / 4 (+ 8: e = 2, 3), tokens 8j + 2·(lane % 4) (+ 1).
        bf16_t* out = w.gated ? a.h : a.y;
        const int M = w.gated ? a.ffn : a.hidden, col0 = w.nt * (w.gated ? 128 : 256);
        auto store = [&](int i, int j, int e, float v) {
            const int t = 8 * j + 2 * (lane % 4) + (e & 1), c = col0 + block_row(i) + lane / 4 + 8 * (e >> 1);
            if (t < ntail && c < M)
                out[(std::int64_t(w.row0) + 128 + t) * M + c] = bf16_t(pack_bf16x2(v, 0.f) & 0xffffu);
        };
        if (w.gated) {  // the h column is the gate row's (block i, its up rows in block i + 4)
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j)
#pragma unroll
                    for (int e = 0; e < 4; ++e) store(i, j, e, silu_gate_fast(acc[i][j][e], acc[i + 4][j][e]));
        } else {
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j)
#pragma unroll
                    for (int e = 0; e < 4; ++e) store(i, j, e, acc[i][j][e]);
        }
        if (w.gated && a.mode == kBoth) {  // every lane's h rows before the count
            __threadfence();
            __syncwarp();
            if (lane == 0) atomicAdd(a.sched + 1 + w.e, 1);
        }
    }
}

}  // namespace moe::gpu::wgmma_parts
