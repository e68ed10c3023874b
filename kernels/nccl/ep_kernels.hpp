// The few kernels the expert-parallel layer needs beyond the cuda backend's launchers: inputs over a slice of the
// global index range (so each rank generates exactly its part of the CPU reference's tensors) and row regrouping.
#pragma once
#include <cstdint>

#include "kernels/api.hpp"

namespace moe::nccl {

// out[i] = rng_bf16(seed, stream_id, first + i, scale) for i < n: elements [first, first + n) of a global tensor.
void make_bf16_range(std::uint64_t seed, std::uint64_t stream_id, std::int64_t first, std::int64_t n, float scale,
                     bf16_t* out, Stream s);

// logits[t, e] = log p_e + Gumbel(seed, (first_token + t)·E + e) for t < tokens: the CPU reference's popularity
// logits of the global tokens [first_token, first_token + tokens).
void popularity_logits_range(std::uint64_t seed, const float* logp, std::int64_t first_token, std::int64_t tokens,
                             int experts, float* logits, Stream s);

// Copies rows of `hidden` bf16 between two layouts. Segments tile the destination: rows [dst_start[j],
// dst_start[j + 1]) come from source rows src_start[j] + (row − dst_start[j]), or are zeros where src_start[j] < 0
// (padding). dst_start has nseg + 1 entries and ends with `rows`. When row_tag is given it gets j for copied rows
// and −1 for padding (the experts launcher skips rows tagged < 0). Every pointer is on the device.
void copy_segments(const bf16_t* src, bf16_t* dst, int hidden, const std::int32_t* dst_start,
                   const std::int32_t* src_start, int nseg, std::int64_t rows, std::int32_t* row_tag, Stream s);

// counts[e] = number of ids[i] == e for i < n (ids < 0, dropped, are not counted); counts is zeroed first.
void count_experts(const std::int32_t* ids, std::int64_t n, int experts, std::int32_t* counts, Stream s);

// Holds stream s until the host writes a value >= epoch to *flag (pinned, mapped host memory), or until
// timeout_s has passed on the GPU's clock (so a host that died cannot leave it spinning forever). Queued ahead of a
// burst of work and opened once the host has queued the burst, it keeps the host's enqueue latency out of the
// burst's spans (the wait shows up as a span of its own).
void gate(const volatile unsigned* flag, unsigned epoch, double timeout_s, Stream s);

}  // namespace moe::nccl
