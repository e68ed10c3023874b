// Paced copies (kernels/cuda/links.cuh) and the link probe of the measured pipeline (kernels/pipeline.hpp).
#include <algorithm>
#include <vector>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/cuda/links.cuh"
#include "kernels/cuda/owners.cuh"
#include "kernels/pipeline.hpp"

namespace moe::gpu {
namespace {

// Waits on the device until `start` + `delay_ns` (the global timer): paces a chunked copy on its stream.
__global__ void stamp_kernel(unsigned long long* t) {
    unsigned long long now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    *t = now;
}
__global__ void spin_until_kernel(const unsigned long long* start, unsigned long long delay_ns) {
    const unsigned long long until = *start + delay_ns;
    for (;;) {
        unsigned long long now;
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
        if (now >= until) break;
        __nanosleep(200);
    }
}

}  // namespace

void paced_copy(void* dst, int dst_dev, const void* src, int src_dev, std::size_t bytes, double pace_gbps,
                cudaStream_t st, unsigned long long* stamp) {
    if (bytes == 0) return;
    auto raw = [&](void* d, const void* s, std::size_t n) {
        if (dst_dev == src_dev)
            MOE_CUDA_CHECK(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToDevice, st));
        else
            MOE_CUDA_CHECK(cudaMemcpyPeerAsync(d, dst_dev, s, src_dev, n, st));
    };
    if (!(pace_gbps > 0) || !stamp) return raw(dst, src, bytes);
    const std::size_t chunk = std::max<std::size_t>(64 << 10, bytes / 16);
    stamp_kernel<<<1, 1, 0, st>>>(stamp);
    MOE_CUDA_LAUNCH_CHECK("stamp_kernel");
    for (std::size_t off = 0; off < bytes; off += chunk) {
        const std::size_t n = std::min(chunk, bytes - off);
        raw(static_cast<char*>(dst) + off, static_cast<const char*>(src) + off, n);
        const double ns = double(off + n) / (pace_gbps * 1e9) * 1e9;
        spin_until_kernel<<<1, 1, 0, st>>>(stamp, static_cast<unsigned long long>(ns));
        MOE_CUDA_LAUNCH_CHECK("spin_until_kernel");
    }
}

}  // namespace moe::gpu

namespace moe::pipeline::gpu {

void probe(const Spec& spec, const std::vector<double>& copy_bytes, Probe& out) {
    // Link utilisation against message size: one copy per size on its own stream, paced as the pipeline's links
    // are, the median of 20 after 3 warm-ups.
    auto devs = moe::gpu::devices();
    if (devs.empty()) throw Error(ErrorKind::NoDevice, "the probe needs a GPU; " + moe::gpu::unavailable_reason());
    int src = 0;
    MOE_CUDA_CHECK(cudaGetDevice(&src));
    const int dst = spec.multi_device && devs.size() >= 2 ? spec.attention_devices : src;
    out.device = devs[src].name;
    double biggest = 0;
    for (double b : copy_bytes) biggest = std::max(biggest, b);
    MOE_CUDA_CHECK(cudaSetDevice(dst));
    moe::gpu::DeviceBuffer<std::uint8_t> b(std::size_t(biggest), "probe destination");
    MOE_CUDA_CHECK(cudaSetDevice(src));
    moe::gpu::DeviceBuffer<std::uint8_t> a(std::size_t(biggest), "probe source");
    moe::gpu::DeviceBuffer<unsigned long long> stamp(1, "stamp");
    moe::gpu::StreamOwner st(src);
    moe::gpu::EventPool events;
    cudaEvent_t e0 = events.get(), e1 = events.get();
    out.copy_bytes.clear();
    out.copy_ms.clear();
    for (double bytes : copy_bytes) {
        std::vector<double> ms;
        for (int r = 0; r < 23; ++r) {
            MOE_CUDA_CHECK(cudaEventRecord(e0, st.s));
            moe::gpu::paced_copy(b.data(), dst, a.data(), src, std::size_t(bytes), spec.pace_gbps, st.s, stamp.data());
            MOE_CUDA_CHECK(cudaEventRecord(e1, st.s));
            MOE_CUDA_CHECK(cudaEventSynchronize(e1));
            float t = 0;
            MOE_CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
            if (r >= 3) ms.push_back(t);
        }
        std::sort(ms.begin(), ms.end());
        out.copy_bytes.push_back(bytes);
        out.copy_ms.push_back(ms[ms.size() / 2]);
    }
}

}  // namespace moe::pipeline::gpu
