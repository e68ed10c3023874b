// The measured pipeline's links: device-to-device (or peer) copies, paced to a chosen rate when asked, so that one
// GPU can stand in for a slower link between pools (the spans are then labelled `emulated`).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace moe::gpu {

// Copies `bytes` from src (on src_dev) to dst (on dst_dev) on stream st. With pace_gbps > 0 and a device word for
// the start stamp, the copy goes in chunks (at least 64 KiB, at most 16 of them), each followed by a wait on the
// device's global timer, so that it takes at least bytes / rate; the stream is never blocked on the host.
void paced_copy(void* dst, int dst_dev, const void* src, int src_dev, std::size_t bytes, double pace_gbps,
                cudaStream_t st, unsigned long long* stamp);

}  // namespace moe::gpu
