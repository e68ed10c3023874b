// Per-item timelines of a persistent kernel (MOELAB_TRACE_ITEMS=<file>), for kernels/bench/trace_items.py: the kernel
// writes kTraceWords words per item into a device buffer (null: not traced), and the host writes the last call's
// items to <file> as CSV. A diagnostic: a traced call waits for the GPU and copies the trace back, so time with it off.
// The wgmma expert FFN (experts_wgmma.cu) is the one kernel that records them.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace moe::gpu {

// Per item: the SM, when the producer took it, when its inputs were ready (the take again where it waits for none),
// when its first stage had landed, when its epilogue was done (%globaltimer ns), gated | expert << 1, and when its
// last MMAs were done (the epilogue's start).
constexpr int kTraceWords = 7;

// The trace file named by MOELAB_TRACE_ITEMS, or null: not set, or the stream is being captured into a graph (a
// traced call has to wait for the GPU).
const char* item_trace_path(cudaStream_t st);

// A zeroed device buffer for `items` items (grown as needed, kept for the next call), on the stream.
std::uint64_t* item_trace_buffer(std::int64_t items, cudaStream_t st);

// Waits for the stream and writes the recorded items of `buf` to `path`: the line `# <header>`, then one CSV row per
// item the call ran (item,sm,take,ready,first,end,gated,expert).
void write_item_trace(const char* path, const std::uint64_t* buf, std::int64_t items, const std::string& header,
                      cudaStream_t st);

}  // namespace moe::gpu
