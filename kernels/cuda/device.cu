// The cuda backend's device plumbing: which GPUs exist, memory with errors that name the bytes, streams,
// events, the per-thread context, and the two measured ceilings the benchmark floors use.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

#include "kernels/api.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/launchers.hpp"

namespace moe::gpu {

namespace {
std::string gib(std::size_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / (1024.0 * 1024.0 * 1024.0));
    return buf;
}
}  // namespace

bool built() { return true; }

std::vector<DeviceInfo> devices() {
    std::vector<DeviceInfo> out;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return out;
    }
    for (int i = 0; i < n; ++i) {
        cudaDeviceProp p{};
        if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
            (void)cudaGetLastError();
            continue;
        }
        DeviceInfo d;
        d.index = i;
        d.name = p.name;
        d.memory_bytes = p.totalGlobalMem;
        d.sm_count = p.multiProcessorCount;
        d.cc_major = p.major;
        d.cc_minor = p.minor;
        out.push_back(d);
    }
    return out;
}

std::string unavailable_reason() {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return std::string("the CUDA runtime says ") + cudaGetErrorName(err) + " (" +
               cudaGetErrorString(err) + ")";
    }
    if (n == 0) return "the CUDA runtime found no device";
    return "";
}

std::size_t free_memory_bytes(int device) {
    int cur = 0;
    if (cudaGetDevice(&cur) != cudaSuccess) return 0;
    if (device != cur && cudaSetDevice(device) != cudaSuccess) return (void)cudaGetLastError(), 0;
    std::size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError();
    if (device != cur) cudaSetDevice(cur);
    return free_b;
}

// ---- memory ------------------------------------------------------------------------------------------
void* device_alloc(std::size_t bytes, const char* what) {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaSuccess) return p;
    (void)cudaGetLastError();
    std::size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    (void)cudaGetLastError();
    std::ostringstream os;
    os << "cudaMalloc of " << bytes << " bytes (" << gib(bytes) << ") for " << what << " failed: "
       << cudaGetErrorString(err) << "; " << free_b << " bytes (" << gib(free_b) << ") free of " << gib(total_b);
    throw Error(err == cudaErrorMemoryAllocation ? ErrorKind::OutOfMemory : ErrorKind::Runtime, os.str());
}

void device_free(void* p) noexcept {
    if (p) cudaFree(p);
}

void copy_h2d(void* dst, const void* src, std::size_t bytes) {
    if (bytes) MOE_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
void copy_d2h(void* dst, const void* src, std::size_t bytes) {
    if (bytes) MOE_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
void copy_d2d(void* dst, const void* src, std::size_t bytes, Stream s) {
    if (bytes) MOE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, to_cuda(s)));
}
void fill_bytes(void* dst, int byte, std::size_t bytes, Stream s) {
    if (bytes) MOE_CUDA_CHECK(cudaMemsetAsync(dst, byte, bytes, to_cuda(s)));
}
void synchronize(Stream s) {
    if (s)
        MOE_CUDA_CHECK(cudaStreamSynchronize(to_cuda(s)));
    else
        MOE_CUDA_CHECK(cudaDeviceSynchronize());
}
bool device_usable() noexcept {
    (void)cudaGetLastError();
    return cudaDeviceSynchronize() == cudaSuccess && cudaGetLastError() == cudaSuccess;
}
Stream create_stream() {
    cudaStream_t s = nullptr;
    MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return s;
}
void destroy_stream(Stream s) noexcept {
    if (s) cudaStreamDestroy(to_cuda(s));
}
std::size_t l2_bytes() {
    int dev = 0, l2 = 0;
    MOE_CUDA_CHECK(cudaGetDevice(&dev));
    MOE_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    return static_cast<std::size_t>(l2);
}

