// Owners of CUDA resources for the measured pipeline's executor: a pool of reusable events per device, a
// non-blocking stream, a cuBLAS handle, and a scope that routes this thread's cuBLAS calls to one handle.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <utility>
#include <vector>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"

namespace moe::gpu {

struct EventPool {
    std::vector<cudaEvent_t> ev;
    int device = 0;
    std::size_t next = 0;
    cudaEvent_t get() {
        if (next == ev.size()) {
            cudaEvent_t e;
            MOE_CUDA_CHECK(cudaEventCreate(&e));
            ev.push_back(e);
        }
        return ev[next++];
    }
    ~EventPool() {
        for (auto e : ev) cudaEventDestroy(e);
    }
};

struct StreamOwner {
    cudaStream_t s = nullptr;
    StreamOwner() = default;
    explicit StreamOwner(int device) {
        MOE_CUDA_CHECK(cudaSetDevice(device));
        MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    }
    StreamOwner(StreamOwner&& o) noexcept : s(std::exchange(o.s, nullptr)) {}
    StreamOwner& operator=(StreamOwner&& o) noexcept {
        std::swap(s, o.s);
        return *this;
    }
    ~StreamOwner() {
        if (s) cudaStreamDestroy(s);
    }
};

struct BlasOwner {
    cublasHandle_t h = nullptr;
    explicit BlasOwner(int device) {
        MOE_CUDA_CHECK(cudaSetDevice(device));
        MOE_CUBLAS_CHECK(cublasCreate(&h));
    }
    ~BlasOwner() {
        if (h) cublasDestroy(h);
    }
};

// Uses `h` for every cuBLAS call of this thread while in scope.
struct UseBlas {
    cublasHandle_t prev;
    explicit UseBlas(cublasHandle_t h) : prev(moe::gpu::blas_override) { moe::gpu::blas_override = h; }
    ~UseBlas() { moe::gpu::blas_override = prev; }
};

}  // namespace moe::gpu
