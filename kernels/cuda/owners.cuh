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

// A cuBLAS handle with a workspace of its own. cuBLAS's results are bit-reproducible only while one stream is active,
// unless each stream's calls have their own workspace: otherwise it picks among internal workspaces, and with them
// kernels, by what the concurrent streams hold (the cuBLAS guide, "Results reproducibility"). Two pools run GEMMs at
// once, so each gets a handle and a workspace (blas_on sets it again after each cublasSetStream, which resets it).
struct BlasOwner {
    cublasHandle_t h = nullptr;
    void* ws = nullptr;
    explicit BlasOwner(int device) {
        MOE_CUDA_CHECK(cudaSetDevice(device));
        MOE_CUBLAS_CHECK(cublasCreate(&h));
        if (const cudaError_t e = cudaMalloc(&ws, kOverrideWorkspaceBytes); e != cudaSuccess) {
            cublasDestroy(h);
            h = nullptr;
            throw_cuda(e, "cudaMalloc of a 32 MiB cuBLAS workspace", "pipeline");
        }
    }
    BlasOwner(const BlasOwner&) = delete;
    BlasOwner& operator=(const BlasOwner&) = delete;
    ~BlasOwner() {
        if (h) cublasDestroy(h);
        if (ws) cudaFree(ws);
    }
};

// Uses `b`'s handle and workspace for every cuBLAS call of this thread while in scope.
struct UseBlas {
    cublasHandle_t prev;
    void* prev_ws;
    explicit UseBlas(const BlasOwner& b) : prev(moe::gpu::blas_override), prev_ws(moe::gpu::blas_override_ws) {
        moe::gpu::blas_override = b.h;
        moe::gpu::blas_override_ws = b.ws;
    }
    ~UseBlas() {
        moe::gpu::blas_override = prev;
        moe::gpu::blas_override_ws = prev_ws;
    }
};

}  // namespace moe::gpu
