// The wgmma expert FFN (experts_wgmma.cuh): one persistent launch of a warp-specialised grouped GEMM for Hopper that
// runs both GEMMs of every expert, gate/up with SiLU(gate)·up in the epilogue and down. Compiled for sm_90a only
// (kernels/CMakeLists.txt).
//
// A block is one producer warpgroup and 1 or 2 consumer warpgroups. An item is one expert's tile of up to 64·kWG
// tokens × kBN weight rows of one GEMM; the items are numbered gate/up first (expert by expert, weight tile, token
// tile innermost), then down, and blocks take the next number from a counter in global memory as they go. One thread
// of the producer takes an item, passes its number to the consumers through the stage it fills first, and for each
// k step of 64 waits for a free stage of the ring, then asks TMA for the token tile (A: packed x, or h) and the weight
// tile (B: kBN/2 gate rows and the matching kBN/2 up rows of w1, or kBN rows of w2, in two halves), completing the
// stage's `full` barrier. Each consumer warpgroup waits on `full`, issues four wgmma.m64n{kBN}k16 from the stage (64
// tokens each), keeps one batch in flight and frees the previous stage through its `empty` barrier. The epilogue
// writes h = SiLU(gate)·up (gate column c and up column c + kBN/2 are in the same thread) or y straight from the
// accumulators. The ring runs on across items, so the next item's loads overlap this item's last MMAs and epilogue.
//
// A down item of expert e needs all of e's h: every gate/up item counts itself done in ready[e] (release, after its
// stores), and the producer of a down item waits for e's count (acquire) before its first load of h. Items are
// taken in number order, so every gate/up item is already running or done when a down item is taken: no wait can
// deadlock, however many blocks are resident. The down items of the first experts fill the gate/up tail, and the
// two GEMMs need one launch.
//
// Rows past the expert's tokens (the next expert's, or zeros past the tensor) and weight rows past F or d are
// computed and never stored; K past d or F is zero-filled by TMA.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>

#include "kernels/common/bf16.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/experts_common.cuh"
#include "kernels/cuda/experts_wgmma.cuh"
#include "kernels/cuda/hopper.cuh"

