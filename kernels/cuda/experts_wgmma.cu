// The wgmma expert FFN (experts_wgmma.cuh): one persistent launch of a warp-specialised grouped GEMM for Hopper that
// runs both GEMMs of every expert, gate/up with SiLU(gate)·up in the epilogue and down. Compiled for sm_90a only
// (kernels/CMakeLists.txt). The whole design, with what was measured for each part: kernels/bench/RESULTS.md.
//
// A block is 1 or 2 consumer warpgroups and one more: the producer warp, the storer (or releaser) warp and two gatherer
// warps (gathered rows only; idle otherwise). An item is one expert's tile of up to 64·kWG tokens × kBN weight rows of
// one GEMM; the items are numbered gate/up first (expert by expert, weight tile, token tile innermost, in groups of
// token tiles: locate), then down; a block runs its own number first, then takes the next from a counter in global
// memory. The producer takes an item a few k steps before the current item's last, locates it (expert, tiles, tokens,
// first row) and hands that to the consumers in the slot of the stage it fills first; for each stage (kKS k steps of
// 64) it waits for a free stage of the ring, then asks TMA for the token tiles (A: packed x, or h) and the weight tiles
// (B: kBN/2 gate rows and the matching kBN/2 up rows of w1, or kBN rows of w2), one request each, completing the
// stage's `full` barrier. Gathered rows (nopack) come through cp.async instead: the gatherer warps copy the token
// tile's rows of x (row_token) into the same swizzled layout, each lane's arrival on `full` waiting for its copies; the
// consumers fence the proxies before their MMAs read them. Each consumer warpgroup waits on `full`, issues
// wgmma.m64n{kBN}k16 from the stage (64 tokens each), keeps one batch in flight and frees the previous stage through
// its `empty` barrier. The epilogue forms h = SiLU(gate)·up (gate column c and up column c + kBN/2 are in the same
// thread; hardware bf16 conversions and tanh) or y from the accumulators. With kStaged the tile goes through shared
// memory and the storer writes it out while the consumers go on with the next item's MMAs (TMA stores for a full token
// tile, the warp's own stores of the rows below the expert's tokens for a partial one); without, the consumers store
// from registers. The ring runs on across items.
//
// A down item of expert e needs all of e's h: every gate/up item counts itself done in ready[e] (release, after its
// stores: the storer's after its TMA store is complete; stored from registers, the releaser warp's once every consumer
// thread has handed the item over), and the producer of a down item waits for e's count (acquire) before its first load
// of h; while it waits, it fills the ring's free stages with its weight tiles. Items are taken in number order, so
// every gate/up item is already running or done when a down item is taken: no wait can deadlock, however many blocks
// are resident.
//
// Rows past the expert's tokens (the next expert's, or zeros past the tensor) and weight rows past F or d are computed
// and never stored; K past d or F is zero-filled by TMA.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "kernels/common/bf16.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/experts_common.cuh"
#include "kernels/cuda/experts_wgmma.cuh"
#include "kernels/cuda/experts_wgmma_parts.cuh"
#include "kernels/cuda/hopper.cuh"
#include "kernels/cuda/item_trace.cuh"

