// The grouped SiLU-gated expert FFN on the GPU: h1 = x·w1^T, h = silu(gate)·up, y = h·w2^T per expert, through
// cuBLAS (one grouped call, or one call per expert over side streams), our gathering GEMM (experts_fused.cu), for
// few tokens per expert the weight-streaming decode kernels (experts_decode.cu), for some more the swap-AB grouped
// GEMM with the tokens in shared memory (experts_mid.cu), and the choice between them.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/api.hpp"
#include "kernels/common/bf16.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/experts_common.cuh"
#include "kernels/cuda/experts_decode.cuh"
#include "kernels/cuda/experts_fused.cuh"
#include "kernels/cuda/experts_mid.cuh"
#include "kernels/cuda/experts_wgmma.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/cuda/workspace.hpp"

namespace moe::gpu {

namespace {

// h[r, f] = bf16(silu(h1[r, f])·h1[r, F + f]) for the real rows (row_token >= 0, or every row when row_token is
// null); eight columns per thread.
template <int kVec>
__global__ void silu_gate_kernel(const bf16_t* h1, const std::int32_t* row_token, std::int64_t max_rows, int ffn,
                                 bf16_t* h) {
    const int per_row = ffn / kVec;
    const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    const std::int64_t r = i / per_row;
    if (r >= max_rows || (row_token && row_token[r] < 0)) return;
    const int f = static_cast<int>(i % per_row) * kVec;
    const bf16_t* g = h1 + r * 2 * ffn + f;
    alignas(16) bf16_t gv[kVec], uv[kVec], out[kVec];
    if constexpr (kVec == 8) {
        *reinterpret_cast<uint4*>(gv) = *reinterpret_cast<const uint4*>(g);
        *reinterpret_cast<uint4*>(uv) = *reinterpret_cast<const uint4*>(g + ffn);
    } else {
        gv[0] = g[0], uv[0] = g[ffn];
    }
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
        float gf = bf16_to_f32(gv[j]), uf = bf16_to_f32(uv[j]);
        out[j] = f32_to_bf16(gf / (1.0f + expf(-gf)) * uf);
    }
    if constexpr (kVec == 8)
        *reinterpret_cast<uint4*>(h + r * ffn + f) = *reinterpret_cast<const uint4*>(out);
    else
        h[r * ffn + f] = out[0];
}

// Padding rows of y are zeros: block e clears rows [offsets[e] + counts[e], offsets[e + 1]).
__global__ void zero_padding_kernel(const std::int32_t* counts, const std::int32_t* offsets, int hidden, bf16_t* y) {
    const int e = blockIdx.x;
    for (std::int64_t r = offsets[e] + counts[e]; r < offsets[e + 1]; ++r)
        for (int i = threadIdx.x; i < hidden; i += blockDim.x) y[r * hidden + i] = 0;
}

void launch_silu(const bf16_t* h1, const std::int32_t* row_token, std::int64_t row0, std::int64_t rows, int ffn,
                 bf16_t* h, cudaStream_t st) {
    if (rows <= 0) return;
    const std::int32_t* rt = row_token ? row_token + row0 : nullptr;
    if (ffn % 8 == 0) {
        silu_gate_kernel<8>
            <<<grid_for(rows * (ffn / 8), 256), 256, 0, st>>>(h1 + row0 * 2 * ffn, rt, rows, ffn, h + row0 * ffn);
    } else {
        silu_gate_kernel<1>
            <<<grid_for(rows * ffn, 256), 256, 0, st>>>(h1 + row0 * 2 * ffn, rt, rows, ffn, h + row0 * ffn);
    }
    MOE_CUDA_LAUNCH_CHECK("silu_gate_kernel");
}

// y[dst + i] = y_pad[src + i] for i < n, one block per expert (batched's padded output back to packed rows).
struct CopyOut {
    std::int32_t dst, src, n;
};
__global__ void copy_out_kernel(const CopyOut* table, const bf16_t* y_pad, int hidden, bf16_t* y) {
    const CopyOut c = table[blockIdx.x];
    const bool vec = hidden % 8 == 0;
    const std::int64_t per_row = vec ? hidden / 8 : hidden;
    for (std::int64_t i = threadIdx.x + std::int64_t(blockIdx.y) * blockDim.x; i < std::int64_t(c.n) * per_row;
         i += std::int64_t(gridDim.y) * blockDim.x) {
        const std::int64_t r = i / per_row, col = i % per_row;
        if (vec)
            reinterpret_cast<uint4*>(y + (c.dst + r) * hidden)[col] =
                reinterpret_cast<const uint4*>(y_pad + (c.src + r) * hidden)[col];
        else
            y[(c.dst + r) * hidden + col] = y_pad[(c.src + r) * hidden + col];
    }
}

struct ExpertsLayout {
    std::int64_t pad_rows = 0;    // rows + rows / 4 + E: room for batched's padded experts
    bf16_t* h1 = nullptr;         // [pad_rows, 2F]; batched reuses it for its padded y after the SiLU gate
    bf16_t* h = nullptr;          // [pad_rows, F]
    const void** ptrs = nullptr;  // grouped/batched GEMM pointer arrays (6·E), then batched's CopyOut table (2·E)
    FusedTile* tiles = nullptr;   // fused GEMM tile list
};

ExpertsLayout carve_experts(std::int64_t max_rows, int experts, int ffn, void* base, std::size_t bytes,
                            std::size_t* total) {
    ExpertsLayout l;
    Carver c(base, bytes);
    l.pad_rows = max_rows + max_rows / 4 + experts;
    l.h1 = c.take<bf16_t>(std::size_t(l.pad_rows) * 2 * ffn);
    l.h = c.take<bf16_t>(std::size_t(l.pad_rows) * ffn);
    l.ptrs = c.take<const void*>(8 * std::size_t(experts));
    l.tiles = c.take<FusedTile>(fused_max_tiles(max_rows, experts));
    if (total) *total = c.used();
    return l;
}

// Row-major C[n, m] = A[n, K]·B[m, K]^T is column-major C^T[m, n] = op_T(B)·A^T.
void gemm_nt(cublasHandle_t h, const bf16_t* a, int n, const bf16_t* b, int m, int kdim, bf16_t* c) {
    const float one = 1.0f, zero = 0.0f;
    MOE_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, kdim, &one, b, CUDA_R_16BF, kdim, a, CUDA_R_16BF,
                                  kdim, &zero, c, CUDA_R_16BF, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// Whether the per-expert cuBLAS paths run each expert's two GEMMs in turn on one side stream (1) instead of every
// gate/up GEMM, a join, then every down GEMM (0). Measured on the H200 (kernels/bench/RESULTS.md, twenty-fourth
// session): S2's layer (8 experts of F = 14,336) 4,120-4,172 µs against 4,488; S3 at 512 and 4,096 tokens per expert
// even. MOELAB_STREAMS_CHAIN=0|1 (tests, experiments).
bool streams_chain() { return experts_detail::env_choice("MOELAB_STREAMS_CHAIN", {0, 1}, 1) == 1; }

// One cuBLAS call per non-empty expert and GEMM: `which` 1, gate/up then the SiLU gate (h1 = x·w1^T, h =
// silu(gate)·up); 2, down (y = h·w2^T); 3, both, each expert's in turn on one stream, with no join between the GEMMs
// (an expert's down GEMM follows its own gate/up while its h is in L2, and the side streams stay busy until their
// last expert). With side streams, round-robin over them (they wait for the main stream first and are joined back
// after); without, in order on the main stream.
void per_expert(int which, bool side, const bf16_t* xp, const std::int32_t* row_token, const std::int32_t* counts_host,
                const std::int32_t* offsets_host, int experts, int hidden, int ffn, const bf16_t* w1, const bf16_t* w2,
                const ExpertsLayout& l, bf16_t* y, cudaStream_t st) {
    Context& c = context();
    if (side) {
        MOE_CUDA_CHECK(cudaEventRecord(c.fork, st));
        for (int i = 0; i < kSideStreams; ++i) MOE_CUDA_CHECK(cudaStreamWaitEvent(c.side[i], c.fork, 0));
    }
    int used = 0;
    for (int e = 0; e < experts; ++e) {
        const int n = counts_host[e];
        if (n == 0) continue;  // an expert with no tokens costs nothing
        const std::int64_t r0 = offsets_host[e];
        const int si = used++ % kSideStreams;
        cublasHandle_t h = side ? with_budget(c.side_blas[si]) : blas_on(st);
        cudaStream_t s = side ? c.side[si] : st;
        if (which & 1) {
            gemm_nt(h, xp + r0 * hidden, n, w1 + std::int64_t(e) * 2 * ffn * hidden, 2 * ffn, hidden,
                    l.h1 + r0 * 2 * ffn);
            launch_silu(l.h1, row_token, r0, n, ffn, l.h, s);
        }
        if (which & 2) gemm_nt(h, l.h + r0 * ffn, n, w2 + std::int64_t(e) * hidden * ffn, hidden, ffn, y + r0 * hidden);
    }
    if (side) {
        for (int i = 0; i < kSideStreams; ++i) {
            MOE_CUDA_CHECK(cudaEventRecord(c.join[i], c.side[i]));
            MOE_CUDA_CHECK(cudaStreamWaitEvent(st, c.join[i], 0));
        }
    }
}

// Both GEMMs as cublasGemmGroupedBatchedEx calls, one group per non-empty expert. Returns false when this cuBLAS
// does not support the call for these types, so the caller can fall back.
bool grouped(const bf16_t* xp, const std::int32_t* row_token, const std::int32_t* counts_host,
             const std::int32_t* offsets_host, int experts, int hidden, int ffn, const bf16_t* w1, const bf16_t* w2,
             std::int64_t max_rows, const ExpertsLayout& l, bf16_t* y, cudaStream_t st) {
    std::vector<int> idx;
    for (int e = 0; e < experts; ++e)
        if (counts_host[e] > 0) idx.push_back(e);
    const int g = static_cast<int>(idx.size());
    if (g == 0) return true;
    std::vector<const void*> host_ptrs(6 * std::size_t(g));
    std::vector<int> m1(g), m2(g), n(g), k1(g), k2(g), lda1(g), lda2(g), ldc1(g), ldc2(g), sizes(g, 1);
    std::vector<cublasOperation_t> opT(g, CUBLAS_OP_T), opN(g, CUBLAS_OP_N);
    std::vector<float> alpha(g, 1.0f), beta(g, 0.0f);
    for (int i = 0; i < g; ++i) {
        const int e = idx[i];
        const std::int64_t r0 = offsets_host[e];
        n[i] = counts_host[e];
        m1[i] = 2 * ffn, k1[i] = hidden, lda1[i] = hidden, ldc1[i] = 2 * ffn;
        m2[i] = hidden, k2[i] = ffn, lda2[i] = ffn, ldc2[i] = hidden;
        host_ptrs[0 * g + i] = w1 + std::int64_t(e) * 2 * ffn * hidden;  // A of GEMM 1
        host_ptrs[1 * g + i] = xp + r0 * hidden;                         // B of GEMM 1
        host_ptrs[2 * g + i] = l.h1 + r0 * 2 * ffn;                      // C of GEMM 1
        host_ptrs[3 * g + i] = w2 + std::int64_t(e) * hidden * ffn;      // A of GEMM 2
        host_ptrs[4 * g + i] = l.h + r0 * ffn;                           // B of GEMM 2
        host_ptrs[5 * g + i] = y + r0 * hidden;                          // C of GEMM 2
    }
    MOE_CUDA_CHECK(
        cudaMemcpyAsync(l.ptrs, host_ptrs.data(), host_ptrs.size() * sizeof(void*), cudaMemcpyHostToDevice, st));
    const void* const* d = l.ptrs;
    cublasHandle_t h = blas_on(st);
    cublasStatus_t s1 = cublasGemmGroupedBatchedEx(
        h, opT.data(), opN.data(), m1.data(), n.data(), k1.data(), alpha.data(), d + 0 * g, CUDA_R_16BF, lda1.data(),
        d + 1 * g, CUDA_R_16BF, k1.data(), beta.data(), const_cast<void* const*>(d + 2 * g), CUDA_R_16BF, ldc1.data(),
        g, sizes.data(), CUBLAS_COMPUTE_32F);
    if (s1 == CUBLAS_STATUS_NOT_SUPPORTED) {
        MOE_CUDA_CHECK(cudaStreamSynchronize(st));  // the host arrays above must outlive the copy
        return false;
    }
    MOE_CUBLAS_CHECK(s1);
    launch_silu(l.h1, row_token, 0, max_rows, ffn, l.h, st);
    MOE_CUBLAS_CHECK(cublasGemmGroupedBatchedEx(h, opT.data(), opN.data(), m2.data(), n.data(), k2.data(), alpha.data(),
                                                d + 3 * g, CUDA_R_16BF, lda2.data(), d + 4 * g, CUDA_R_16BF, k2.data(),
                                                beta.data(), const_cast<void* const*>(d + 5 * g), CUDA_R_16BF,
                                                ldc2.data(), g, sizes.data(), CUBLAS_COMPUTE_32F));
    // The pointer array was copied from pageable memory, which cudaMemcpyAsync stages before returning,
    // so host_ptrs may go out of scope now.
    return true;
}

// Every non-empty expert padded to the largest count m: each GEMM is one cublasGemmBatchedEx over pointer arrays
// (the same m × n × k for all experts), the SiLU gate runs over the padded rows, then y's rows are copied out. The
// window of expert e starts at min(offsets[e], rows − m) so it never reads past the packed rows; rows outside the
// expert are computed and dropped. Returns false (nothing launched) when the padded rows do not fit the workspace
// (skewed loads: the caller falls back to per-expert calls).
bool batched(const bf16_t* xp, const std::int32_t* counts_host, const std::int32_t* offsets_host, int experts,
             int hidden, int ffn, const bf16_t* w1, const bf16_t* w2, std::int64_t rows, const ExpertsLayout& l,
             bf16_t* y, cudaStream_t st) {
    std::vector<int> idx;
    int m = 0;
    for (int e = 0; e < experts; ++e)
        if (counts_host[e] > 0) idx.push_back(e), m = std::max(m, counts_host[e]);
    const int g = static_cast<int>(idx.size());
    if (g == 0) return true;
    const std::int64_t padded = std::int64_t(g) * m;
    if (padded > l.pad_rows || padded * hidden > l.pad_rows * 2 * ffn) return false;
    std::vector<const void*> host(8 * std::size_t(experts), nullptr);
    CopyOut* table = reinterpret_cast<CopyOut*>(host.data() + 6 * std::size_t(experts));
    bf16_t* y_pad = l.h1;
    for (int i = 0; i < g; ++i) {
        const int e = idx[i];
        const std::int64_t win = std::min<std::int64_t>(offsets_host[e], rows - m);
        host[0 * g + i] = w1 + std::int64_t(e) * 2 * ffn * hidden;
        host[1 * g + i] = xp + win * hidden;
        host[2 * g + i] = l.h1 + std::int64_t(i) * m * 2 * ffn;
        host[3 * g + i] = w2 + std::int64_t(e) * hidden * ffn;
        host[4 * g + i] = l.h + std::int64_t(i) * m * ffn;
        host[5 * g + i] = y_pad + std::int64_t(i) * m * hidden;
        table[i] = {offsets_host[e], static_cast<std::int32_t>(std::int64_t(i) * m + offsets_host[e] - win),
                    counts_host[e]};
    }
    // From pageable memory: cudaMemcpyAsync stages the bytes before it returns, so `host` may die after.
    MOE_CUDA_CHECK(cudaMemcpyAsync(l.ptrs, host.data(), host.size() * sizeof(void*), cudaMemcpyHostToDevice, st));
    const void* const* d = l.ptrs;
    cublasHandle_t h = blas_on(st);
    const float one = 1.0f, zero = 0.0f;
    MOE_CUBLAS_CHECK(cublasGemmBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 2 * ffn, m, hidden, &one, d + 0 * g, CUDA_R_16BF,
                                         hidden, d + 1 * g, CUDA_R_16BF, hidden, &zero,
                                         const_cast<void* const*>(d + 2 * g), CUDA_R_16BF, 2 * ffn, g,
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    launch_silu(l.h1, nullptr, 0, padded, ffn, l.h, st);
    MOE_CUBLAS_CHECK(cublasGemmBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, hidden, m, ffn, &one, d + 3 * g, CUDA_R_16BF, ffn,
                                         d + 4 * g, CUDA_R_16BF, ffn, &zero, const_cast<void* const*>(d + 5 * g),
                                         CUDA_R_16BF, hidden, g, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    const auto* dev_table = reinterpret_cast<const CopyOut*>(l.ptrs + 6 * std::size_t(experts));
    const unsigned chunks = static_cast<unsigned>(std::min<std::int64_t>(64, (std::int64_t(m) * hidden + 2047) / 2048));
    copy_out_kernel<<<dim3(g, std::max(1u, chunks)), 256, 0, st>>>(dev_table, y_pad, hidden, y);
    MOE_CUDA_LAUNCH_CHECK("copy_out_kernel");
    return true;
}

// The ints of l.h1, which decode, mid and wgmma do not use for h1: wgmma's item counters, mid's hand-off.
std::int64_t sync_ints(const ExpertsLayout& l, int ffn) {
    return std::int64_t(l.pad_rows) * 2 * ffn * std::int64_t(sizeof(bf16_t)) / std::int64_t(sizeof(int));
}

// Runs the FFN on wgmma where it can (wgmma_ffn_supported: sm_90, d and F on TMA's 16-byte strides; packed rows, or x
// gathered through row_token where xp is null), from the device's counts and offsets; false, with nothing run, where it
// cannot. l.h1 is not used by wgmma: its ints schedule the items.
bool try_wgmma(const ExpertsLayout& l, const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token,
               const std::int32_t* counts, const std::int32_t* offsets, std::int64_t max_rows, int experts, int hidden,
               int ffn, const bf16_t* w1, const bf16_t* w2, bf16_t* y, double tpe, cudaStream_t st) {
    if (!wgmma_ffn_supported(hidden, ffn, xp, xp ? nullptr : x, row_token, w1, w2, l.h)) return false;
    wgmma_ffn(xp, xp ? nullptr : x, row_token, counts, offsets, max_rows, experts, hidden, ffn, w1, w2, l.h, y,
              reinterpret_cast<int*>(l.h1), tpe, st);
    return true;
}

}  // namespace

const char* experts_impl_name(ExpertsImpl impl) {
    switch (impl) {
        case ExpertsImpl::Auto:
            return "auto";
        case ExpertsImpl::Grouped:
            return "grouped";
        case ExpertsImpl::Streams:
            return "streams";
        case ExpertsImpl::Serial:
            return "serial";
        case ExpertsImpl::Fused:
            return "fused";
        case ExpertsImpl::Decode:
            return "decode";
        case ExpertsImpl::Batched:
            return "batched";
        case ExpertsImpl::Mid:
            return "mid";
        case ExpertsImpl::Wgmma:
            return "wgmma";
    }
    return "auto";
}

ExpertsImpl parse_experts_impl(const std::string& text) {
    if (text == "auto") return ExpertsImpl::Auto;
    if (text == "grouped") return ExpertsImpl::Grouped;
    if (text == "streams") return ExpertsImpl::Streams;
    if (text == "serial") return ExpertsImpl::Serial;
    if (text == "fused") return ExpertsImpl::Fused;
    if (text == "decode") return ExpertsImpl::Decode;
    if (text == "batched") return ExpertsImpl::Batched;
    if (text == "mid") return ExpertsImpl::Mid;
    if (text == "wgmma") return ExpertsImpl::Wgmma;
    MOE_BAD_INPUT(
        "--experts-impl '" << text << "': allowed: auto, grouped, streams, serial, fused, decode, batched, mid, wgmma");
}

std::size_t experts_workspace_bytes(std::int64_t max_rows, int experts, int ffn) {
    std::size_t total = 0;
    carve_experts(max_rows, experts, ffn, nullptr, 0, &total);
    return total;
}

ExpertsImpl experts_auto_choice(double tokens_per_expert, int hidden, int ffn, bool packed, std::int64_t max_tokens) {
    const double tpe = tokens_per_expert;
    // Measured on the H200 (kernels/bench/RESULTS.md, the expert sweeps of 2026-11-29 and -30). For d > 2048 wgmma
    // from decode's sizes up: at 1 token per expert S1 319.7 µs against decode's 331.2 and S3 3,403 against 3,432;
    // at 4, S1 505.6 against 530.4 and S3 4,997 against 6,791 (2026-11-30 04:31); at 8, S1 94% of the weight roofline
    // (mid 89%) and S3 within 1% of mid. With the fast epilogue (2026-11-30 06:00) wgmma is ahead of cuBLAS up to 1024
    // tokens per expert for d = 4096 (S1 at 512: 1,746 µs against 2,130 for streams; at 1024, 07:30: 3,222 and 3,279
    // against 3,336 and 3,428; at 2048, 09:18, 7,250 and 7,184 against 7,524 and 7,500; at 4096 even: 14,386 and
    // 14,212 against 14,055 and 14,567) and up to 384 for S3's d = 7168 (at 256: 11,511 against 12,171; at 512 streams
    // is 1% ahead, at 4096 12%, even since wgmma's items run in groups there: 143.6 ms against 141.0-144.9, 22:11;
    // with its output staged again at 256 experts, 2026-12-03, within 1% either way: at 512 19,910 and 19,928 µs
    // against 19,756 and 19,788, at 1024 36,880 against 37,094, at 4096 144,571 against 143,935).
    // Gathered rows (nopack): wgmma's two gatherer warps copy them with cp.async (6-14% slower than packed rows at 512
    // tokens per expert, within 2% at 64 and below; 2026-12-02), and no cuBLAS path gathers, so wgmma wherever it runs
    // past decode's and mid's sizes for small d, and at every size for d > 2048.
    const bool sm90 = wgmma_available(), wg = sm90 && hidden > 2048;
    if (wg && (!packed || tpe <= 384 || hidden < 6144)) return ExpertsImpl::Wgmma;
    // Small d on sm_90, packed or gathered, under uniform, zipf:1.2, hot:5 and hot:20 routing (the classroom shape's d
    // and F, 2026-12-02, twenty-eighth session): decode streams the weights fastest at 1 and 2 tokens per expert
    // (45-49 µs against wgmma's 50-56 and mid's 55-57; 57.9-61.7 against 57.5-64.5 and 60.5-65.0), mid from 3 (at 3
    // 71.9-76.8 against decode's 77.7-82.1, at 4 78-79 against 84-87), and wgmma, whose 64- or 128-token tiles hold a
    // busy expert in one tile, past 8 (at 16 81-83 against mid's 83-109; at 24 82-85 against 95-126). mid's 32-token
    // tile takes a busier expert in several: at 8 tokens per expert with one expert 20 times as popular as each other
    // (about 53 of the 128 rows) mid took 101.5 µs and wgmma 80.8, so where the caller knows the busiest expert's
    // count (max_tokens, from the host plan) mid runs only when it fits one tile. Against cuBLAS (2026-11-30 04:31 and
    // 06:00) wgmma took 90.4, 91.6, 100.8 and 107.6 µs at 32, 48, 64 and 96 tokens per expert against batched's 94.9,
    // 100.7, 104.8 and 115.5, and 117.2, 164.2, 258.4, 459.6 and 1,857.9 at 128, 256, 512, 1024 and 4096 against
    // batched's 125.3, 168.7, 290.1, 518.1 and 1,941.1 (streams 1,963.8). Where wgmma's stages hold two k steps
    // (packed rows, d and F multiples of 128; 2026-12-02, thirty-fourth session) it is ahead of mid from 3 tokens per
    // expert too: at 4 77.2-77.4 µs against mid's 79.1-79.3, at 8 77.5-77.8 against 80.4.
    const bool fits = max_tokens < 0 || max_tokens <= mid_tile_tokens(tpe);  // the busiest expert in one mid tile
    if (sm90 && hidden <= 2048) {
        if (tpe <= 2) return ExpertsImpl::Decode;
        if (wgmma_two_k_steps(hidden, ffn, packed)) return ExpertsImpl::Wgmma;
        return tpe <= 8 && fits ? ExpertsImpl::Mid : ExpertsImpl::Wgmma;
    }
    // Without sm_90 (MOELAB_WGMMA=0 on the H200, 2026-12-03, forty-first session), median µs: decode is ahead of mid
    // up to 2 tokens per expert at the classroom shape (at 2: 62.2 against 64.9 uniform, 57.5 against 60.5 hot:20) and
    // at S2 (at 2: 501.3 against 573.9), mid from 3 (the classroom shape at 4: 79.6 against 85.8, 79.2 against 84.9;
    // S2 at 4: 609.3 against 670.2). Many experts with d > 2048 and F <= 4096 (S1, S3) run mid from 2 already (S1 at
    // 2: 491.7 against 505.9; S3 at 2: 4,578 against 5,077; at 1 decode 333.2 against 338.0 and a tie at S3).
    if (tpe <= (hidden > 2048 && ffn <= 4096 ? 1 : 2)) return ExpertsImpl::Decode;
    // A few large experts (d > 2048, F > 4096: S2's 8 of F = 14,336) where the busiest expert does not fit one of mid's
    // token tiles: one cuBLAS call per expert on side streams, since each of mid's tiles streams the expert's 352 MB of
    // weights again. S2's layer, its expert stage (streams' copy of the plan to the host and its wait included): under
    // hot:20 at 12 tokens per expert (busiest_estimate 48 rows, two 32-token tiles) streams 711-712 µs, where mid's FFN
    // takes 820 in the bench, 129 more than under uniform routing; where the busiest expert fits one tile, mid's stage
    // is as fast or faster: 688, 685 and 690 µs at 4, 8 and 12 under uniform routing against streams' 696, 706 and 709,
    // 621 and 708 at 4 and 8 under hot:20 against 619 and 708.
    if (packed && hidden > 2048 && ffn > 4096 && !fits) return ExpertsImpl::Streams;
    if (tpe <= kMidMaxTokensPerExpert) return ExpertsImpl::Mid;
    if (!packed) return ExpertsImpl::Fused;
    // Small d past mid's range without sm_90: mid up to 32 tokens per expert where the busiest expert fits its token
    // tile (or is not known), else batched, which pads every expert to the busiest one and, where that does not fit
    // the workspace, runs cuBLAS's grouped GEMM. The classroom shape (2026-12-03, fortieth session, MOELAB_WGMMA=0 on
    // the H200), median µs at 24, 32, 40 and 48 tokens per expert: uniform routing mid 95.0, 104.2, 106.2, 121.2
    // against 113.2, 115.3 (grouped: the padding does not fit), 100.5 and 103.4 (batched); hot:20 mid 126.6, 141.9,
    // 153.5, 173.2 against grouped's 112.7, 121.7, 128.4, 129.5; zipf:1.2 124.3, 139.1, 144.7, 178.5 against 114.3,
    // 123.3, 124.6, 128.0. Under skew the busiest expert takes several of mid's tiles, each streaming its weights
    // again.
    if (hidden <= 2048 && tpe <= 32 && fits) return ExpertsImpl::Mid;
    if (hidden <= 2048 && tpe <= 1024) return ExpertsImpl::Batched;
    // Many small experts (F up to 4096): mid up to 32 tokens per expert (2026-12-03, thirty-ninth session). S1 at 16,
    // 24 and 32: 549, 568 and 608 µs (uniform) and 562, 573 and 625 (hot:20) against grouped's 595, 611 and 619 and
    // 605, 609 and 622; at 48 grouped is ahead, 626 and 638 against 754 and 779. S3 (d 7168) at 16: 5,327 and 5,435
    // against grouped's 5,854 and 5,942 and streams' 7,280 and 6,255; at 32 6,233 and 6,344 against 6,038 and 6,156,
    // and streams' 7,270 and 6,963.
    if (ffn <= 4096 && tpe <= 32) return ExpertsImpl::Mid;
    // d up to 4096: cuBLAS's grouped GEMM where the experts are many small GEMMs, one call per expert on side streams
    // where each is large. Median µs on the H200 (2026-12-03, RESULTS.md, thirty-eighth session), grouped against
    // streams, uniform and hot:20 routing: S1 (F = 1408, 64 experts) at 64 tokens per expert 741 and 733 against 1,745
    // and 1,323, at 96 961 and 1,053 against 1,706 and 1,313, at 128 1,177 and 1,096 against 2,246 and 1,691, at 160
    // 1,528 and 1,494 against 1,332 and 1,240; S2 (F = 14,336, 8 experts) at 16 726 and 725 against 683 and 677, at
    // 64 1,054 and 1,021 against 742 and 750; d 3072 with F 8192 (16 experts) at 32 677 against 629 (uniform).
    if (hidden <= 4096 && ffn <= 4096 && tpe <= 128) return ExpertsImpl::Grouped;
    return ExpertsImpl::Streams;
}

ExpertsImpl experts_ffn_device(ExpertsImpl impl, const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token,
                               const std::int32_t* counts, const std::int32_t* offsets, std::int64_t max_rows,
                               std::int64_t assignments, int experts, int hidden, int ffn, const bf16_t* w1,
                               const bf16_t* w2, bf16_t* y, void* ws, std::size_t ws_bytes, Stream s,
                               std::int64_t busiest_hint) {
    MOE_ASSERT(xp || (x && row_token), "experts_ffn_device needs packed rows or x with row_token");
    const double tpe = double(assignments) / std::max(experts, 1);
    if (impl == ExpertsImpl::Auto) impl = experts_auto_choice(tpe, hidden, ffn, xp != nullptr, busiest_hint);
    cudaStream_t st = to_cuda(s);
    if (impl == ExpertsImpl::Wgmma) {
        ExpertsLayout l = carve_experts(std::max<std::int64_t>(max_rows, 1), experts, ffn, ws, ws_bytes, nullptr);
        if (try_wgmma(l, xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn, w1, w2, y, tpe, st))
            return impl;
        impl = ExpertsImpl::Mid;  // not sm_90, or d or F off TMA's 16-byte strides
    }
    if (impl == ExpertsImpl::Decode || impl == ExpertsImpl::Mid) {  // two launches: the down kernel zeroes padding
        ExpertsLayout l = carve_experts(std::max<std::int64_t>(max_rows, 1), experts, ffn, ws, ws_bytes, nullptr);
        if (impl == ExpertsImpl::Decode)
            decode_ffn(xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn, w1, w2, l.h, y,
                       decode_chunk_tokens(tpe), st);
        else
            mid_ffn(xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn, w1, w2, l.h, y,
                    mid_tile_tokens(tpe), reinterpret_cast<int*>(l.h1), sync_ints(l, ffn), st);
        return impl;
    }
    // The cuBLAS paths take their GEMM shapes on the host: copy the plan back and wait.
    std::vector<std::int32_t> plan(2 * std::size_t(experts) + 1);
    MOE_CUDA_CHECK(cudaMemcpyAsync(plan.data(), counts, sizeof(std::int32_t) * experts, cudaMemcpyDeviceToHost, st));
    MOE_CUDA_CHECK(cudaMemcpyAsync(plan.data() + experts, offsets, sizeof(std::int32_t) * (experts + 1),
                                   cudaMemcpyDeviceToHost, st));
    MOE_CUDA_CHECK(cudaStreamSynchronize(st));
    return experts_ffn(impl, xp, x, row_token, counts, offsets, plan.data(), plan.data() + experts, experts, hidden,
                       ffn, w1, w2, y, ws, ws_bytes, s);
}

void dense_gemms(const bf16_t* xp, std::int64_t rows, int hidden, int ffn, const bf16_t* w1, const bf16_t* w2,
                 bf16_t* y, void* ws, std::size_t ws_bytes, Stream s) {
    if (rows <= 0) return;
    const ExpertsLayout l = carve_experts(rows, 1, ffn, ws, ws_bytes, nullptr);
    cublasHandle_t h = blas_on(to_cuda(s));
    gemm_nt(h, xp, int(rows), w1, 2 * ffn, hidden, l.h1);  // [rows, 2F]: expert 0's gate and up rows
    gemm_nt(h, l.h, int(rows), w2, hidden, ffn, y);        // [rows, d]
}

ExpertsImpl experts_ffn(ExpertsImpl impl, const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token,
                        const std::int32_t* counts, const std::int32_t* offsets, const std::int32_t* counts_host,
                        const std::int32_t* offsets_host, int experts, int hidden, int ffn, const bf16_t* w1,
                        const bf16_t* w2, bf16_t* y, void* ws, std::size_t ws_bytes, Stream s) {
    MOE_ASSERT(xp || (x && row_token), "experts_ffn needs packed rows or x with row_token");
    std::int64_t kept = 0, busiest = 0;
    for (int e = 0; e < experts; ++e) kept += counts_host[e], busiest = std::max<std::int64_t>(busiest, counts_host[e]);
    const double tpe = double(kept) / std::max(experts, 1);
    if (impl == ExpertsImpl::Auto) impl = experts_auto_choice(tpe, hidden, ffn, xp != nullptr, busiest);
    cudaStream_t st = to_cuda(s);
    const std::int64_t max_rows = offsets_host[experts];
    ExpertsLayout l = carve_experts(std::max<std::int64_t>(max_rows, 1), experts, ffn, ws, ws_bytes, nullptr);
    if (impl == ExpertsImpl::Wgmma) {
        if (try_wgmma(l, xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn, w1, w2, y, tpe, st))
            return impl;
        impl = ExpertsImpl::Mid;  // not sm_90, or d or F off TMA's 16-byte strides
    }
    if (!xp && impl != ExpertsImpl::Decode && impl != ExpertsImpl::Mid) impl = ExpertsImpl::Fused;  // these gather
    if (impl != ExpertsImpl::Decode && impl != ExpertsImpl::Mid) {
        zero_padding_kernel<<<experts, 256, 0, st>>>(counts, offsets, hidden, y);
        MOE_CUDA_LAUNCH_CHECK("zero_padding_kernel");
    }
    if (max_rows == 0) return impl;
    if (impl == ExpertsImpl::Decode) {
        decode_ffn(xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn, w1, w2, l.h, y,
                   decode_chunk_tokens(tpe), st);
        return impl;
    }
    if (impl == ExpertsImpl::Mid) {
        mid_ffn(xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn, w1, w2, l.h, y, mid_tile_tokens(tpe),
                reinterpret_cast<int*>(l.h1), sync_ints(l, ffn), st);
        return impl;
    }

    if (impl == ExpertsImpl::Batched) {
        if (batched(xp, counts_host, offsets_host, experts, hidden, ffn, w1, w2, max_rows, l, y, st)) return impl;
        // Too skewed to pad: wgmma where it runs (any skew, from the device plan; classroom at 8 tokens per expert
        // 86.8 µs where per-expert calls took 475), else cuBLAS's grouped GEMM (the classroom shape under hot:20 at 48,
        // 64 and 96 tokens per expert: 128.0, 131.4 and 146.0 µs against per-expert calls' 413.4, 564.4 and 569.4;
        // RESULTS.md, thirty-ninth session), else per-expert calls.
        if (try_wgmma(l, xp, x, row_token, counts, offsets, max_rows, experts, hidden, ffn, w1, w2, y, tpe, st))
            return ExpertsImpl::Wgmma;
        impl = ExpertsImpl::Grouped;
    }
    if (impl == ExpertsImpl::Grouped) {
        if (grouped(xp, row_token, counts_host, offsets_host, experts, hidden, ffn, w1, w2, max_rows, l, y, st))
            return impl;
        impl = ExpertsImpl::Streams;  // this cuBLAS has no grouped bf16 GEMM
    }
    const bool side = impl != ExpertsImpl::Serial;
    if (impl == ExpertsImpl::Fused) {
        fused_gate_up(xp, x, row_token, counts, offsets, counts_host, offsets_host, experts, hidden, ffn, w1, l.tiles,
                      l.h, st);
    } else if (streams_chain()) {
        per_expert(3, side, xp, row_token, counts_host, offsets_host, experts, hidden, ffn, w1, w2, l, y, st);
        return impl;
    } else {
        per_expert(1, side, xp, row_token, counts_host, offsets_host, experts, hidden, ffn, w1, w2, l, y, st);
    }
    per_expert(2, side, xp, row_token, counts_host, offsets_host, experts, hidden, ffn, w1, w2, l, y, st);
    return impl;
}

}  // namespace moe::gpu