namespace moe::gpu {

namespace {

using namespace experts_detail;
using namespace hopper;

constexpr int kBK = 64;  // k per stage: 128 bytes of every row, one swizzle atom wide
constexpr int kSmemBudget = 200 * 1024;

template <int kWG, int kBN>
struct Cfg {
    static constexpr int kBM = 64 * kWG;              // tokens per tile
    static constexpr int kThreads = 128 * (kWG + 1);  // consumers, then the producer warpgroup
    static constexpr int kABytes = kBM * kBK * 2;
    static constexpr int kBBytes = kBN * kBK * 2;
    static constexpr int kStageBytes = kABytes + kBBytes;
    static constexpr int kStages = kSmemBudget / kStageBytes > 8 ? 8 : kSmemBudget / kStageBytes;
    static constexpr int kAcc = kBN / 2;  // accumulators per consumer thread
};

template <int kWG, int kBN>
int smem_bytes(int experts) {
    using C = Cfg<kWG, kBN>;
    // 1024 for aligning the stages, the stages, 2 barriers per stage, the tile prefix
    return 1024 + C::kStages * C::kStageBytes + 2 * C::kStages * 8 + (experts + 1) * 4;
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
    int* sched;  // [0]: the next item; [1 + e]: expert e's gate/up items done. Zero before the launch.
};

// An item's place: the expert, the weight tile, the token tile and which GEMM.
struct Item {
    int e, nt, mt;
    bool gated;
};

__device__ __forceinline__ Item locate(std::int64_t it, std::int64_t gated_items, const int* pre, int experts,
                                       int nt_gated, int nt_down) {
    Item w;
    w.gated = it < gated_items;
    const std::int64_t j = w.gated ? it : it - gated_items;
    const int ntiles = w.gated ? nt_gated : nt_down;
    w.e = expert_of_chunk(pre, experts, j, ntiles);
    const int ntt = pre[w.e + 1] - pre[w.e];
    const int local = static_cast<int>(j - std::int64_t(pre[w.e]) * ntiles);
    w.nt = local / ntt;
    w.mt = local % ntt;
    return w;
}

__device__ __forceinline__ int load_acquire(const int* p) {
    int v;
    asm volatile("ld.acquire.gpu.global.b32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
    return v;
}
// Consumer warpgroups only (the producer is elsewhere): named barrier 1.
template <int kThreadsN>
__device__ __forceinline__ void consumers_sync() {
    asm volatile("bar.sync 1, %0;\n" ::"n"(kThreadsN) : "memory");
}

template <int kWG, int kBN>
__global__ void __launch_bounds__(Cfg<kWG, kBN>::kThreads, 1)
    wgmma_ffn_kernel(const __grid_constant__ CUtensorMap map_x, const __grid_constant__ CUtensorMap map_w1,
                     const __grid_constant__ CUtensorMap map_h, const __grid_constant__ CUtensorMap map_w2,
                     const Args a) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using C = Cfg<kWG, kBN>;
    extern __shared__ unsigned char smem_raw[];
    __shared__ int warp_sums[32];
    __shared__ std::int64_t stage_item[C::kStages];  // the item whose first k step a stage holds; -1: no more
    unsigned char* smem =
        reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) & ~std::uintptr_t(1023));
    const unsigned base = smem_addr(smem);
    const unsigned bars = base + C::kStages * C::kStageBytes;  // full[s] at bars + 8s, empty[s] after them
    int* pre = reinterpret_cast<int*>(smem + C::kStages * C::kStageBytes + 2 * C::kStages * 8);
    const int tid = threadIdx.x;
    if (tid == 0) {
        for (int s = 0; s < C::kStages; ++s) {
            mbar_init(bars + 8 * s, 1);                       // the producer's arrive + the TMA bytes
            mbar_init(bars + 8 * (C::kStages + s), 4 * kWG);  // one arrive per consumer warp
        }
        fence_barrier_init();
        tma_prefetch_map(&map_x), tma_prefetch_map(&map_w1), tma_prefetch_map(&map_h), tma_prefetch_map(&map_w2);
    }
    if (a.mode == kGateUpOnly) launch_dependents();  // the down launch may take the SMs this grid frees
    const int tiles = chunk_prefix(a.counts, a.experts, C::kBM, pre, warp_sums);  // barriers: also orders the init
    const int nt_gated = (a.ffn + kBN / 2 - 1) / (kBN / 2), nt_down = (a.hidden + kBN - 1) / kBN;
    const std::int64_t gated_items = std::int64_t(tiles) * nt_gated;
    const std::int64_t first = a.mode == kDownOnly ? gated_items : 0;
    const std::int64_t last = a.mode == kGateUpOnly ? gated_items : gated_items + std::int64_t(tiles) * nt_down;
    if (a.mode != kGateUpOnly) zero_padding_rows(a.counts, a.offsets, a.experts, a.hidden, a.y);
    if (a.mode == kDownOnly) wait_for_producer();  // h is complete and visible from here on
    const int wg = tid / 128;