namespace moe::gpu {

namespace {
using namespace experts_detail;
using namespace hopper;
using namespace wgmma_parts;

template <int kWG, int kBN, bool kStaged, int kKS>
__global__ void __launch_bounds__(Cfg<kWG, kBN, kStaged, kKS>::kThreads, 1)
    wgmma_ffn_kernel(const __grid_constant__ CUtensorMap map_x, const __grid_constant__ CUtensorMap map_w1,
                     const __grid_constant__ CUtensorMap map_h, const __grid_constant__ CUtensorMap map_w2,
                     const __grid_constant__ CUtensorMap map_y, const __grid_constant__ ShortBoxes boxes,
                     const Args a) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using C = Cfg<kWG, kBN, kStaged, kKS>;
    extern __shared__ unsigned char smem_raw[];
    __shared__ int warp_sums[C::kThreads / 32];  // a word a warp (so staged tiles fit up to 271 experts)
    __shared__ Slot stage_slot[C::kStages];  // the item whose first k step a stage holds
    __shared__ Slot out_slot[2];             // the item whose output round each buffer holds
    __shared__ int out_col[2];               // the round's first column
    __shared__ int tok_g[2][C::kBM / 2];     // gathered rows: each gatherer warp's rows' tokens (-1: none)
    __shared__ GatherQueue gq;               // gathered rows: the producer's items for the gatherer warps
    __shared__ Order order_s;                // the order the items are taken in (the producer's)
    unsigned char* smem =
        reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) & ~std::uintptr_t(1023));
    const unsigned base = smem_addr(smem);
    const unsigned out_tile = base + C::kStages * C::kStageBytes;
    // full[s] at bars + 8s, empty[s] after them, then staged[b] and out_free[b] for the two output buffers (stored
    // from registers: the consumers' hand-over of gate/up items to the releaser)
    const unsigned bars = out_tile + C::kOutBytes;
    const unsigned staged = bars + 16 * C::kStages, out_free = staged + 16;
    int* pre = reinterpret_cast<int*>(smem + C::kStages * C::kStageBytes + C::kOutBytes + (2 * C::kStages + 4) * 8);
    const int tid = threadIdx.x;
    if (tid == 0) {
        for (int s = 0; s < C::kStages; ++s) {
            // the producer's arrive + the TMA bytes; gathered rows: and each gatherer lane's, once its copies land
            // (or the producer's for them, where a stage is not gathered)
            mbar_init(bars + 8 * s, a.row_token ? 1 + kGatherLanes : 1);
            mbar_init(bars + 8 * (C::kStages + s), 4 * kWG);  // one arrive per consumer warp
        }
        for (int b = 0; b < 2; ++b) {
            mbar_init(staged + 8 * b, 128 * kWG);  // every consumer thread, after its part of the round
            mbar_init(out_free + 8 * b, 32);       // every lane of the storer warp, once done with it (and TMA with it)
        }
        gq.init();
        fence_barrier_init();
        tma_prefetch_map(&map_x), tma_prefetch_map(&map_w1), tma_prefetch_map(&map_h), tma_prefetch_map(&map_w2);
        if constexpr (kStaged) tma_prefetch_map(&map_y);
    }
    if (a.mode == kGateUpOnly) launch_dependents();  // the down launch may take the SMs this grid frees
    const int tiles = chunk_prefix(a.counts, a.experts, C::kBM, pre, warp_sums);  // barriers: also orders the init
    const int nt_gated = (a.ffn + kBN / 2 - 1) / (kBN / 2), nt_down = (a.hidden + kBN - 1) / kBN;
    const std::int64_t gated_items = std::int64_t(tiles) * nt_gated;
    const std::int64_t first = a.mode == kDownOnly ? gated_items : 0;
    const std::int64_t last = a.mode == kGateUpOnly ? gated_items : gated_items + std::int64_t(tiles) * nt_down;
    if (a.mode != kGateUpOnly) zero_padding_rows(a.counts, a.offsets, a.experts, a.hidden, a.y);
    if (a.mode == kDownOnly) wait_for_producer();  // h is complete and visible from here on
    const int wg = tid / 128, warp = (tid / 32) % 4, lane = tid % 32;
    // Counts a gate/up item of expert e done, once its h is written (a release: every store before it, this thread's
    // or seen through a barrier, is visible to whoever acquires the count).
    auto count_done = [&](int e) { __threadfence(), atomicAdd(a.sched + 1 + e, 1); };

    // The storer (the second warp of the producer warpgroup): writes out each staged round of 64 columns, in
    // order, alternating between the two buffers, then frees the buffer. A full token tile goes out as a TMA store
    // (lane 0); a partial one is copied by the warp, row by row up to the expert's tokens (a TMA box would overwrite
    // the next expert's rows). After its last round a gate/up tile counts itself done.
    auto storer = [&] {
        wait_for_producer();  // (its counts follow the counters' reset)
        for (int ep = 0;; ++ep) {
            const int buf = ep & 1;
            mbar_wait(staged + 8 * buf, (ep >> 1) & 1);
            const Slot sl = out_slot[buf];
            const int c0 = out_col[buf];
            if (sl.it < 0) {
                if (lane == 0) bulk_wait_all<false>();  // every store complete before the grid is
                return;
            }
            const unsigned tile = out_tile + buf * C::kBufBytes;
            const int cols = sl.gated ? kBN / 2 : kBN, col0 = sl.nt * cols, M = sl.gated ? a.ffn : a.hidden;
            const bool count = sl.gated && a.mode == kBoth && c0 + 64 >= cols;  // the tile's last round
            if (sl.ntok == C::kBM) {
                if (lane == 0) {
                    if (col0 + c0 < M) tma_store_2d(sl.gated ? &map_h : &map_y, tile, col0 + c0, sl.row0);
                    bulk_commit();
                    if (count) {  // all of the tile's h must be in global memory before the count says so
                        bulk_wait_all<false>();
                        asm volatile("fence.proxy.async.global;\n" ::: "memory");
                        count_done(sl.e);
                    } else {
                        bulk_wait_all<true>();
                    }
                }
            } else {
                // Lane l copies 16-byte piece l % 8 of rows l / 8, l / 8 + 4, ... (the swizzle of stage_round), rows
                // below the expert's tokens only.
                bf16_t* out = sl.gated ? a.h : a.y;
                const int p = lane % 8, n = col0 + c0 + 8 * p;  // M % 8 == 0: the piece is inside or past M
                if (n < M)
                    for (int m = lane / 8; m < sl.ntok; m += 4) {
                        const unsigned at = tile + m * 128 + ((p ^ (m % 8)) << 4);
                        uint4 v;
                        asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                                     : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                                     : "r"(at));
                        *reinterpret_cast<uint4*>(out + (std::int64_t(sl.row0) + m) * M + n) = v;
                    }
                if (count) __threadfence();  // each lane's stores (of every round), before the count below
                __syncwarp();
                if (count && lane == 0) atomicAdd(a.sched + 1 + sl.e, 1);
            }
            mbar_arrive(out_free + 8 * buf);  // each lane's reads of the slot and the round come before its arrival
        }
    };

    // The releaser (the second warp of the producer warpgroup, stored from registers, both GEMMs): counts each gate/up
    // item done once every consumer thread has handed it over after its stores (each arrival on `staged` releases the
    // thread's stores to this warp, and the fence, microseconds under load, makes them visible before the count).
    auto releaser = [&] {
        wait_for_producer();
        for (int ep = 0;; ++ep) {
            const int buf = ep & 1;
            mbar_wait(staged + 8 * buf, (ep >> 1) & 1);
            const Slot sl = out_slot[buf];
            if (sl.it < 0) return;
            if (lane == 0) count_done(sl.e);
            mbar_arrive(out_free + 8 * buf);  // (lane 0's after its count: the slot is read by then)
        }
    };
    int posted = 0;  // gathered rows: the items the producer's lane 0 has posted to the gatherers (GatherQueue)
    auto post = [&](const Gather& g) { gq.post(g, posted); };

    // The producer (the first warp of that warpgroup): takes items, locates each one and passes it to the consumers
    // through its first stage, and fills the ring. Lane 0 takes the numbers, writes the slots and asks TMA for the
    // tiles; the other lanes follow the same items. With gathered rows the gatherer warps copy the gate/up token tiles
    // (rows of x through row_token) with cp.async, and lane 0 arrives for them on the stages they do not fill.
    auto producer = [&] {
        const bool lead = lane == 0, gather = a.row_token != nullptr;
        // The next item, located while this item's stages go out (the counter's round trip and the plan's reads are
        // off the ring's path).
        auto prepare = [&](std::int64_t it) {
            Next n{it, Item{0, 0, 0, false}, 0, 0};
            if (it < last) {
                bool g;
                std::int64_t j;
                order_item(order_s, it, g, j);
                n.w = locate(g, j, pre, a.experts, nt_gated, nt_down, a.group, a.snake != 0);
                n.cnt = a.counts[n.w.e], n.off = a.offsets[n.w.e];
            }
            return n;
        };
        int v = 0;  // lane 0's number from the counter, read by the warp once it is needed
        // The order of the items, kept in shared memory (the producer's registers are few)
        if (lead)
            order_s = a.mode == kBoth ? make_order(gated_items, std::int64_t(tiles) * nt_down, pre, a.experts, nt_down,
                                                   nt_gated, int(gridDim.x), a.early)
                                      : Order{gated_items, std::int64_t(tiles) * nt_down};
        __syncwarp();
        // The counters are zeroed by the kernel launched just before this one (reset_sched_kernel, programmatically):
        // the first read of one waits for it (a no-op after an ordinary launch). The first item is the block's own
        // number (a.own_first: its stages go out before that wait), or the counter's; its numbers follow the grid's.
        bool reset = false;
        auto settle = [&] { reset ? void() : (wait_for_producer(), void(reset = true)); };
        const std::int64_t taken = first + (a.own_first ? gridDim.x : 0);
        if (!a.own_first && (settle(), lead)) v = atomicAdd(a.sched, 1);
        int c = 0;
        Next nx = prepare(a.own_first ? first + blockIdx.x : taken + __shfl_sync(~0u, v, 0));
        for (;;) {
            const std::int64_t it = nx.it;
            const int s0 = c % C::kStages;
            Slot sl{-1, 0, 0, 0, 0, 0, 0};
            if (it < last)
                sl = Slot{it,
                          nx.w.e,
                          nx.w.nt,
                          nx.w.mt,
                          min(C::kBM, nx.cnt - nx.w.mt * C::kBM),
                          nx.off + nx.w.mt * C::kBM,
                          int(nx.w.gated)};
            // The gatherers read the item's tokens while the stage is freed (they wait for it themselves).
            const bool gathered = gather && it < last && sl.gated;
            if (lead && gathered) post(Gather{sl.row0, sl.ntok, c, 0});
            mbar_wait(bars + 8 * (C::kStages + s0), ((c / C::kStages) & 1) ^ 1);
            if (it >= last) {  // tell the consumers there is no more, handing the stage over as an item's first
                if (lead) {    // step is (one box of x through TMA)
                    stage_slot[s0] = sl;
                    mbar_arrive_expect_tx(bars + 8 * s0, gather ? 128 : C::kABytes);  // gathered: a box of a row
                    load_k_tiles<kKS>(base + s0 * C::kStageBytes, &map_x, bars + 8 * s0, 0, 0);
                    if (gather) mbar_arrive_count(bars + 8 * s0, kGatherLanes), post(Gather{0, 0, 0, 1});
                }
                return;
            }
            std::uint64_t* tr = a.trace && lead ? a.trace + it * kTraceWords : nullptr;
            if (tr) tr[0] = sm_id(), tr[1] = tr[2] = global_ns(), tr[5] = unsigned(sl.gated) | (unsigned(sl.e) << 1);
            const CUtensorMap* ma = sl.gated ? &map_x : &map_h;
            const CUtensorMap* mb = sl.gated ? &map_w1 : &map_w2;
            const int K = sl.gated ? a.hidden : a.ffn, nk = (K + C::kStepK - 1) / C::kStepK;
            // A partial token tile: a box of its tokens rounded up to 16 rows
            int a_bytes = C::kABytes;
            if (a.short_box && !gathered && sl.ntok <= C::kBM - 16) {
                const int b = (sl.ntok - 1) / 16;
                ma = sl.gated ? &boxes.x[b] : &boxes.h[b];
                a_bytes = 16 * (b + 1) * C::kStepK * 2;
            }
            // Stage c's weight tile in one request (its `full` barrier expects the token tile too, from load_a): the
            // kBN/2 gate rows, then the matching up rows (a 3-D box: e's halves are 2e and 2e + 1), or kBN rows of w2.
            auto load_b = [&](int kt, int cc) {
                if (!lead) return;
                const unsigned full = bars + 8 * (cc % C::kStages);
                const unsigned sb = base + (cc % C::kStages) * C::kStageBytes + C::kABytes;
                mbar_arrive_expect_tx(full, gathered ? C::kBBytes : C::kBBytes + a_bytes);
                if (kKS > 1 && sl.gated)
                    tma_load_4d(sb, mb, full, 0, sl.nt * (kBN / 2), 2 * sl.e, kt * kKS);
                else if (sl.gated)
                    tma_load_3d(sb, mb, full, kt * kBK, sl.nt * (kBN / 2), 2 * sl.e);
                else
                    load_k_tiles<kKS>(sb, mb, full, kt, sl.e * a.hidden + sl.nt * kBN);
            };
            // Stage c's token tile (gathered: the gatherer warps copy it).
            auto load_a = [&](int kt, int cc) {
                const unsigned full = bars + 8 * (cc % C::kStages), sa = base + (cc % C::kStages) * C::kStageBytes;
                if (gathered || !lead) return;
                load_k_tiles<kKS>(sa, ma, full, kt, sl.row0);
                if (gather) mbar_arrive_count(full, kGatherLanes);  // the gatherers' arrivals, on a stage they skip
            };
            int early = 0;                       // k steps whose weights were asked for before the wait
            if (!sl.gated && a.mode == kBoth) {  // all of the expert's h must be written
                settle();
                const int need = (pre[sl.e + 1] - pre[sl.e]) * nt_gated;
                if (a.preload && load_acquire(a.sched + 1 + sl.e) < need) {
                    // The weights do not depend on h: fill the stages that are free (or being freed by the
                    // consumers' earlier items) with them while the expert's gate/up items finish elsewhere.
                    early = min(nk, C::kStages - 1);
                    for (int i = 0; i < early; ++i) {
                        if (i > 0)
                            mbar_wait(bars + 8 * (C::kStages + (c + i) % C::kStages), (((c + i) / C::kStages) & 1) ^ 1);
                        if (i == 0 && lead) stage_slot[s0] = sl;
                        load_b(i, c + i);
                    }
                }
                const std::uint64_t t0 = global_ns();
                while (load_acquire(a.sched + 1 + sl.e) < need) {
                    __nanosleep(200);
                    if (global_ns() - t0 > 60'000'000'000ull) __trap();  // a lost count: fail, do not hang
                }
                asm volatile("fence.proxy.async.global;\n" ::: "memory");  // TMA reads what the stores wrote
                if (tr) tr[2] = global_ns();
            }
            if (early == 0 && lead) stage_slot[s0] = sl;  // (else written before the stage's first arrival, as here)
            // The next number: asked for `ahead` k steps before this item's last (its wait for h is behind it), read
            // and located a step later, so the next item's first stage goes out as soon as the ring has room.
            const int ask = max(0, nk - a.ahead), read = min(nk - 1, ask + 1);
            for (int kt = 0; kt < nk; ++kt, ++c) {
                if (kt == ask && (settle(), lead)) v = atomicAdd(a.sched, 1);
                if (kt == read) nx = prepare(taken + __shfl_sync(~0u, v, 0));
                if (kt < early) {  // its weights are on the way already
                    load_a(kt, c);
                    continue;
                }
                if (kt > 0) mbar_wait(bars + 8 * (C::kStages + c % C::kStages), ((c / C::kStages) & 1) ^ 1);
                load_b(kt, c);
                load_a(kt, c);
            }
        }
    };

    // The consumer warpgroups: the MMAs and the epilogue of each item.
    auto consumers = [&] {
        // A stage is free once this warp is done with it: every lane's reads of it (the MMAs) come before lane 0's
        // arrival.
        auto release = [&](int stage) {
            __syncwarp();
            if (lane == 0) mbar_arrive(bars + 8 * (C::kStages + stage));
        };
        // The output tile is handed to the storer in rounds of 64 columns, through buffer ep % 2: wait until the
        // buffer is free (`out_free`), write this thread's part, then publish the item (or -1: no more) and the
        // round's first column (`staged`).
        int ep = 0;
        auto wait_free = [&] { mbar_wait(out_free + 8 * (ep & 1), ((ep >> 1) & 1) ^ 1); };
        auto publish = [&](const Slot& sl, int c0) {
            if (tid == 0) out_slot[ep & 1] = sl, out_col[ep & 1] = c0;
            fence_proxy_async_smem();
            mbar_arrive(staged + 8 * (ep & 1));
            ++ep;
        };
        // Stored from registers: a gate/up item goes to the releaser once this thread's stores are issued.
        auto hand_over = [&](const Slot& sl) {
            if (tid == 0) out_slot[ep & 1] = sl;
            mbar_arrive(staged + 8 * (ep & 1));
            ++ep;
        };
        // The ring position: stage s of the ring, in its phase of parity ph. The matrix descriptors of this warpgroup's
        // token rows and of the weight tile in stage 0 are formed once; a stage, and a k16 step inside it, only add to
        // their low words (the start address in 16-byte units, below 2^14 for any shared memory address: no carry
        // leaves the field). No division and no 64-bit arithmetic in the loop (seventeenth session).
        unsigned s = 0, ph = 0;
        const std::uint64_t da0 = smem_desc(base + wg * 64 * kBK * 2), db0 = smem_desc(base + C::kABytes);
        const unsigned a_lo0 = unsigned(da0), b_lo0 = unsigned(db0), d_hi = unsigned(da0 >> 32);
        constexpr unsigned kStageW = C::kStageBytes / 16;
        auto desc = [&](unsigned lo) { return (std::uint64_t(d_hi) << 32) | lo; };
        for (;;) {
            mbar_wait(bars + 8 * s, ph);
            // Lane 0 reads the item and passes it on: the only read of the slot is by the thread whose arrival on
            // `empty` frees it, so the producer's next write of the slot is ordered after it without relying on the
            // __syncwarp before that arrival.
            const Slot w = warp_broadcast(stage_slot[s], lane);
            const std::int64_t it = w.it;
            if (it < 0) {
                if constexpr (kStaged)
                    wait_free(), publish(w, 0);
                else if (a.mode == kBoth)
                    wait_free(), hand_over(w);
                return;
            }
            std::uint64_t* tr = a.trace && tid == 0 ? a.trace + it * kTraceWords : nullptr;
            if (tr) tr[3] = global_ns();
            // the second warpgroup's end of MMAs and of its epilogue (words 7 and 8)
            std::uint64_t* tr2 = kWG == 2 && a.trace && tid == 128 ? a.trace + it * kTraceWords : nullptr;
            auto ended = [&] { tr ? void(tr[4] = global_ns()) : void(), tr2 ? void(tr2[8] = global_ns()) : void(); };
            const int K = w.gated ? a.hidden : a.ffn, nk = (K + C::kStepK - 1) / C::kStepK, ntok = w.ntok;
            float acc[C::kAcc];
#pragma unroll
            for (int i = 0; i < C::kAcc; ++i) acc[i] = 0.f;
            fence_operands(acc);
            // A warpgroup whose 64 rows are all past the expert's tokens (the second one in an expert's last, partial
            // tile) issues no MMAs: the first has the tensor cores to itself. It still frees the stages it is given.
            const bool live = !a.skip_idle || 64 * wg < ntok;
            // Gathered token tiles were written by cp.async, outside the async proxy the MMAs read through.
            const bool gathered = a.row_token != nullptr && w.gated;
            // 16-byte units from a stage's first token tile to its second (kKS = 2): a short box (the producer's
            // load_a) holds the two k tiles of its rows one after the other
            const unsigned a_sub = kKS == 1                             ? 0u
                                   : a.short_box && ntok <= C::kBM - 16 ? (ntok + 15) / 16 * 128
                                                                        : C::kASub / 16;
            // Every k step: wait for the stage, issue its MMAs, then free the stage before it once those are done (one
            // batch stays in flight).
            auto k_steps = [&](auto gathered_c) {
                unsigned prev = 0;
                for (int kt = 0; kt < nk; ++kt) {
                    if (kt > 0) mbar_wait(bars + 8 * s, ph);
                    if constexpr (decltype(gathered_c)::value) fence_proxy_async_smem();
                    if (live) {
                        const unsigned la = a_lo0 + s * kStageW, lb = b_lo0 + s * kStageW;
                        wgmma_fence();
#pragma unroll
                        for (int k = 0; k < C::kStepK / 16; ++k)  // +32 bytes (2 units) per k16 in a k tile
                            wgmma_step<kBN>(acc, desc(la + (k / 4) * a_sub + 2 * (k % 4)),
                                            desc(lb + (k / 4) * (C::kBSub / 16) + 2 * (k % 4)));
                        wgmma_commit();
                    }
                    wgmma_wait<1>();  // the previous step's MMAs are done: its stage is free
                    if (kt > 0) release(prev);
                    prev = s;
                    if (++s == C::kStages) s = 0, ph ^= 1;
                }
                wgmma_wait<0>();
                fence_operands(acc);
                release(prev);
            };
            if (gathered)
                k_steps(std::true_type{});
            else
                k_steps(std::false_type{});
            if (tr) tr[6] = global_ns();
            if (tr2) tr2[7] = global_ns();

            // Epilogue. This thread's accumulators: rows 64·wg + 16·warp + lane/4 (+ 8), column pairs
            // 8j + 2·(lane % 4).
            const int row = 64 * wg + 16 * warp + lane / 4, col = 2 * (lane % 4);
            // Through shared memory: the storer writes it out, and counts gate/up done
            if constexpr (kStaged) {
                auto round = [&](auto r, auto gated) {
                    constexpr int c0 = 64 * decltype(r)::value;
                    wait_free();
                    stage_round<kBN, c0, decltype(gated)::value>(acc, out_tile + (ep & 1) * C::kBufBytes, row, col,
                                                                 ntok);
                    publish(w, c0);
                };
                if (w.gated)
                    unroll<kBN / 128>([&](auto r) { round(r, std::true_type{}); });
                else
                    unroll<kBN / 64>([&](auto r) { round(r, std::false_type{}); });
                ended();
                continue;
            }
            // Straight from registers; rows past the expert's tokens are the next expert's and are not written.
            const std::int64_t r0 = w.row0;
            const int M = w.gated ? a.ffn : a.hidden, col0 = w.nt * (w.gated ? kBN / 2 : kBN);
            bf16_t* out = w.gated ? a.h : a.y;
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const int m = row + 8 * half;
                if (m >= ntok) continue;
                bf16_t* o = out + (r0 + m) * M;
                if (w.gated) {
#pragma unroll
                    for (int j = 0; j < kBN / 16; ++j) {
                        const int n = col0 + 8 * j + col;
                        if (n < M) *reinterpret_cast<unsigned*>(o + n) = out_pair<kBN>(acc, true, j, half);
                    }
                } else {
#pragma unroll
                    for (int j = 0; j < kBN / 8; ++j) {
                        const int n = col0 + 8 * j + col;  // M % 8 == 0: n + 1 < M as well
                        if (n < M) *reinterpret_cast<unsigned*>(o + n) = out_pair<kBN>(acc, false, j, half);
                    }
                }
            }
            if (w.gated && a.mode == kBoth) wait_free(), hand_over(w);  // the releaser counts it done
            ended();
        }
    };

    if (wg == kWG) {  // the producer warps: warp 0 loads, warp 1 stores staged output tiles
        if constexpr (kWG == 2) setmaxnreg<false, 72>();
        if (kStaged && warp == 1)
            storer();
        else if (!kStaged && warp == 1 && a.mode == kBoth)
            releaser();
        else if (warp == 0)
            producer();
        else if (kKS == 1 && warp >= 2 && a.row_token)  // (gathered rows run one k step a stage)
            gather_rows<C>(a, gq, tok_g[warp - 2], bars, base, warp - 2, lane);
    } else {
        if constexpr (kWG == 2) setmaxnreg<true, 216>();
        consumers();
    }
