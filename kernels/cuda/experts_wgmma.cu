// The wgmma expert FFN (experts_wgmma.cuh): two persistent launches of one warp-specialised grouped GEMM for Hopper,
// gate/up with SiLU(gate)·up in the epilogue, then down. Compiled for sm_90a only (kernels/CMakeLists.txt).
//
// A block is one producer warpgroup and 1 or 2 consumer warpgroups. One thread of the producer walks the block's
// items (an item: one expert's tile of up to 64·kWG tokens × kBN weight rows) and their k steps of 64, and for each
// step waits for a free stage of the ring, then asks TMA for the token tile (A: packed x, or h) and the weight tile
// (B: kBN/2 gate rows and the matching kBN/2 up rows of w1, or kBN rows of w2), completing the stage's `full`
// barrier. Each consumer warpgroup waits on `full`, issues four wgmma.m64n{kBN}k16 from the stage (64 tokens each),
// keeps one batch in flight and frees the previous stage through its `empty` barrier. Its epilogue writes h =
// SiLU(gate)·up (gate column c and up column c + kBN/2 are in the same thread) or y straight from the accumulators.
// The ring runs on across items, so the next item's loads overlap this item's last MMAs and epilogue.
//
// Rows past the expert's tokens (the next expert's, or zeros past the tensor) and weight rows past F or d are
// computed and never stored; K past d or F is zero-filled by TMA.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <utility>

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

