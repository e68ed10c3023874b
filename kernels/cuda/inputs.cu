// Inputs on the device from the counter-based RNG: activations, gate and expert weights, and the Gumbel
// popularity logits. Each value is a pure function of (seed, stream, index), so they equal the CPU's bit for bit.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/api.hpp"
#include "kernels/common/rng.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/launchers.hpp"

namespace moe::gpu {

namespace {

// Eight values per thread so that every store is one 16-byte vector (the weights of S3 are 22 GB).
__global__ void make_bf16_kernel(std::uint64_t seed, std::uint64_t stream_id, std::int64_t n, float scale,
                                 bf16_t* out) {
    const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x * 8;
    for (std::int64_t i = (std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * 8; i < n; i += stride) {
        if (i + 8 <= n) {
            alignas(16) bf16_t v[8];
#pragma unroll
            for (int j = 0; j < 8; ++j) v[j] = rng_bf16(seed, stream_id, std::uint64_t(i + j), scale);
            *reinterpret_cast<uint4*>(out + i) = *reinterpret_cast<const uint4*>(v);
        } else {
            for (std::int64_t j = i; j < n; ++j) out[j] = rng_bf16(seed, stream_id, std::uint64_t(j), scale);
        }
    }
}

__global__ void popularity_logits_kernel(std::uint64_t seed, const float* logp, std::int64_t tokens, int experts,
                                         float* logits) {
    const std::int64_t n = tokens * experts;
    const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
    for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
        logits[i] = add_rn(logp[i % experts], rng_gumbel(seed, std::uint64_t(i)));
}

unsigned capped_grid(std::int64_t items, int per_block) {
    std::int64_t g = (items + per_block - 1) / per_block;
    return static_cast<unsigned>(g < 1 ? 1 : (g > 65536 ? 65536 : g));  // grid-stride loops cover the rest
}

}  // namespace

void make_bf16(std::uint64_t seed, std::uint64_t stream_id, std::int64_t n, float scale, bf16_t* out, Stream s) {
    if (n <= 0) return;
    MOE_ASSERT((reinterpret_cast<std::uintptr_t>(out) & 15) == 0, "make_bf16 needs a 16-byte aligned buffer");
    make_bf16_kernel<<<capped_grid((n + 7) / 8, 256), 256, 0, to_cuda(s)>>>(seed, stream_id, n, scale, out);
    MOE_CUDA_LAUNCH_CHECK("make_bf16_kernel");
}

void make_x(std::uint64_t seed, std::int64_t tokens, int hidden, bf16_t* x, Stream s) {
    make_bf16(seed, kStreamX, tokens * hidden, x_scale(), x, s);
}
void make_gate(std::uint64_t seed, int experts, int hidden, bf16_t* wg, Stream s) {
    make_bf16(seed, kStreamGate, std::int64_t(experts) * hidden, gate_scale(hidden), wg, s);
}
void make_w1(std::uint64_t seed, int experts, int ffn, int hidden, bf16_t* w1, Stream s) {
    make_bf16(seed, kStreamW1, std::int64_t(experts) * 2 * ffn * hidden, w1_scale(hidden), w1, s);
}
void make_w2(std::uint64_t seed, int experts, int hidden, int ffn, bf16_t* w2, Stream s) {
    make_bf16(seed, kStreamW2, std::int64_t(experts) * hidden * ffn, w2_scale(ffn), w2, s);
}

}  // namespace moe::gpu

namespace moe::route::gpu {

void popularity_logits(std::uint64_t seed, const float* logp_dev, std::int64_t tokens, int experts, float* logits,
                       Stream s) {
    if (tokens <= 0) return;
    MOE_ASSERT(experts >= 1, "experts must be >= 1");
    ::moe::gpu::popularity_logits_kernel<<<::moe::gpu::capped_grid(tokens * experts, 256), 256, 0,
                                           ::moe::gpu::to_cuda(s)>>>(
        seed, logp_dev, tokens, experts, logits);
    MOE_CUDA_LAUNCH_CHECK("popularity_logits_kernel");
}

}  // namespace moe::route::gpu