#else
    __trap();  // built for sm_90a only; wgmma_ffn_supported() keeps other devices away
#endif
}

// ---- host side ----

template <int kWG, int kBN, bool kStaged, int kKS>
void launch_wgmma(const Call& q) {
    using C = Cfg<kWG, kBN, kStaged, kKS>;
    const int smem = smem_bytes<kWG, kBN, kStaged, kKS>(q.experts);
    const int room = kSmemMax - static_smem<wgmma_ffn_kernel<kWG, kBN, kStaged, kKS>>();
    MOE_ASSERT(smem <= room, "wgmma: " << q.experts << " experts leave no room for the tile prefix");
    auto k = wgmma_ffn_kernel<kWG, kBN, kStaged, kKS>;
    MOE_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    const Maps m = make_maps(q, C::kBM, kBN);
    const std::int64_t est_tiles = std::min<std::int64_t>(q.max_rows, q.max_rows / C::kBM + q.experts);
    const std::int64_t gated = est_tiles * ((q.ffn + kBN / 2 - 1) / (kBN / 2)),
                       down = est_tiles * ((q.hidden + kBN - 1) / kBN);
    // the item counter and the per-expert counts of gate/up items done (one counter per launch when split), zeroed by
    // a kernel that the FFN's first launch follows programmatically (a memset before it was 0.2-0.7% slower)
    reset_sched_kernel<<<1, 128, 0, q.st>>>(q.sched, q.experts + 2);
    MOE_CUDA_LAUNCH_CHECK("reset_sched_kernel");
    const char* trace = item_trace_path(q.st);
    std::uint64_t* tbuf = trace ? item_trace_buffer(gated + down, q.st) : nullptr;
    auto write_trace = [&] {  // after the launches, when traced
        if (!trace) return;
        const std::string head = "wgmma experts=" + std::to_string(q.experts) + " hidden=" + std::to_string(q.hidden) +
                                 " ffn=" + std::to_string(q.ffn) + " bm=" + std::to_string(C::kBM) +
                                 " bn=" + std::to_string(kBN) + " fused=" + std::to_string(int(q.fused)) +
                                 " staged=" + std::to_string(int(kStaged)) + " ks=" + std::to_string(kKS);
        write_item_trace(trace, tbuf, gated + down, head, q.st);
    };
    Args args = args_of(q, tbuf);
    if (q.fused) {
        launch_after_producer(k, persistent_blocks(k, C::kThreads, smem, gated + down), C::kThreads, smem, q.st, m.x,
                              m.w1, m.h, m.w2, m.y, m.boxes, args);
        MOE_CUDA_LAUNCH_CHECK("wgmma_ffn_kernel");
        write_trace();
        return;
    }
    args.mode = kGateUpOnly;
    launch_after_producer(k, persistent_blocks(k, C::kThreads, smem, gated), C::kThreads, smem, q.st, m.x, m.w1, m.h,
                          m.w2, m.y, m.boxes, args);
    MOE_CUDA_LAUNCH_CHECK("wgmma_ffn_kernel (gate/up)");
    args.mode = kDownOnly;
    args.sched = q.sched + q.experts + 1;  // a fresh item counter
    launch_after_producer(k, persistent_blocks(k, C::kThreads, smem, down), C::kThreads, smem, q.st, m.x, m.w1, m.h,
                          m.w2, m.y, m.boxes, args);
    MOE_CUDA_LAUNCH_CHECK("wgmma_ffn_kernel (down)");
    write_trace();
}