// One GEMM over every expert. Gated: A = x rows (map_a over packed x [rows, d]), B = w1 (map_b over [E·2F, d]),
// out = h [rows, F] with M = F. Down: A = h (map_a over [rows, F]), B = w2 (map_b over [E·d, F]), out = y [rows, d]
// with M = d, whose padding rows it zeroes. K: d, then F.
// kMC = 2: blocks run in clusters of two on neighbouring token tiles of the same expert and weight tile; each block's
// producer loads half of the weight tile and multicasts it to both, so every block reads a quarter less from L2 per
// MMA (the weight tile is shared). A stage is free only when the consumers of both blocks have released it.
template <int kWG, int kBN, bool kGated, int kMC>
__global__ void __launch_bounds__(Cfg<kWG, kBN>::kThreads, 1)
    wgmma_gemm_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b,
                      const std::int32_t* counts, const std::int32_t* offsets, int experts, int K, int M, bf16_t* out) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using C = Cfg<kWG, kBN>;
    extern __shared__ unsigned char smem_raw[];
    __shared__ int warp_sums[32];
    unsigned char* smem =
        reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) & ~std::uintptr_t(1023));
    const unsigned base = smem_addr(smem);
    const unsigned bars = base + C::kStages * C::kStageBytes;  // full[s] at bars + 8s, empty[s] after them
    int* pre = reinterpret_cast<int*>(smem + C::kStages * C::kStageBytes + 2 * C::kStages * 8);
    const int tid = threadIdx.x;
    const unsigned rank = kMC == 2 ? cluster_rank() : 0;
    if (tid == 0) {
        for (int s = 0; s < C::kStages; ++s) {
            mbar_init(bars + 8 * s, 1);                             // the producer's arrive + the TMA bytes
            mbar_init(bars + 8 * (C::kStages + s), kMC * 4 * kWG);  // one arrive per consumer warp of the cluster
        }
        fence_barrier_init();
        tma_prefetch_map(&map_a);
        tma_prefetch_map(&map_b);
    }
    if constexpr (kGated) launch_dependents();  // the down kernel may take the SMs this grid frees
    // Token tiles, in groups of kMC (one per block of a cluster), before each expert. Barriers inside: also orders
    // the barriers' initialisation within the block.
    const int groups = chunk_prefix(counts, experts, kMC * C::kBM, pre, warp_sums);
    if constexpr (kMC == 2) cluster_sync();  // the peer's barriers are initialised before anything reaches them
    const int ntiles = kGated ? (M + kBN / 2 - 1) / (kBN / 2) : (M + kBN - 1) / kBN;
    const std::int64_t items = std::int64_t(groups) * ntiles;
    if constexpr (!kGated) {
        zero_padding_rows(counts, offsets, experts, M, out);
        wait_for_producer();  // h is complete and visible from here on
    }
    const int nk = (K + kBK - 1) / kBK;
    const int wg = tid / 128;
    const std::int64_t first = blockIdx.x / kMC, stride = gridDim.x / kMC;
    // The item's expert, weight tile and this block's token tile (past the expert's tiles: nothing is stored).
    auto locate = [&](std::int64_t it, int& e, int& nt, int& mt) {
        e = expert_of_chunk(pre, experts, it, ntiles);
        const int ntt = pre[e + 1] - pre[e];
        const int local = static_cast<int>(it - std::int64_t(pre[e]) * ntiles);
        nt = local / ntt;
        mt = kMC * (local % ntt) + static_cast<int>(rank);
    };

    if (wg == kWG) {  // producer
        if constexpr (kWG == 2) regs_dec<40>();
        if (tid == 128 * kWG) {
            int c = 0;
            for (std::int64_t it = first; it < items; it += stride) {
                int e, nt, mt;
                locate(it, e, nt, mt);
                const int row0 = offsets[e] + mt * C::kBM;
                for (int kt = 0; kt < nk; ++kt, ++c) {
                    const int s = c % C::kStages;
                    const unsigned full = bars + 8 * s, empty = bars + 8 * (C::kStages + s);
                    mbar_wait(empty, ((c / C::kStages) & 1) ^ 1);
                    mbar_arrive_expect_tx(full, C::kStageBytes);
                    const unsigned sa = base + s * C::kStageBytes, sb = sa + C::kABytes;
                    tma_load_2d(sa, &map_a, full, kt * kBK, row0);
                    // gate/up: the kBN/2 gate rows, then the matching up rows; down: kBN rows of w2. With a cluster,
                    // block r loads half r and multicasts it.
                    const int w0 = kGated ? e * 2 * M + nt * (kBN / 2) : e * M + nt * kBN;
                    const int half_rows = kGated ? M : kBN / 2;  // row offset of the second half
                    if constexpr (kMC == 2) {
                        tma_load_2d_multicast(sb + rank * (C::kBBytes / 2), &map_b, full, kt * kBK,
                                              w0 + int(rank) * half_rows, 0x3);
                    } else {
                        tma_load_2d(sb, &map_b, full, kt * kBK, w0);
                        tma_load_2d(sb + C::kBBytes / 2, &map_b, full, kt * kBK, w0 + half_rows);
                    }
                }
            }
        }
        __syncwarp();
    } else {  // consumers
        if constexpr (kWG == 2) regs_inc<232>();
        const int warp = (tid / 32) % 4, lane = tid % 32;
        auto release = [&](int stage) {
            if (lane != 0) return;
            mbar_arrive(bars + 8 * (C::kStages + stage));
            if constexpr (kMC == 2) mbar_arrive_remote(bars + 8 * (C::kStages + stage), rank ^ 1);
        };
        int c = 0;
        for (std::int64_t it = first; it < items; it += stride) {
            int e, nt, mt;
            locate(it, e, nt, mt);
            const int ntok = min(C::kBM, counts[e] - mt * C::kBM);
            float acc[C::kAcc];
#pragma unroll
            for (int i = 0; i < C::kAcc; ++i) acc[i] = 0.f;
            fence_operands(acc);
            for (int kt = 0; kt < nk; ++kt, ++c) {
                const int s = c % C::kStages;
                mbar_wait(bars + 8 * s, (c / C::kStages) & 1);
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
            if (nk > 0) release((c - 1) % C::kStages);
            if (ntok <= 0) continue;

            // Epilogue from registers: rows 64·wg + 16·warp + lane/4 (+ 8), column pairs 8j + 2·(lane % 4).
            const std::int64_t r0 = std::int64_t(offsets[e]) + mt * C::kBM;
            const int row = 64 * wg + 16 * warp + lane / 4, col = 2 * (lane % 4);
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const int m = row + 8 * half;
                if (m >= ntok) continue;
                bf16_t* o = out + (r0 + m) * M;
                if constexpr (kGated) {
#pragma unroll
                    for (int j = 0; j < kBN / 16; ++j) {
                        const int f = nt * (kBN / 2) + 8 * j + col;
                        if (f >= M) continue;  // M % 8 == 0: f + 1 < M as well
                        const int g = 4 * j + 2 * half, u = 4 * (j + kBN / 16) + 2 * half;
                        const bf16_t h0 = silu_gate(acc[g], acc[u]), h1 = silu_gate(acc[g + 1], acc[u + 1]);
                        *reinterpret_cast<unsigned*>(o + f) = unsigned(h0) | (unsigned(h1) << 16);
                    }
                } else {
#pragma unroll
                    for (int j = 0; j < kBN / 8; ++j) {
                        const int n = nt * kBN + 8 * j + col;
                        if (n >= M) continue;
                        const int a = 4 * j + 2 * half;
                        *reinterpret_cast<unsigned*>(o + n) =
                            unsigned(f32_to_bf16(acc[a])) | (unsigned(f32_to_bf16(acc[a + 1])) << 16);
                    }
                }
            }
        }
    }
    // With a cluster, neither block leaves while the other may still multicast into it or arrive on its barriers.
    if constexpr (kMC == 2) cluster_sync();
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

