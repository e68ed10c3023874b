// Grouped expert FFN of a known plan (kernels/cuda/grouped_ffn.cuh).
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/grouped_ffn.cuh"

namespace moe::gpu {
namespace {

// h[r, f] = bf16(silu(h1[r, f])·h1[r, F + f]) for r < rows (the reference's order of roundings).
__global__ void silu_rows_kernel(const bf16_t* h1, std::int64_t rows, int ffn, bf16_t* h) {
    const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= rows * ffn) return;
    const std::int64_t r = i / ffn;
    const int f = int(i % ffn);
    const float g = bf16_to_f32(h1[r * 2 * ffn + f]), u = bf16_to_f32(h1[r * 2 * ffn + ffn + f]);
    h[i] = f32_to_bf16(g / (1.0f + expf(-g)) * u);
}

}  // namespace

void GroupedFfn::prepare(const std::vector<std::int32_t>& counts, const std::vector<std::int32_t>& offsets, int d,
                         int F, const GroupedFfnOperands& ops) {
    std::vector<int> idx;
    for (std::size_t e = 0; e < counts.size(); ++e)
        if (counts[e] > 0) idx.push_back(int(e));
    const int g = groups_ = int(idx.size());
    ffn_ = F, rows_ = offsets.empty() ? 0 : offsets.back(), h1_ = ops.h1, h_ = ops.h;
    prepared_ = true;
    if (g == 0) return;
    m1_.assign(g, 2 * F), k1_.assign(g, d), ld1_.assign(g, d);
    m2_.assign(g, d), k2_.assign(g, F), ld2_.assign(g, F);
    n_.resize(g), sizes_.assign(g, 1), op_t_.assign(g, CUBLAS_OP_T), op_n_.assign(g, CUBLAS_OP_N);
    alpha_.assign(g, 1.0f), beta_.assign(g, 0.0f);
    std::vector<const void*> host(6 * std::size_t(g));
    for (int j = 0; j < g; ++j) {
        const int e = idx[j];
        const std::int64_t r0 = offsets[e];
        n_[j] = counts[e];
        host[0 * g + j] = ops.w1 + std::int64_t(e) * 2 * F * d;
        host[1 * g + j] = ops.x + r0 * d;
        host[2 * g + j] = ops.h1 + r0 * 2 * F;
        host[3 * g + j] = ops.w2 + std::int64_t(e) * d * F;
        host[4 * g + j] = ops.h + r0 * F;
        host[5 * g + j] = ops.y + r0 * d;
    }
    ptrs_ = DeviceBuffer<const void*>(host.size(), "grouped GEMM pointers");
    MOE_CUDA_CHECK(cudaMemcpy(ptrs_.data(), host.data(), host.size() * sizeof(void*), cudaMemcpyHostToDevice));
}

bool GroupedFfn::launch(cudaStream_t st) {
    const int g = groups_;
    if (g == 0) return true;
    const void* const* dp = ptrs_.data();
    cublasHandle_t h = blas_on(st);
    cublasStatus_t s1 = cublasGemmGroupedBatchedEx(
        h, op_t_.data(), op_n_.data(), m1_.data(), n_.data(), k1_.data(), alpha_.data(), dp + 0 * g, CUDA_R_16BF,
        ld1_.data(), dp + 1 * g, CUDA_R_16BF, k1_.data(), beta_.data(), const_cast<void* const*>(dp + 2 * g),
        CUDA_R_16BF, m1_.data(), g, sizes_.data(), CUBLAS_COMPUTE_32F);
    if (s1 == CUBLAS_STATUS_NOT_SUPPORTED) return false;
    MOE_CUBLAS_CHECK(s1);
    const std::int64_t items = rows_ * ffn_;
    silu_rows_kernel<<<unsigned((items + 255) / 256), 256, 0, st>>>(h1_, rows_, ffn_, h_);
    MOE_CUDA_LAUNCH_CHECK("silu_rows_kernel");
    MOE_CUBLAS_CHECK(cublasGemmGroupedBatchedEx(
        h, op_t_.data(), op_n_.data(), m2_.data(), n_.data(), k2_.data(), alpha_.data(), dp + 3 * g, CUDA_R_16BF,
        ld2_.data(), dp + 4 * g, CUDA_R_16BF, k2_.data(), beta_.data(), const_cast<void* const*>(dp + 5 * g),
        CUDA_R_16BF, m2_.data(), g, sizes_.data(), CUBLAS_COMPUTE_32F));
    return true;
}

}  // namespace moe::gpu
