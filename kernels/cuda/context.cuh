// Per-thread GPU context of the cuda backend: cuBLAS handles and side streams, made once and kept.
// Kept for the life of the thread on purpose: destroying them at process exit races the driver's own teardown.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdlib>

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

// While set, blas_on() hands out this handle instead of the context's main one. The measured pipeline sets one
// handle per pool, because two pools running GEMMs at once must not share a handle's workspace.
inline thread_local cublasHandle_t blas_override = nullptr;
inline thread_local void* blas_override_ws = nullptr;                   // the override's own workspace (BlasOwner)
constexpr std::size_t kOverrideWorkspaceBytes = std::size_t(32) << 20;  // its size: cuBLAS's advice for Hopper

// SMs the expert FFN may use (0: all): set by SmBudget (launchers.hpp) while a kernel of another stream, such as an
// NCCL exchange, needs SMs of its own. The persistent kernels size their grids by it, cuBLAS through
// cublasSetSmCountTarget (with_budget).
inline thread_local int sm_budget = 0;

// h with this thread's SM budget as its SM count target.
inline cublasHandle_t with_budget(cublasHandle_t h) {
    MOE_CUBLAS_CHECK(cublasSetSmCountTarget(h, sm_budget));
    return h;
}

// The main cuBLAS handle (or the override) bound to stream s.
inline cublasHandle_t blas_on(cudaStream_t s) {
    cublasHandle_t h = blas_override ? blas_override : context().blas;
    MOE_CUBLAS_CHECK(cublasSetStream(h, s));  // which also puts the handle back on the default workspace pool
    static const bool own_ws = [] {           // MOELAB_PIPELINE_BLAS_WS=0: the default pool (side-by-side runs)
        const char* env = std::getenv("MOELAB_PIPELINE_BLAS_WS");
        return !(env && env[0] == '0' && !env[1]);
    }();
    if (blas_override && blas_override_ws && own_ws)
        MOE_CUBLAS_CHECK(cublasSetWorkspace(h, blas_override_ws, kOverrideWorkspaceBytes));
    return with_budget(h);
}

inline cudaStream_t to_cuda(Stream s) { return static_cast<cudaStream_t>(s); }

inline unsigned grid_for(std::int64_t items, int per_block) {
    std::int64_t g = (items + per_block - 1) / per_block;
    return static_cast<unsigned>(g < 1 ? 1 : g);
}

}  // namespace moe::gpu