    if (wg == kWG) {  // producer
        if constexpr (kWG == 2) regs_dec<40>();
        if (tid != 128 * kWG) return;
        int c = 0;
        for (;;) {
            const std::int64_t it = first + atomicAdd(a.sched, 1);
            const int s0 = c % C::kStages;
            mbar_wait(bars + 8 * (C::kStages + s0), ((c / C::kStages) & 1) ^ 1);
            if (it >= last) {         // tell the consumers there is no more, handing the stage over as an item's first
                stage_item[s0] = -1;  // step is (one box of x through TMA), which racecheck follows
                mbar_arrive_expect_tx(bars + 8 * s0, C::kABytes);
                tma_load_2d(base + s0 * C::kStageBytes, &map_x, bars + 8 * s0, 0, 0);
                return;
            }
            const Item w = locate(it, gated_items, pre, a.experts, nt_gated, nt_down);
            if (!w.gated && a.mode == kBoth) {  // all of the expert's h must be written
                const int need = (pre[w.e + 1] - pre[w.e]) * nt_gated;
                const std::uint64_t t0 = global_ns();
                while (load_acquire(a.sched + 1 + w.e) < need) {
                    __nanosleep(200);
                    if (global_ns() - t0 > 60'000'000'000ull) __trap();  // a lost count: fail, do not hang
                }
                asm volatile("fence.proxy.async.global;\n" ::: "memory");  // TMA reads what the stores wrote
            }
            const CUtensorMap* ma = w.gated ? &map_x : &map_h;
            const CUtensorMap* mb = w.gated ? &map_w1 : &map_w2;
            const int K = w.gated ? a.hidden : a.ffn, nk = (K + kBK - 1) / kBK;
            const int row0 = a.offsets[w.e] + w.mt * C::kBM;
            // gate/up: the kBN/2 gate rows, then the matching up rows; down: kBN rows of w2 in two halves
            const int w0 = w.gated ? w.e * 2 * a.ffn + w.nt * (kBN / 2) : w.e * a.hidden + w.nt * kBN;
            const int second = w.gated ? a.ffn : kBN / 2;
            stage_item[s0] = it;
            for (int kt = 0; kt < nk; ++kt, ++c) {
                const int s = c % C::kStages;
                const unsigned full = bars + 8 * s;
                if (kt > 0) mbar_wait(bars + 8 * (C::kStages + s), ((c / C::kStages) & 1) ^ 1);
                mbar_arrive_expect_tx(full, C::kStageBytes);
                const unsigned sa = base + s * C::kStageBytes, sb = sa + C::kABytes;
                tma_load_2d(sa, ma, full, kt * kBK, row0);
                tma_load_2d(sb, mb, full, kt * kBK, w0);
                tma_load_2d(sb + C::kBBytes / 2, mb, full, kt * kBK, w0 + second);
            }
        }
    }

    // consumers
    if constexpr (kWG == 2) regs_inc<232>();
    const int warp = (tid / 32) % 4, lane = tid % 32;
    // A stage is free once this warp is done with it: every lane's reads of it (the MMAs, stage_item) come before
    // lane 0's arrival.
    auto release = [&](int stage) {
        __syncwarp();
        if (lane == 0) mbar_arrive(bars + 8 * (C::kStages + stage));
    };
    int c = 0;
    for (;;) {
        mbar_wait(bars + 8 * (c % C::kStages), (c / C::kStages) & 1);
        // Lane 0 reads the item and passes it on: the only read of the slot is by the thread whose arrival on
        // `empty` frees it, so the producer's next write of the slot is ordered after it without relying on the
        // __syncwarp before that arrival.
        const std::int64_t it = __shfl_sync(~0u, lane == 0 ? stage_item[c % C::kStages] : 0, 0);
        if (it < 0) return;
        const Item w = locate(it, gated_items, pre, a.experts, nt_gated, nt_down);
        const int K = w.gated ? a.hidden : a.ffn, nk = (K + kBK - 1) / kBK;
        const int ntok = min(C::kBM, a.counts[w.e] - w.mt * C::kBM);
        float acc[C::kAcc];
#pragma unroll
        for (int i = 0; i < C::kAcc; ++i) acc[i] = 0.f;
        fence_operands(acc);
        for (int kt = 0; kt < nk; ++kt, ++c) {
            const int s = c % C::kStages;
            if (kt > 0) mbar_wait(bars + 8 * s, (c / C::kStages) & 1);
            const unsigned sa = base + s * C::kStageBytes + wg * 64 * kBK * 2;
            const unsigned sb = base + s * C::kStageBytes + C::kABytes;
            const std::uint64_t da = smem_desc(sa), db = smem_desc(sb);
            wgmma_fence();
#pragma unroll
            for (int k = 0; k < kBK / 16; ++k) wgmma_step<kBN>(acc, da + 2 * k, db + 2 * k);  // +32 bytes per k16
            wgmma_commit();
            wgmma_wait<1>();  // the previous step's MMAs are done: its stage is free
            if (kt > 0) release((c - 1) % C::kStages);
        }
        wgmma_wait<0>();
        fence_operands(acc);
        release((c - 1) % C::kStages);

        // Epilogue from registers: rows 64·wg + 16·warp + lane/4 (+ 8), column pairs 8j + 2·(lane % 4).
        const std::int64_t r0 = std::int64_t(a.offsets[w.e]) + w.mt * C::kBM;
        const int row = 64 * wg + 16 * warp + lane / 4, col = 2 * (lane % 4);
        const int M = w.gated ? a.ffn : a.hidden;
        bf16_t* out = w.gated ? a.h : a.y;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int m = row + 8 * half;
            if (m >= ntok) continue;
            bf16_t* o = out + (r0 + m) * M;
            if (w.gated) {
#pragma unroll
                for (int j = 0; j < kBN / 16; ++j) {
                    const int f = w.nt * (kBN / 2) + 8 * j + col;
                    if (f >= M) continue;  // M % 8 == 0: f + 1 < M as well
                    const int g = 4 * j + 2 * half, u = 4 * (j + kBN / 16) + 2 * half;
                    const bf16_t h0 = silu_gate(acc[g], acc[u]), h1 = silu_gate(acc[g + 1], acc[u + 1]);
                    *reinterpret_cast<unsigned*>(o + f) = unsigned(h0) | (unsigned(h1) << 16);
                }
            } else {
#pragma unroll
                for (int j = 0; j < kBN / 8; ++j) {
                    const int n = w.nt * kBN + 8 * j + col;
                    if (n >= M) continue;
                    const int q = 4 * j + 2 * half;
                    *reinterpret_cast<unsigned*>(o + n) =
                        unsigned(f32_to_bf16(acc[q])) | (unsigned(f32_to_bf16(acc[q + 1])) << 16);
                }
            }
        }
        if (w.gated && a.mode == kBoth) {  // count this gate/up item done once every consumer's stores are out
            __threadfence();
            consumers_sync<128 * kWG>();
            if (tid == 0) {  // a release: the fence after the barrier covers every consumer's stores it has seen
                __threadfence();
                atomicAdd(a.sched + 1 + w.e, 1);
            }
        }
    }
#else
    __trap();  // built for sm_90a only; wgmma_ffn_supported() keeps other devices away
#endif
}

