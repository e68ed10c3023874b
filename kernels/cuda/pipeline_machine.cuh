// Internal to the measured pipeline's executor (pipeline.cu: plan pass, schedules, span timing; pipeline_setup.cu:
// pools, micro-batches, memory check, buffers): the per-device and per-micro-batch state and the Machine both build.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/grouped_ffn.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/cuda/owners.cuh"
#include "kernels/cuda/pools.cuh"
#include "kernels/pipeline.hpp"

namespace moe::pipeline::gpu::detail {

using moe::gpu::BlasOwner;
using moe::gpu::DeviceBuffer;
using moe::gpu::EventPool;
using moe::gpu::StreamOwner;
using moe::gpu::UseBlas;

inline std::uint64_t mix(std::uint64_t seed, std::uint64_t a, std::uint64_t b) { return seed_for(seed, a, b); }

// One GPU's role: an attention device (micro-batches i with i mod n_a == its index) or the expert device.
struct AttnDevice {
    int device = 0;
    cudaStream_t stream = nullptr;  // the attention pool
    int sms = 0;
    std::unique_ptr<BlasOwner> blas;
    StreamOwner own_stream, a2e;                     // own_stream only when pools are whole devices
    DeviceBuffer<bf16_t> k, v;                       // KV cache of this device's sequences [n_seq, s, kv, 128]
    std::vector<DeviceBuffer<bf16_t>> wqkv, wo, wg;  // per layer
    DeviceBuffer<float> logp;
    DeviceBuffer<std::uint8_t> ws;  // attention + capacity + dispatch workspace (stream-ordered)
    DeviceBuffer<unsigned long long> stamp;
    std::int64_t first_seq = 0;  // global index of its first sequence
};

struct ExpertDevice {
    int device = 0;
    cudaStream_t stream = nullptr;
    int sms = 0;
    std::unique_ptr<BlasOwner> blas;
    StreamOwner own_stream, e2a;
    std::vector<DeviceBuffer<bf16_t>> w1, w2;  // per layer
    DeviceBuffer<std::uint8_t> ws;
    DeviceBuffer<bf16_t> h1, h;  // the grouped path's intermediates [max rows, 2F] and [max rows, F]
    DeviceBuffer<unsigned long long> stamp;
};

struct MicroBatch {
    int adev = 0;                  // index into the attention devices
    std::int64_t seq0 = 0, n = 0;  // global first sequence, sequences
    std::int64_t local0 = 0;       // first sequence within its attention device's KV cache
    std::int64_t max_rows = 0;
    // attention side. x0: the first layer's input, never written after it is made, so every iteration (and the plan
    // pass) computes the same thing; x: each later layer's input, and the last layer's output.
    DeviceBuffer<bf16_t> x0, x, h, xp, ya;
    DeviceBuffer<float> logits, w;
    DeviceBuffer<std::int32_t> ids, demand, counts, offsets, row_token, inv;
    // expert side
    DeviceBuffer<bf16_t> xe, ye;
    DeviceBuffer<std::int32_t> counts_e, offsets_e, row_token_e;
};

struct PlanEntry {
    std::vector<std::int32_t> counts, offsets;  // host copies: the GEMM shapes
    std::int64_t rows = 0;
    moe::gpu::GroupedFfn ffn;  // both projections, pointers uploaded by the plan pass
};

struct Recorded {
    int lane, layer, mb, device;
    cudaEvent_t start = nullptr, end = nullptr, t0 = nullptr;
    double bytes = 0;
};

class Machine {
  public:
    explicit Machine(const Spec& s);  // pipeline_setup.cu

    const Pools& pools() const { return pools_; }
    const std::string& device_name() const { return device_name_; }
    const std::vector<MicroBatch>& mbs() const { return mb_; }

    // The plan pass: the whole iteration colocated on one stream per device, reading each micro-batch's expert
    // counts back to the host. Its output is the unpipelined reference.
    void plan_pass();
    // One timed iteration. Returns the spans (empty when !time_spans) and the iteration time.
    double iteration(std::vector<Span>* spans);
    // The device plan of the last layer must equal the plan pass (routing is deterministic).
    void check_plan();
    std::vector<bf16_t> output();
    std::vector<double> rows_layer0() const;

