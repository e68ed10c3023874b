// Decode attention, the attention stage of MegaScale-Infer's ping-pong pipeline: one new token per sequence,
// QKV projection, GQA attention over a read-only bf16 KV cache, output projection. CPU reference + GPU launchers.
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/bf16.hpp"

namespace moe {

using Stream = void*;  // a cudaStream_t (the same alias as kernels/api.hpp)

namespace attention {

// The shape of one decode-attention call.
//
//   x     [batch, hidden]                         bf16, one new token per sequence
//   wqkv  [(q_heads + 2·kv_groups)·128, hidden]    bf16: the q rows of every head, then k rows, then v rows
//   wo    [hidden, q_heads·128]                   bf16
//   k, v  [batch, kv_groups, context − 1, 128]    bf16 each: the cache holds the context − 1 positions *before*
//         this token (positions 0 .. context − 2), head-major so that one (sequence, group) is one contiguous run
//         of rows. It is read-only: position context − 1 is this token's fresh k, v from qkv, never written back,
//         so one cache can be shared by every layer and micro-batch of a pipeline. context = 1 needs no cache.
//   out   [batch, hidden]                         bf16
//
// Semantics (the CPU reference is the truth):
//   qkv = bf16(x·wqkv^T) with fp32 accumulation; q_h = qkv[b, h·128 ..], k_fresh_g = qkv[b, (H + g)·128 ..],
//   v_fresh_g = qkv[b, (H + G + g)·128 ..]. Query head h reads kv group g = h / (H / G).
//   score_p = (q_h · k_p)/sqrt(128) in fp32, p = softmax over the context positions in fp32,
//   attn[b, h·128 ..] = bf16(Σ_p p·v_p) with fp32 sums, out = bf16(attn·wo^T) with fp32 accumulation.
struct Spec {
    std::int64_t batch = 1;  // ba: sequences, one query token each
    int context = 512;       // s: positions attended, the fresh token included
    int q_heads = 16;        // H
    int kv_groups = 4;       // G: KV heads, divides H
    int hidden = 1024;       // d
    static constexpr int head_dim = 128;
};

// Throws BadInput naming the field, its value and what is allowed.
void validate(const Spec& spec);

std::int64_t qkv_cols(const Spec& spec);  // (H + 2G)·128
std::int64_t kv_elems(const Spec& spec);  // elements of k (and of v): batch·G·(context − 1)·128

// Bytes and FLOPs of one call, for the roofline. kv_bytes counts every position attended, K and V:
// 4·128·batch·G·context (the fresh position comes from qkv, the rest from the cache).
double kv_bytes(const Spec& spec);
double weight_bytes(const Spec& spec);  // wqkv + wo
double flops(const Spec& spec);         // both projections + q·k and p·v

// Generated inputs (counter RNG, own streams): uniform in [-scale, scale) rounded to bf16.
// wqkv scale sqrt(3/d) and wo scale sqrt(3/(H·128)) keep the variance of every projection output at that of its
// input; the cache uses scale 1, the spread of a fresh k or v when x has x_scale() = 1. `layer` selects an
// independent set of weights (0 <= layer < 65536); the cache does not depend on it.
constexpr std::uint64_t kStreamK = 0xA770'0001, kStreamV = 0xA770'0002;  // the cache
constexpr std::uint64_t kStreamWeights = 0xA771'0000;                    // + 2·layer (wqkv), + 2·layer + 1 (wo)
constexpr int kMaxLayers = 65536;
float wqkv_scale(const Spec& spec);
float wo_scale(const Spec& spec);
float kv_scale();
void make_weights(std::uint64_t seed, int layer, const Spec& spec, bf16_t* wqkv, bf16_t* wo);
void make_kv(std::uint64_t seed, const Spec& spec, bf16_t* k, bf16_t* v);

// The CPU reference. threads = 0: hardware concurrency. The result does not depend on the thread count.
void decode(const Spec& spec, const bf16_t* x, const bf16_t* wqkv, const bf16_t* wo, const bf16_t* k, const bf16_t* v,
            bf16_t* out, int threads);
// Its middle step alone: qkv [batch, qkv_cols] → attn [batch, H·128].
void attend(const Spec& spec, const bf16_t* qkv, const bf16_t* k, const bf16_t* v, bf16_t* attn, int threads);

namespace gpu {
// Which attention kernel the launchers below use, process-wide (read at each plan and launch, so size workspaces
// after choosing). Registers: each thread loads its tensor-core fragments from global memory, one step ahead.
// Pipelined: each warp streams K and V through a cp.async ring in shared memory, two steps ahead (more bytes in
// flight per SM): the default, faster on the whole GPU and on a green context's share of it (MOELAB_ATTENTION_KERNEL=
// registers starts a process on the other). Both are checked against the CPU reference by the gpu tests. Defined in
// the CPU library.
enum class Kernel { Registers, Pipelined };
void set_kernel(Kernel k);
Kernel kernel();
const char* kernel_name(Kernel k);  // "registers" | "pipelined"

// Bit-equal to the CPU make_* (the buffers are device pointers, 16-byte aligned).
void make_weights(std::uint64_t seed, int layer, const Spec& spec, bf16_t* wqkv, bf16_t* wo, Stream s);
void make_kv(std::uint64_t seed, const Spec& spec, bf16_t* k, bf16_t* v, Stream s);

// How the attention kernel is split: ctas = batch·G·head_tiles·splits, each split a run of `chunk` positions.
// It depends on sm_count, the SMs of the context the kernel will run on (a green context may own only part of
// the device); sm_count <= 0 means every SM of the current device.
struct Plan {
    int head_tiles = 1;  // ceil((H/G) / 16): query heads of one group are done 16 at a time
    int splits = 1;      // position chunks per (sequence, group, head tile); 1 = no combine pass
    int chunk = 0;       // positions per split
    std::int64_t ctas = 0;
};
Plan plan(const Spec& spec, int sm_count);

// Device workspace of decode (qkv, attn and the split partials) and of attend (partials only), for that sm_count.
// It serves every batch from 1 to spec.batch (the other fields equal): size it once for a pipeline's largest
// micro-batch. Costs up to a few milliseconds of host time (it searches the batches that split); call it at setup.
std::size_t workspace_bytes(const Spec& spec, int sm_count);
std::size_t attend_workspace_bytes(const Spec& spec, int sm_count);

// out = decode(x) on stream s: cuBLAS for both projections (the calling thread's handle), our split-K kernel
// and, when split, a combine kernel. No allocation, no host synchronisation; ws must hold workspace_bytes().
void decode(const Spec& spec, const bf16_t* x, const bf16_t* wqkv, const bf16_t* wo, const bf16_t* k, const bf16_t* v,
            bf16_t* out, void* ws, std::size_t ws_bytes, int sm_count, Stream s);
// The attention step alone, qkv → attn (ws must hold attend_workspace_bytes()).
void attend(const Spec& spec, const bf16_t* qkv, const bf16_t* k, const bf16_t* v, bf16_t* attn, void* ws,
            std::size_t ws_bytes, int sm_count, Stream s);
}  // namespace gpu

}  // namespace attention
}  // namespace moe