// ---- host side ----

PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
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

// A row-major bf16 matrix [rows, cols] read in boxes of 64 columns × box_rows rows with the 128-byte swizzle.
CUtensorMap tile_map(const bf16_t* p, std::int64_t rows, int cols, int box_rows) {
    CUtensorMap m{};
    const cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)};
    const cuuint64_t strides[1] = {cuuint64_t(cols) * 2};
    const cuuint32_t box[2] = {cuuint32_t(kBK), cuuint32_t(box_rows)};
    const cuuint32_t elem[2] = {1, 1};
    const CUresult r = encode_fn()(&m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<bf16_t*>(p), dims, strides, box,
                                   elem, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                   CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    MOE_ASSERT(r == CUDA_SUCCESS,
               "cuTensorMapEncodeTiled failed (" << int(r) << ") for a " << rows << " × " << cols << " bf16 matrix");
    return m;
}

template <int kWG, int kBN>
void launch_wgmma(const bf16_t* xp, const std::int32_t* counts, const std::int32_t* offsets, std::int64_t max_rows,
                  int experts, int hidden, int ffn, const bf16_t* w1, const bf16_t* w2, bf16_t* h, bf16_t* y,
                  int* sched, bool fused, cudaStream_t st) {
    using C = Cfg<kWG, kBN>;
    const int smem = smem_bytes<kWG, kBN>(experts);
    auto k = wgmma_ffn_kernel<kWG, kBN>;
    MOE_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    // Weight boxes of half a tile: the gate or the up rows, or half of w2's rows.
    const CUtensorMap mx = tile_map(xp, max_rows, hidden, C::kBM);
    const CUtensorMap mw1 = tile_map(w1, std::int64_t(experts) * 2 * ffn, hidden, kBN / 2);
    const CUtensorMap mh = tile_map(h, max_rows, ffn, C::kBM);
    const CUtensorMap mw2 = tile_map(w2, std::int64_t(experts) * hidden, ffn, kBN / 2);
    const std::int64_t est_tiles = std::min<std::int64_t>(max_rows, max_rows / C::kBM + experts);
    const std::int64_t gated = est_tiles * ((ffn + kBN / 2 - 1) / (kBN / 2)),
                       down = est_tiles * ((hidden + kBN - 1) / kBN);
    // the item counter and the per-expert counts of gate/up items done (one counter per launch when split)
    MOE_CUDA_CHECK(cudaMemsetAsync(sched, 0, sizeof(int) * (experts + 2), st));
    Args args{counts, offsets, experts, hidden, ffn, kBoth, h, y, sched};
    if (fused) {
        k<<<persistent_blocks(k, C::kThreads, smem, gated + down), C::kThreads, smem, st>>>(mx, mw1, mh, mw2, args);
        MOE_CUDA_LAUNCH_CHECK("wgmma_ffn_kernel");
        return;
    }
    args.mode = kGateUpOnly;
    k<<<persistent_blocks(k, C::kThreads, smem, gated), C::kThreads, smem, st>>>(mx, mw1, mh, mw2, args);
    MOE_CUDA_LAUNCH_CHECK("wgmma_ffn_kernel (gate/up)");
    args.mode = kDownOnly;
    args.sched = sched + experts + 1;  // a fresh item counter
    launch_after_producer(k, persistent_blocks(k, C::kThreads, smem, down), C::kThreads, smem, st, mx, mw1, mh, mw2,
                          args);
    MOE_CUDA_LAUNCH_CHECK("wgmma_ffn_kernel (down)");
}

