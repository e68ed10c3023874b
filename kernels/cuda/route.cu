// Routing on the GPU: the gate GEMM through cuBLAS and a fused softmax + top-k, one warp per token.
// Top-k follows the reference: larger logit first, ties to the lower expert id; weights are softmax probabilities.
#include <cuda_runtime.h>

#include <cfloat>
#include <climits>
#include <cstdint>

#include "kernels/api.hpp"
#include "kernels/common/rng.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/launchers.hpp"

namespace moe::gpu {

namespace {

constexpr int kRouteWarps = 8;  // tokens per 256-thread block

// (v, e) comes before (bv, be) in the pick order: larger logit first, ties to the lower expert id.
__device__ __forceinline__ bool before(float v, int e, float bv, int be) { return v > bv || (v == bv && e < be); }

// Picks are made in that total order, so "not picked yet" is "after the previous pick": no mask is needed,
// which lets the same loop serve any k ≤ E.
__device__ __forceinline__ bool after(float v, int e, float pv, int pe) { return v < pv || (v == pv && e > pe); }

__device__ __forceinline__ void warp_best(float& bv, int& be) {
#pragma unroll
    for (int off = 16; off; off >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, bv, off);
        int oe = __shfl_xor_sync(0xffffffffu, be, off);
        if (before(ov, oe, bv, be)) bv = ov, be = oe;
    }
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int off = 16; off; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = 16; off; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// One warp per token. kVpl > 0: the row lives in registers, kVpl values per lane (E ≤ 32·kVpl), the fast path.
// kVpl == 0: any E, the row is re-read from memory (L1) on each pass.
template <int kVpl>
__global__ void __launch_bounds__(kRouteWarps * 32)
    softmax_topk_kernel(float* logits, const float* bias, std::int64_t tokens, int experts, int k, bool renormalize,
                        std::int32_t* ids, float* weights) {
    const int lane = threadIdx.x & 31;
    const std::int64_t t = std::int64_t(blockIdx.x) * kRouteWarps + (threadIdx.x >> 5);
    if (t >= tokens) return;
    float* row = logits + t * experts;

    float v[kVpl > 0 ? kVpl : 1];
    float mx = -INFINITY;
    if constexpr (kVpl > 0) {
#pragma unroll
        for (int i = 0; i < kVpl; ++i) {
            int e = lane + 32 * i;
            v[i] = -INFINITY;
            if (e < experts) {
                float x = row[e];
                if (bias) {
                    x = add_rn(x, bias[e]);
                    row[e] = x;
                }
                v[i] = x;
                mx = fmaxf(mx, x);
            }
        }
    } else {
        for (int e = lane; e < experts; e += 32) {
            float x = row[e];
            if (bias) {
                x = add_rn(x, bias[e]);
                row[e] = x;
            }
            mx = fmaxf(mx, x);
        }
        __syncwarp();  // the biased row written above is read back by other lanes below
    }
    mx = warp_max(mx);

    float sum = 0.f;
    if constexpr (kVpl > 0) {
#pragma unroll
        for (int i = 0; i < kVpl; ++i)
            if (lane + 32 * i < experts) sum += expf(v[i] - mx);
    } else {
        for (int e = lane; e < experts; e += 32) sum += expf(row[e] - mx);
    }
    sum = warp_sum(sum);

    float pv = INFINITY;  // the previous pick; everything comes after (+inf, -1)
    int pe = -1;
    float wsum = 0.f;
    for (int j = 0; j < k; ++j) {
        float bv = -INFINITY;
        int be = INT_MAX;
        if constexpr (kVpl > 0) {
#pragma unroll
            for (int i = 0; i < kVpl; ++i) {
                int e = lane + 32 * i;
                if (e < experts && after(v[i], e, pv, pe) && before(v[i], e, bv, be)) bv = v[i], be = e;
            }
        } else {
            for (int e = lane; e < experts; e += 32) {
                float x = row[e];
                if (after(x, e, pv, pe) && before(x, e, bv, be)) bv = x, be = e;
            }
        }
        warp_best(bv, be);
        pv = bv, pe = be;
        // Every lane holds the same pick and probability, so the renormalising sum runs in j order like the CPU's.
        float p = be == INT_MAX ? 0.f : expf(bv - mx) / sum;
        wsum += p;
        if (lane == (j & 31)) {
            ids[t * k + j] = be == INT_MAX ? -1 : be;  // only with NaN logits; keeps later stages in bounds
            weights[t * k + j] = p;
        }
    }
    if (renormalize) {
        // Each lane rescales the entries it wrote itself: no other lane's store is read.
        for (int j = lane; j < k; j += 32) weights[t * k + j] = weights[t * k + j] / wsum;
    }
}

}  // namespace

void softmax_topk_bias(float* logits, const float* bias, std::int64_t tokens, int experts, int k, bool renormalize,
                       std::int32_t* ids, float* weights, Stream s) {
    MOE_ASSERT(k >= 1 && k <= experts, "top-k " << k << " must be in [1, " << experts << "]");
    if (tokens <= 0) return;
    const unsigned grid = grid_for(tokens, kRouteWarps);
    const int threads = kRouteWarps * 32;
    cudaStream_t st = to_cuda(s);
    if (experts <= 32)
        softmax_topk_kernel<1><<<grid, threads, 0, st>>>(logits, bias, tokens, experts, k, renormalize, ids, weights);
    else if (experts <= 64)
        softmax_topk_kernel<2><<<grid, threads, 0, st>>>(logits, bias, tokens, experts, k, renormalize, ids, weights);
    else if (experts <= 128)
        softmax_topk_kernel<4><<<grid, threads, 0, st>>>(logits, bias, tokens, experts, k, renormalize, ids, weights);
    else if (experts <= 256)
        softmax_topk_kernel<8><<<grid, threads, 0, st>>>(logits, bias, tokens, experts, k, renormalize, ids, weights);
    else if (experts <= 512)
        softmax_topk_kernel<16><<<grid, threads, 0, st>>>(logits, bias, tokens, experts, k, renormalize, ids, weights);
    else
        softmax_topk_kernel<0><<<grid, threads, 0, st>>>(logits, bias, tokens, experts, k, renormalize, ids, weights);
    MOE_CUDA_LAUNCH_CHECK("softmax_topk_kernel");
}

void gate_route(const bf16_t* x, const bf16_t* wg, const float* logp, std::int64_t tokens, int hidden, int experts,
                int k, bool renormalize, float* logits, std::int32_t* ids, float* weights, Stream s) {
    if (tokens <= 0) return;
    MOE_ASSERT(tokens <= INT_MAX, "gate GEMM: " << tokens << " tokens exceed cuBLAS's int range");
    // Row-major logits[T, E] = x[T, d]·wg[E, d]^T is column-major logits^T[E, T] = wg^T(op T)·x^T.
    const float one = 1.0f, zero = 0.0f;
    MOE_CUBLAS_CHECK(cublasGemmEx(blas_on(to_cuda(s)), CUBLAS_OP_T, CUBLAS_OP_N, experts, int(tokens), hidden, &one,
                                  wg, CUDA_R_16BF, hidden, x, CUDA_R_16BF, hidden, &zero, logits, CUDA_R_32F, experts,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    softmax_topk_bias(logits, logp, tokens, experts, k, renormalize, ids, weights, s);
}

}  // namespace moe::gpu

namespace moe::route::gpu {

void softmax_topk(const float* logits, std::int64_t tokens, int experts, int k, bool renormalize, std::int32_t* ids,
                  float* weights, Stream s) {
    // Without a bias the kernel only reads the logits.
    ::moe::gpu::softmax_topk_bias(const_cast<float*>(logits), nullptr, tokens, experts, k, renormalize, ids, weights,
                                  s);
}

}  // namespace moe::route::gpu
