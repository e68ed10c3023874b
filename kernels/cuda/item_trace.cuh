// Per-item timelines of a persistent kernel (MOELAB_TRACE_ITEMS=<file>), for kernels/bench/trace_items.py: the kernel
// writes kTraceWords words per item into a device buffer (null: not traced), and the host writes the last call's
// items to <file> as CSV. A diagnostic: a traced call waits for the GPU and copies the trace back, so time with it off.
// The wgmma expert FFN (experts_wgmma.cu) records them, and decode's and mid's two launches (experts_decode.cu,
// experts_mid.cu: gate/up items first, then down).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace moe::gpu {

// Per item: the SM, when the producer took it, when its inputs were ready (the take again where it waits for none),
// when its first stage had landed, when its epilogue was done (%globaltimer ns), gated | expert << 1, and when its
// last MMAs were done (the epilogue's start); the wgmma kernel's second consumer warpgroup: when its last MMAs were
// done and when its epilogue was (0: one warpgroup, or not recorded).
constexpr int kTraceWords = 9;

// The GPU's clock (%globaltimer, ns) and the SM a thread runs on, for the traces (and the wait timeouts).
__device__ __forceinline__ std::uint64_t global_ns() {
    std::uint64_t t;
    asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
    return t;
}
__device__ __forceinline__ unsigned sm_id() {
    unsigned v;
    asm volatile("mov.u32 %0, %%smid;\n" : "=r"(v));
    return v;
}
// An item's row in the layout above, written as the item goes (no time held in registers), for kernels whose items
// have no stages of their own (decode, mid): trace_begin when its loads start (taken at `take`, or now where 0),
// trace_mark(r, kTraceMma) when its products are done, trace_end once its stores are.
constexpr int kTraceMma = 6;
__device__ __forceinline__ void trace_begin(std::uint64_t* r, std::uint64_t take) {
    const std::uint64_t now = global_ns();
    r[1] = take ? take : now, r[2] = now, r[3] = now;
}
__device__ __forceinline__ void trace_mark(std::uint64_t* r, int word) { r[word] = global_ns(); }
__device__ __forceinline__ void trace_end(std::uint64_t* r, unsigned gated, int expert) {
    r[0] = sm_id(), r[4] = global_ns(), r[5] = gated | (unsigned(expert) << 1);
}

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