template <int kWG, int kBN>
bool staged_fits(int experts) {
    return smem_bytes<kWG, kBN, true, 1>(experts) + static_smem<wgmma_ffn_kernel<kWG, kBN, true, 1>>() <= kSmemMax;
}

template <int kWG, int kBN>
void launch_wgmma(Call q) {
    if (q.staged && !staged_fits<kWG, kBN>(q.experts)) q.staged = false;  // no room for the tile
    if constexpr (kBN == 128)
        if (q.ks > 1 && !q.staged)
            return q.ks == 3 ? launch_wgmma<1, kBN, false, 3>(q) : launch_wgmma<kWG, kBN, false, 2>(q);
    q.staged ? launch_wgmma<kWG, kBN, true, 1>(q) : launch_wgmma<kWG, kBN, false, 1>(q);
}

}  // namespace

bool wgmma_available() {
    if (env_choice("MOELAB_WGMMA", {0, 1}, 1) == 0) return false;  // 0: as on a device without sm_90 (tests, benches)
    int dev = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
        return false;
    return major == 9 && minor == 0 && encode_fn() != nullptr;
}

bool wgmma_staged_fits(int experts) { return staged_fits<2, 256>(experts); }

bool wgmma_ffn_supported(int hidden, int ffn, const void* xp, const void* x, const void* row_token, const void* w1,
                         const void* w2, const void* h) {
    return (xp != nullptr || (x != nullptr && row_token != nullptr)) &&
           rows_in_16_byte_pieces(hidden, ffn, xp, x, w1, w2, h) && wgmma_available();
}

