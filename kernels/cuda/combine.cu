// Combine on the GPU: out[t] = bf16(Σ_j w[t, j]·y[inv[t, j]]), a gather with the sum in fp32 and no atomics.
// Products and sums are rounded one by one (no FMA) in j order, so the result equals the CPU's bit for bit.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/api.hpp"
#include "kernels/common/bf16.hpp"
#include "kernels/common/rng.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/launchers.hpp"

namespace moe::gpu {

namespace {

// One thread per 8 columns (one 16-byte vector) of one token; the k source rows are loaded in batches of kBatch
// so that several loads are in flight, then summed in j order. kBatch follows k: a small k keeps the registers,
// and so the occupancy, that its few loads need.
template <int kBatch>
__global__ void __launch_bounds__(256)
    combine_vec_kernel(const bf16_t* y, const std::int32_t* inv, const float* weights, std::int64_t tokens, int k,
                       int hidden, bf16_t* out) {
    const int per_row = hidden / 8;
    const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= tokens * per_row) return;
    const std::int64_t t = i / per_row;
    const int c = static_cast<int>(i % per_row) * 8;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j0 = 0; j0 < k; j0 += kBatch) {
        uint4 v[kBatch];
        float w[kBatch];
        bool ok[kBatch];
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
            const int j = j0 + b;
            const std::int32_t r = j < k ? __ldg(inv + t * k + j) : -1;
            ok[b] = r >= 0;
            w[b] = ok[b] ? __ldg(weights + t * k + j) : 0.f;
            v[b] = ok[b] ? __ldg(reinterpret_cast<const uint4*>(y + std::int64_t(r) * hidden + c)) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
            if (!ok[b]) continue;  // dropped assignments add nothing
            const bf16_t* e = reinterpret_cast<const bf16_t*>(&v[b]);
#pragma unroll
            for (int q = 0; q < 8; ++q) acc[q] = add_rn(acc[q], mul_rn(w[b], bf16_to_f32(e[q])));
        }
    }
    alignas(16) bf16_t o[8];
#pragma unroll
    for (int q = 0; q < 8; ++q) o[q] = f32_to_bf16(acc[q]);
    *reinterpret_cast<uint4*>(out + t * hidden + c) = *reinterpret_cast<const uint4*>(o);
}

// Any hidden size: one thread per element.
__global__ void combine_scalar_kernel(const bf16_t* y, const std::int32_t* inv, const float* weights,
                                      std::int64_t tokens, int k, int hidden, bf16_t* out) {
    const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= tokens * hidden) return;
    const std::int64_t t = i / hidden;
    const int c = static_cast<int>(i % hidden);
    float acc = 0.f;
    for (int j = 0; j < k; ++j) {
        const std::int32_t r = inv[t * k + j];
        if (r < 0) continue;
        acc = add_rn(acc, mul_rn(weights[t * k + j], bf16_to_f32(y[std::int64_t(r) * hidden + c])));
    }
    out[i] = f32_to_bf16(acc);
}

}  // namespace

void combine(const bf16_t* y, const std::int32_t* inv, const float* weights, std::int64_t tokens, int k, int hidden,
             bf16_t* out, Stream s) {
    if (tokens <= 0) return;
    cudaStream_t st = to_cuda(s);
    if (hidden % 8 == 0) {
        const unsigned grid = grid_for(tokens * (hidden / 8), 256);
        if (k == 1)
            combine_vec_kernel<1><<<grid, 256, 0, st>>>(y, inv, weights, tokens, k, hidden, out);
        else if (k == 2)
            combine_vec_kernel<2><<<grid, 256, 0, st>>>(y, inv, weights, tokens, k, hidden, out);
        else if (k <= 4)
            combine_vec_kernel<4><<<grid, 256, 0, st>>>(y, inv, weights, tokens, k, hidden, out);
        else
            combine_vec_kernel<8><<<grid, 256, 0, st>>>(y, inv, weights, tokens, k, hidden, out);
        MOE_CUDA_LAUNCH_CHECK("combine_vec_kernel");
    } else {
        combine_scalar_kernel<<<grid_for(tokens * hidden, 256), 256, 0, st>>>(y, inv, weights, tokens, k, hidden,
                                                                              out);
        MOE_CUDA_LAUNCH_CHECK("combine_scalar_kernel");
    }
}

}  // namespace moe::gpu