Event create_event() {
    cudaEvent_t e = nullptr;
    MOE_CUDA_CHECK(cudaEventCreate(&e));
    return e;
}
void destroy_event(Event e) noexcept {
    if (e) cudaEventDestroy(static_cast<cudaEvent_t>(e));
}
void record_event(Event e, Stream s) { MOE_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(e), to_cuda(s))); }
float elapsed_ms(Event start, Event stop) {
    MOE_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(stop)));
    float ms = 0;
    MOE_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(stop)));
    return ms;
}

// ---- context -----------------------------------------------------------------------------------------
Context& context() {
    // One per thread and device; never destroyed (see context.cuh).
    thread_local std::vector<Context*> per_device;
    int dev = 0;
    MOE_CUDA_CHECK(cudaGetDevice(&dev));
    if (int(per_device.size()) <= dev) per_device.resize(dev + 1, nullptr);
    if (!per_device[dev]) {
        auto* c = new Context;
        c->device = dev;
        MOE_CUBLAS_CHECK(cublasCreate(&c->blas));
        for (int i = 0; i < kSideStreams; ++i) {
            MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&c->side[i], cudaStreamNonBlocking));
            MOE_CUBLAS_CHECK(cublasCreate(&c->side_blas[i]));
            MOE_CUBLAS_CHECK(cublasSetStream(c->side_blas[i], c->side[i]));
            MOE_CUDA_CHECK(cudaEventCreateWithFlags(&c->join[i], cudaEventDisableTiming));
        }
        MOE_CUDA_CHECK(cudaEventCreateWithFlags(&c->fork, cudaEventDisableTiming));
        per_device[dev] = c;
    }
    return *per_device[dev];
}

SmBudget::SmBudget(int sms) : prev_(sm_budget) { sm_budget = sms > 0 ? sms : 0; }
SmBudget::~SmBudget() { sm_budget = prev_; }
int device_sms() {
    int dev = 0, sms = 0;
    MOE_CUDA_CHECK(cudaGetDevice(&dev));
    MOE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    return sms;
}

// ---- ceilings ----------------------------------------------------------------------------------------
namespace {
double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}
}  // namespace

double measure_copy_gbps(std::size_t bytes, int repeats) {
    DeviceBuffer<std::uint8_t> a(bytes, "copy ceiling source"), b(bytes, "copy ceiling destination");
    fill_bytes(a.data(), 0x5A, bytes, nullptr);
    Event e0 = create_event(), e1 = create_event();
    std::vector<double> ms;
    for (int i = 0; i < repeats + 3; ++i) {
        record_event(e0, nullptr);
        copy_d2d(b.data(), a.data(), bytes, nullptr);
        record_event(e1, nullptr);
        double t = elapsed_ms(e0, e1);
        if (i >= 3) ms.push_back(t);
    }
    destroy_event(e0);
    destroy_event(e1);
    return 2.0 * double(bytes) / (median(ms) * 1e-3) / 1e9;
}

double measure_gemm_tflops(int n, int repeats) {
    std::size_t elems = std::size_t(n) * n;
    DeviceBuffer<bf16_t> a(elems, "gemm ceiling A"), b(elems, "gemm ceiling B"), c(elems, "gemm ceiling C");
    make_bf16(11, 1, std::int64_t(elems), 1.0f, a.data(), nullptr);  // random data: zeros run faster
    make_bf16(12, 1, std::int64_t(elems), 1.0f, b.data(), nullptr);
    cublasHandle_t h = blas_on(nullptr);
    const float one = 1.0f, zero = 0.0f;
    Event e0 = create_event(), e1 = create_event();
    std::vector<double> ms;
    for (int i = 0; i < repeats + 3; ++i) {
        record_event(e0, nullptr);
        MOE_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, a.data(), CUDA_R_16BF, n, b.data(),
                                      CUDA_R_16BF, n, &zero, c.data(), CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT));
        record_event(e1, nullptr);
        double t = elapsed_ms(e0, e1);
        if (i >= 3) ms.push_back(t);
    }
    destroy_event(e0);
    destroy_event(e1);
    return 2.0 * double(n) * n * n / (median(ms) * 1e-3) / 1e12;
}

}  // namespace moe::gpu