void wgmma_ffn(const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token, const std::int32_t* counts,
               const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden, int ffn, const bf16_t* w1,
               const bf16_t* w2, bf16_t* h, bf16_t* y, int* sched, double tokens_per_expert, cudaStream_t st) {
    if (max_rows <= 0) return;
    const int tile_tokens = env_choice("MOELAB_WGMMA_TILE", {64, 128}, tokens_per_expert <= 48 ? 64 : 128);
    // 128 weight rows a tile for d <= 2048 up to 96 tokens per expert: twice the down items (the classroom shape's d =
    // 1024 has only 4 of 256 rows an expert), 2-7% faster there from 32 to 96; at 512 256 rows are ahead (RESULTS.md)
    const int bn = env_choice("MOELAB_WGMMA_BN", {128, 256}, hidden <= 2048 && tokens_per_expert <= 96 ? 128 : 256);
    Call q{xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn, w1,
           w2, h, y,         sched,  true,    true,     true,    0,      st};
    q.fused = env_choice("MOELAB_WGMMA_FUSED", {0, 1}, 1) == 1;
    q.skip_idle = env_choice("MOELAB_WGMMA_SKIP", {0, 1}, 1) == 1;
    q.short_box = env_choice("MOELAB_WGMMA_BOX", {0, 1}, 1) == 1;
    // From 3072 tokens per expert an expert's items run in groups of 12 token tiles, every second group's weight tiles
    // backwards, so that what the running items share fits in L2 (S3 at 4096: 144.4 ms against 159.0; RESULTS.md)
    const bool long_rows = tokens_per_expert >= 3072;
    q.group = env_choice("MOELAB_WGMMA_GROUP", {0, 1, 2, 4, 6, 8, 12, 16, 24, 32}, long_rows ? 12 : 0);
    q.snake = env_choice("MOELAB_WGMMA_SNAKE", {0, 1}, long_rows ? 1 : 0) == 1;
    q.staged = env_choice("MOELAB_WGMMA_EPI", {0, 1}, tokens_per_expert >= 128 ? 1 : 0) == 1;
    // The first item is the block's own number (MOELAB_WGMMA_OWN=0: the counter's; RESULTS.md, thirty-fifth session)
    q.own_first = env_choice("MOELAB_WGMMA_OWN", {0, 1}, 1) == 1;
    // Two k steps a stage (Cfg's kKS) where stored from registers with 128-row weight tiles, packed, d, F % 128 == 0:
    // fewer, larger TMA requests (thirty-fourth session); three with 64-token tiles up to 16 tokens per expert
    const bool pairs = !q.staged && bn == 128 && wgmma_two_k_steps(hidden, ffn, xp != nullptr);
    q.ks = pairs ? env_choice("MOELAB_WGMMA_KS", {1, 2, 3}, tile_tokens == 64 && tokens_per_expert <= 16 ? 3 : 2) : 1;
    if (q.ks == 3 && tile_tokens != 64) q.ks = 2;  // (128-token tiles: a stage of 96 KB, two in the ring)
    // The next item is taken 8 k steps before an item's last where the weights bound the size (stored from registers),
    // 4 where the FLOPs do (thirty-third session, RESULTS.md)
    q.ahead = env_choice("MOELAB_WGMMA_AHEAD", {1, 2, 3, 4, 6, 8, 16, 64}, q.staged ? 4 : 8 / q.ks);
    // The down items of the last, partial wave run among the gate/up items (Order): -1, D mod the grid; 0: none; n: n
    // of them with no margin (tests). By default where down items are the longer ones (F > d; RESULTS.md)
    q.early = env_choice("MOELAB_WGMMA_EARLY", {-1, 0, 1, 2, 3, 5, 8}, ffn > hidden ? -1 : 0);
    tile_tokens >= 128 ? (bn == 128 ? launch_wgmma<2, 128>(q) : launch_wgmma<2, 256>(q))
                       : (bn == 128 ? launch_wgmma<1, 128>(q) : launch_wgmma<1, 256>(q));
}

}  // namespace moe::gpu