int env_choice(const char* name, int a, int b, int fallback) {
    if (const char* env = std::getenv(name); env && *env) {
        const int v = std::atoi(env);
        if (v == a || v == b) return v;
    }
    return fallback;
}

}  // namespace

bool wgmma_available() {
    int dev = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
        return false;
    return major == 9 && minor == 0 && encode_fn() != nullptr;
}

bool wgmma_ffn_supported(int hidden, int ffn, const void* xp, const void* w1, const void* w2, const void* h) {
    return xp != nullptr && rows_in_16_byte_pieces(hidden, ffn, xp, xp, w1, w2, h) && wgmma_available();
}

int wgmma_tile_tokens(double tokens_per_expert) {
    return env_choice("MOELAB_WGMMA_TILE", 64, 128, tokens_per_expert <= 48 ? 64 : 128);
}

void wgmma_ffn(const bf16_t* xp, const std::int32_t* counts, const std::int32_t* offsets, std::int64_t max_rows,
               int experts, int hidden, int ffn, const bf16_t* w1, const bf16_t* w2, bf16_t* h, bf16_t* y, int* sched,
               int tile_tokens, cudaStream_t st) {
    if (max_rows <= 0) return;
    const int bn = env_choice("MOELAB_WGMMA_BN", 128, 256, 256);
    const bool fused = env_choice("MOELAB_WGMMA_FUSED", 0, 1, 1) == 1;
#define MOE_WG_ARGS xp, counts, offsets, max_rows, experts, hidden, ffn, w1, w2, h, y, sched, fused, st
    if (tile_tokens >= 128)
        bn == 128 ? launch_wgmma<2, 128>(MOE_WG_ARGS) : launch_wgmma<2, 256>(MOE_WG_ARGS);
    else
        bn == 128 ? launch_wgmma<1, 128>(MOE_WG_ARGS) : launch_wgmma<1, 256>(MOE_WG_ARGS);
#undef MOE_WG_ARGS
}

}  // namespace moe::gpu
