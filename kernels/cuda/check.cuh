// Error checks for CUDA and cuBLAS calls: each failure becomes a moe::Error naming the call, the file and the line.
// Library code never exits; the CLI and GUI catch the error at the top (see kernels/common/error.hpp).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <sstream>

#include "kernels/common/error.hpp"

namespace moe::gpu {

// Clears the sticky "last error" so that one failure does not poison every later check.
[[noreturn]] inline void throw_cuda(cudaError_t err, const char* call, const char* where) {
    (void)cudaGetLastError();
    std::ostringstream os;
    os << where << ": " << call << " failed: " << cudaGetErrorName(err) << " (" << cudaGetErrorString(err) << ")";
    ErrorKind kind = err == cudaErrorMemoryAllocation ? ErrorKind::OutOfMemory
                     : (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) ? ErrorKind::NoDevice
                                                                                          : ErrorKind::Runtime;
    throw Error(kind, os.str());
}

[[noreturn]] inline void throw_cublas(cublasStatus_t st, const char* call, const char* where) {
    std::ostringstream os;
    os << where << ": " << call << " failed: " << cublasGetStatusName(st) << " (" << cublasGetStatusString(st) << ")";
    throw Error(st == CUBLAS_STATUS_ALLOC_FAILED ? ErrorKind::OutOfMemory : ErrorKind::Runtime, os.str());
}

}  // namespace moe::gpu

#define MOE_CUDA_CHECK(call)                                                                         \
    do {                                                                                             \
        cudaError_t moe_err_ = (call);                                                               \
        if (moe_err_ != cudaSuccess)                                                                 \
            ::moe::gpu::throw_cuda(moe_err_, #call, __FILE__ ":" MOE_STRINGIFY(__LINE__));          \
    } while (0)

#define MOE_CUBLAS_CHECK(call)                                                                       \
    do {                                                                                             \
        cublasStatus_t moe_st_ = (call);                                                             \
        if (moe_st_ != CUBLAS_STATUS_SUCCESS)                                                        \
            ::moe::gpu::throw_cublas(moe_st_, #call, __FILE__ ":" MOE_STRINGIFY(__LINE__));         \
    } while (0)

// After a <<<...>>> launch: a bad configuration shows up in cudaGetLastError, not in the launch itself.
#define MOE_CUDA_LAUNCH_CHECK(name)                                                                  \
    do {                                                                                             \
        cudaError_t moe_err_ = cudaGetLastError();                                                   \
        if (moe_err_ != cudaSuccess)                                                                 \
            ::moe::gpu::throw_cuda(moe_err_, "launch of " name, __FILE__ ":" MOE_STRINGIFY(__LINE__)); \
    } while (0)