// Launches `kernel` in clusters of kMC blocks, after the previous kernel on the stream programmatically (pdl) or
// plainly. The grid: as many clusters as fit on the device at once, at most `needed` items' worth.
template <int kMC, class Kernel, class... Args>
void launch_clustered(Kernel kernel, int threads, int smem, std::int64_t needed, bool pdl, cudaStream_t st,
                      Args... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.blockDim = dim3(threads);
    cfg.dynamicSmemBytes = std::size_t(smem);
    cfg.stream = st;
    cudaLaunchAttribute attr[2];
    int n = 0;
    if (kMC > 1) {
        attr[n].id = cudaLaunchAttributeClusterDimension;
        attr[n].val.clusterDim.x = kMC, attr[n].val.clusterDim.y = 1, attr[n].val.clusterDim.z = 1;
        ++n;
    }
    if (pdl) {
        attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[n].val.programmaticStreamSerializationAllowed = 1;
        ++n;
    }
    cfg.attrs = attr;
    cfg.numAttrs = n;
    static thread_local std::map<std::pair<const void*, int>, int> fit;  // clusters (or blocks) resident at once
    const auto key = std::make_pair(reinterpret_cast<const void*>(kernel), smem);
    auto f = fit.find(key);
    if (f == fit.end()) {
        int clusters = 0;
        if (kMC > 1) {
            cfg.gridDim = dim3(kMC);
            cfg.numAttrs = 1;  // the cluster shape alone
            MOE_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, kernel, &cfg));
            cfg.numAttrs = n;
        } else {
            clusters = static_cast<int>(persistent_blocks(kernel, threads, smem, std::int64_t(1) << 30));
        }
        f = fit.emplace(key, std::max(1, clusters)).first;
    }
    const std::int64_t clusters =
        std::max<std::int64_t>(1, std::min<std::int64_t>(f->second, (needed + kMC - 1) / kMC));
    cfg.gridDim = dim3(static_cast<unsigned>(clusters * kMC));
    cudaError_t err = cudaLaunchKernelEx(&cfg, kernel, args...);
    if (err != cudaSuccess && pdl) {  // without programmatic launch: an ordinary one
        (void)cudaGetLastError();
        cfg.numAttrs = kMC > 1 ? 1 : 0;
        err = cudaLaunchKernelEx(&cfg, kernel, args...);
    }
    MOE_CUDA_CHECK(err);
}

template <int kWG, int kBN, int kMC>
void launch_wgmma(const bf16_t* xp, const std::int32_t* counts, const std::int32_t* offsets, std::int64_t max_rows,
                  int experts, int hidden, int ffn, const bf16_t* w1, const bf16_t* w2, bf16_t* h, bf16_t* y,
                  cudaStream_t st) {
    using C = Cfg<kWG, kBN>;
    const int smem = smem_bytes<kWG, kBN>(experts);
    auto k1 = wgmma_gemm_kernel<kWG, kBN, true, kMC>;
    auto k2 = wgmma_gemm_kernel<kWG, kBN, false, kMC>;
    MOE_CUDA_CHECK(cudaFuncSetAttribute(k1, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    MOE_CUDA_CHECK(cudaFuncSetAttribute(k2, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    // Weight boxes: half a tile (the gate or the up rows; w2's rows in two halves), so that a cluster's blocks can
    // load one half each
    const CUtensorMap mx = tile_map(xp, max_rows, hidden, C::kBM);
    const CUtensorMap mw1 = tile_map(w1, std::int64_t(experts) * 2 * ffn, hidden, kBN / 2);
    const CUtensorMap mh = tile_map(h, max_rows, ffn, C::kBM);
    const CUtensorMap mw2 = tile_map(w2, std::int64_t(experts) * hidden, ffn, kBN / 2);
    const std::int64_t est_tiles = std::min<std::int64_t>(max_rows, max_rows / C::kBM + kMC * experts);
    launch_clustered<kMC>(k1, C::kThreads, smem, est_tiles * ((ffn + kBN / 2 - 1) / (kBN / 2)), false, st, mx, mw1,
                          counts, offsets, experts, hidden, ffn, h);
    launch_clustered<kMC>(k2, C::kThreads, smem, est_tiles * ((hidden + kBN - 1) / kBN), true, st, mh, mw2, counts,
                          offsets, experts, ffn, hidden, y);
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
               int experts, int hidden, int ffn, const bf16_t* w1, const bf16_t* w2, bf16_t* h, bf16_t* y,
               int tile_tokens, cudaStream_t st) {
    if (max_rows <= 0) return;
    const int bn = env_choice("MOELAB_WGMMA_BN", 128, 256, 256);
    const int mc = env_choice("MOELAB_WGMMA_CLUSTER", 1, 2, 1);
#define MOE_WG_ARGS xp, counts, offsets, max_rows, experts, hidden, ffn, w1, w2, h, y, st
    if (tile_tokens >= 128 && mc == 2)
        bn == 128 ? launch_wgmma<2, 128, 2>(MOE_WG_ARGS) : launch_wgmma<2, 256, 2>(MOE_WG_ARGS);
    else if (tile_tokens >= 128)
        bn == 128 ? launch_wgmma<2, 128, 1>(MOE_WG_ARGS) : launch_wgmma<2, 256, 1>(MOE_WG_ARGS);
    else
        bn == 128 ? launch_wgmma<1, 128, 1>(MOE_WG_ARGS) : launch_wgmma<1, 256, 1>(MOE_WG_ARGS);
#undef MOE_WG_ARGS
}

}  // namespace moe::gpu
