// Per-thread GPU context of the cuda backend: cuBLAS handles and side streams, made once and kept.
// Kept for the life of the thread on purpose: destroying them at process exit races the driver's own teardown.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "kernels/api.hpp"
#include "kernels/cuda/check.cuh"

namespace moe::gpu {

constexpr int kSideStreams = 4;  // streams the per-expert GEMMs are spread over

struct Context {
    int device = -1;
    cublasHandle_t blas = nullptr;                 // follows the caller's stream
    cublasHandle_t side_blas[kSideStreams] = {};   // one per side stream: a handle's workspace is not shared safely
    cudaStream_t side[kSideStreams] = {};
    cudaEvent_t fork = nullptr;
    cudaEvent_t join[kSideStreams] = {};
};

// The context of the calling thread on the current device (created on first use).
Context& context();

// The main cuBLAS handle bound to stream s.
inline cublasHandle_t blas_on(cudaStream_t s) {
    Context& c = context();
    MOE_CUBLAS_CHECK(cublasSetStream(c.blas, s));
    return c.blas;
}

inline cudaStream_t to_cuda(Stream s) { return static_cast<cudaStream_t>(s); }

inline unsigned grid_for(std::int64_t items, int per_block) {
    std::int64_t g = (items + per_block - 1) / per_block;
    return static_cast<unsigned>(g < 1 ? 1 : g);
}

}  // namespace moe::gpu