  private:
    const Spec& s_;
    Strategy strategy_;
    Pools pools_;
    std::string device_name_;
    std::unique_ptr<moe::gpu::SmPools> sm_pools_;
    int attn_sms_ = 0;
    int ndev_ = 1;
    std::vector<AttnDevice> attn_;
    ExpertDevice expert_;
    std::vector<MicroBatch> mb_;
    std::vector<PlanEntry> plan_;
    std::vector<EventPool> events_;  // per device
    std::vector<Recorded> rec_;
    std::vector<cudaEvent_t> t0_;
    bool planned_ = false;
    std::size_t attn_ws_ = 0, route_ws_ = 0, expert_ws_ = 0;

    static void set_device(int d) { MOE_CUDA_CHECK(cudaSetDevice(d)); }
    cudaEvent_t ev(int dev) { return events_[dev].get(); }

    attention::Spec attn_spec(std::int64_t n) const {
        attention::Spec a;
        a.batch = n;
        a.context = s_.context;
        a.q_heads = s_.q_heads;
        a.kv_groups = s_.kv_groups;
        a.hidden = s_.layer.hidden;
        return a;
    }

    // ---- setup (pipeline_setup.cu) ------------------------------------------------------------------------
    void split_micro_batches();
    void check_memory(const std::vector<moe::gpu::DeviceInfo>& devs);
    void allocate();
    void sync_all();

    template <class F>
    void for_each_stream(F&& f) {
        for (auto& ad : attn_) {
            f(ad.device, ad.stream);
            if (ad.a2e.s) f(ad.device, ad.a2e.s);
        }
        if (expert_.stream != attn_[0].stream) f(expert_.device, expert_.stream);
        if (expert_.e2a.s) f(expert_.device, expert_.e2a.s);
    }

    // ---- the work of each step (no host syncs; pipeline.cu) -----------------------------------------------
    void attention_step(int l, MicroBatch& mb, cudaStream_t st);
    void experts_step(int l, std::size_t i, MicroBatch& mb, cudaStream_t st, bool from_packed);
    // Both projections as cublasGemmGroupedBatchedEx calls over the non-empty experts. The first call for a
    // (layer, micro-batch) happens in the plan pass and uploads its pointers; later calls only launch.
    bool grouped(int l, std::size_t i, MicroBatch& mb, cudaStream_t st, bool from_packed);
    void combine(MicroBatch& mb, cudaStream_t st);
    void copy(void* dst, int dst_dev, const void* src, int src_dev, std::size_t bytes, cudaStream_t st,
              unsigned long long* stamp);
    double copy_a2e(int l, std::size_t i, MicroBatch& mb, cudaStream_t st, unsigned long long* stamp);
    double copy_e2a(int l, std::size_t i, MicroBatch& mb, cudaStream_t st, unsigned long long* stamp);

    // ---- schedules (pipeline.cu) --------------------------------------------------------------------------
    // Opens a span on stream st: waits on `after` (if any) and records the start event when spans are timed.
    Recorded& open(int lane, int l, int i, int dev, cudaStream_t st, cudaEvent_t after);
    cudaEvent_t close(int dev, cudaStream_t st);
    static std::string tag(const char* what, int l, std::size_t i);
    void enqueue_pipelined();
    // Colocated: per micro-batch, attention then experts then combine, all on one stream of the whole GPU.
    void enqueue_colocated();

    bool grouped_ = true;  // one grouped GEMM per projection; false after cuBLAS said it cannot
    // MOELAB_PIPELINE_FFN=grouped: the cuBLAS grouped GEMMs even where the engine's choice is decode, mid or wgmma.
    bool force_grouped_ = [] {
        const char* v = std::getenv("MOELAB_PIPELINE_FFN");
        return v && std::string(v) == "grouped";
    }();

  public:
    std::string impl_ = "serial";
};

}  // namespace moe::pipeline::gpu::detail
