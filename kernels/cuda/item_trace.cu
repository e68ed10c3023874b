// Per-item timelines of a persistent kernel: the host side (item_trace.cuh).
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/item_trace.cuh"

namespace moe::gpu {

const char* item_trace_path(cudaStream_t st) {
    const char* p = std::getenv("MOELAB_TRACE_ITEMS");
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (!p || !*p || cudaStreamIsCapturing(st, &cs) != cudaSuccess || cs != cudaStreamCaptureStatusNone) return nullptr;
    return p;
}

std::uint64_t* item_trace_buffer(std::int64_t items, cudaStream_t st) {
    static std::uint64_t* buf = nullptr;
    static std::int64_t cap = 0;
    if (items > cap) {
        if (buf) MOE_CUDA_CHECK(cudaFree(buf));
        MOE_CUDA_CHECK(cudaMalloc(&buf, sizeof(std::uint64_t) * kTraceWords * items));
        cap = items;
    }
    MOE_CUDA_CHECK(cudaMemsetAsync(buf, 0, sizeof(std::uint64_t) * kTraceWords * items, st));
    return buf;
}

void write_item_trace(const char* path, const std::uint64_t* buf, std::int64_t items, const std::string& header,
                      cudaStream_t st) {
    MOE_CUDA_CHECK(cudaStreamSynchronize(st));
    std::vector<std::uint64_t> t(std::size_t(items) * kTraceWords);
    MOE_CUDA_CHECK(cudaMemcpy(t.data(), buf, t.size() * sizeof(std::uint64_t), cudaMemcpyDeviceToHost));
    FILE* f = std::fopen(path, "w");
    MOE_ASSERT(f != nullptr, "MOELAB_TRACE_ITEMS: cannot write " << path);
    std::fprintf(f, "# %s\n", header.c_str());
    std::fprintf(f, "item,sm,take,ready,first,end,gated,expert,mma,mma2,end2\n");
    for (std::int64_t i = 0; i < items; ++i) {
        const std::uint64_t* r = &t[std::size_t(i) * kTraceWords];
        if (r[1] == 0) continue;  // not an item of this call
        std::fprintf(f, "%lld,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu\n", static_cast<long long>(i),
                     static_cast<unsigned long long>(r[0]), static_cast<unsigned long long>(r[1]),
                     static_cast<unsigned long long>(r[2]), static_cast<unsigned long long>(r[3]),
                     static_cast<unsigned long long>(r[4]), static_cast<unsigned long long>(r[5] & 1),
                     static_cast<unsigned long long>(r[5] >> 1), static_cast<unsigned long long>(r[6]),
                     static_cast<unsigned long long>(r[7]), static_cast<unsigned long long>(r[8]));
    }
    std::fclose(f);
}

}  // namespace moe::gpu
