// The measured ping-pong pipeline (kernels/pipeline.hpp): buffers, the plan pass, the pipelined and the colocated
// schedules, span timing with CUDA events, paced copies and NVTX ranges.
//
// Per micro-batch i and layer l, on the attention pool: [combine(l−1, i)] → attention(l, i) → route → capacity →
// pack; the A2E link copies the packed rows (and the plan) to the expert pool; the expert pool runs the gated FFN;
// the E2A link copies the expert outputs back; combine(l, i) opens the attention pool's next step for i. One host
// thread enqueues everything in (layer, micro-batch) order, so each pool is FIFO by readiness as in the model,
// and the only waits are events between streams. The expert GEMM shapes come from a plan pass (the same work run
// colocated, with a host copy of each micro-batch's expert counts), and the timed run checks that the device
// produced the same plan.
#include <cuda_runtime.h>
#include <nvtx3/nvToolsExt.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <sstream>

#include "kernels/attention.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/grouped_ffn.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/cuda/links.cuh"
#include "kernels/cuda/owners.cuh"
#include "kernels/cuda/pools.cuh"
#include "kernels/pipeline.hpp"

namespace moe::pipeline {

namespace gpu {

using moe::gpu::BlasOwner;
using moe::gpu::DeviceBuffer;
using moe::gpu::EventPool;
using moe::gpu::StreamOwner;
using moe::gpu::UseBlas;

namespace {

struct Nvtx {
    explicit Nvtx(const std::string& name) { nvtxRangePushA(name.c_str()); }
    ~Nvtx() { nvtxRangePop(); }
};

std::uint64_t mix(std::uint64_t seed, std::uint64_t a, std::uint64_t b) { return seed_for(seed, a, b); }

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
    // attention side
    DeviceBuffer<bf16_t> x, h, xp, ya;
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

std::string gib(double b) {
    std::ostringstream os;
    os.precision(2);
    os << std::fixed << b / (1 << 30) << " GiB";
    return os.str();
}

class Machine {
  public:
    explicit Machine(const Spec& s) : s_(s) {
        const LayerSpec& ls = s.layer;
        if (s.micro_batches < 1 || s.layers < 1) MOE_BAD_INPUT("pipeline: micro-batches and layers must be >= 1");
        if (ls.tokens < s.micro_batches)
            MOE_BAD_INPUT("pipeline: --tokens " << ls.tokens << " must be at least --micro-batches " << s.micro_batches
                                                << " (each micro-batch needs a sequence)");
        if (s.q_heads % s.kv_groups != 0) MOE_BAD_INPUT("pipeline: --kv-groups must divide --q-heads");
        auto devs = moe::gpu::devices();
        if (devs.empty())
            throw Error(ErrorKind::NoDevice, "the measured pipeline needs a GPU; " + moe::gpu::unavailable_reason());
        strategy_ = ls.strategy == Strategy::NoPack ? Strategy::Scan : ls.strategy;  // A2E carries packed rows

        // Pools.
        if (s.multi_device) {
            const int need = s.attention_devices + 1;
            if (int(devs.size()) < need)
                throw Error(ErrorKind::NoDevice, "the pipeline across devices needs " + std::to_string(need) +
                                                     " GPUs (" + std::to_string(s.attention_devices) +
                                                     " attention + 1 expert); this machine has " +
                                                     std::to_string(devs.size()));
            pools_.kind = "devices";
            for (int a = 0; a < s.attention_devices; ++a) pools_.attention_devices.push_back(a);
            pools_.expert_device = s.attention_devices;
            device_name_ = devs[0].name + " ×" + std::to_string(need);
            for (int a = 0; a < need; ++a)
                for (int b = 0; b < need; ++b) {
                    if (a == b) continue;
                    int ok = 0;
                    MOE_CUDA_CHECK(cudaDeviceCanAccessPeer(&ok, a, b));
                    if (!ok) continue;
                    MOE_CUDA_CHECK(cudaSetDevice(a));
                    cudaError_t e = cudaDeviceEnablePeerAccess(b, 0);
                    if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled) MOE_CUDA_CHECK(e);
                    (void)cudaGetLastError();
                }
        } else {
            int dev = 0;
            MOE_CUDA_CHECK(cudaGetDevice(&dev));
            pools_.attention_devices = {dev};
            pools_.expert_device = dev;
            device_name_ = devs[std::min<int>(dev, int(devs.size()) - 1)].name;
            if (!s.colocated) {
                sm_pools_ = std::make_unique<moe::gpu::SmPools>(dev, s.attention_sms);
                pools_.kind = sm_pools_->green() ? "green-contexts" : "shared-streams";
                pools_.why = sm_pools_->why();
            } else {
                pools_.kind = "colocated";
            }
        }
        cudaDeviceProp prop{};
        MOE_CUDA_CHECK(cudaGetDeviceProperties(&prop, pools_.attention_devices[0]));
        pools_.device_sms = prop.multiProcessorCount;
        pools_.attention_sms = sm_pools_ ? sm_pools_->attention_sms() : prop.multiProcessorCount;
        pools_.expert_sms = sm_pools_ ? sm_pools_->expert_sms() : prop.multiProcessorCount;
        // The attention kernel's split-K is sized for the attention pool; a colocated run told the split sizes
        // it the same way, so that its output equals the pipelined one bit for bit.
        // Without green contexts (an old driver, or under compute-sanitizer) the pool has every SM, yet a split asked
        // for still sizes the kernel, so that the output stays that of the partitioned run.
        attn_sms_ = pools_.attention_sms;
        if ((s.colocated || (sm_pools_ && !sm_pools_->green())) && s.attention_sms > 0)
            attn_sms_ = std::min(s.attention_sms, prop.multiProcessorCount);

        split_micro_batches();
        check_memory(devs);
        allocate();
    }

    const Pools& pools() const { return pools_; }
    const std::string& device_name() const { return device_name_; }
    const std::vector<MicroBatch>& mbs() const { return mb_; }

    // The plan pass: the whole iteration colocated on one stream per device, reading each micro-batch's expert
    // counts back to the host. Its output is the unpipelined reference.
    void plan_pass() {
        Nvtx r("plan pass");
        plan_.clear();
        plan_.resize(std::size_t(s_.layers) * mb_.size());
        for (int l = 0; l < s_.layers; ++l)
            for (std::size_t i = 0; i < mb_.size(); ++i) {
                MicroBatch& mb = mb_[i];
                AttnDevice& ad = attn_[mb.adev];
                set_device(ad.device);
                cudaStream_t st = ad.stream;
                if (l > 0) combine(mb, st);
                attention_step(l, mb, st);
                PlanEntry& p = plan_[std::size_t(l) * mb_.size() + i];
                p.counts.resize(s_.layer.experts);
                p.offsets.resize(s_.layer.experts + 1);
                MOE_CUDA_CHECK(cudaMemcpyAsync(p.counts.data(), mb.counts.data(), 4 * p.counts.size(),
                                               cudaMemcpyDeviceToHost, st));
                MOE_CUDA_CHECK(cudaMemcpyAsync(p.offsets.data(), mb.offsets.data(), 4 * p.offsets.size(),
                                               cudaMemcpyDeviceToHost, st));
                MOE_CUDA_CHECK(cudaStreamSynchronize(st));
                p.rows = p.offsets.back();
                if (!s_.multi_device && !sm_pools_) {
                    experts_step(l, i, mb, st, /*from_packed=*/true);
                } else {
                    copy_a2e(l, i, mb, ad.a2e.s ? ad.a2e.s : st, nullptr);
                    sync_all();
                    experts_step(l, i, mb, expert_.stream, false);
                    copy_e2a(l, i, mb, expert_.e2a.s ? expert_.e2a.s : expert_.stream, nullptr);
                    sync_all();
                }
            }
        for (auto& mb : mb_) {
            set_device(attn_[mb.adev].device);
            combine(mb, attn_[mb.adev].stream);
        }
        sync_all();
        planned_ = true;
    }

    // One timed iteration. Returns the spans (empty when !time_spans) and the iteration time.
    double iteration(std::vector<Span>* spans) {
        MOE_ASSERT(planned_, "pipeline: the plan pass must run first");
        rec_.clear();
        for (auto& p : events_) p.next = 0;
        // Every device's streams start from one event on the first attention stream.
        const int dev0 = attn_[0].device;
        set_device(dev0);
        cudaEvent_t go = ev(dev0);
        MOE_CUDA_CHECK(cudaEventRecord(go, attn_[0].stream));
        std::vector<cudaEvent_t> t0(ndev_, nullptr);
        for_each_stream([&](int dev, cudaStream_t st) {
            set_device(dev);
            MOE_CUDA_CHECK(cudaStreamWaitEvent(st, go, 0));
            if (!t0[dev]) {
                t0[dev] = ev(dev);
                MOE_CUDA_CHECK(cudaEventRecord(t0[dev], st));
            }
        });
        t0_ = t0;
        if (s_.colocated)
            enqueue_colocated();
        else
            enqueue_pipelined();
        // Join: the last event of every stream, then time the whole.
        set_device(dev0);
        cudaEvent_t end = ev(dev0);
        for (auto& r : rec_) {
            if (r.device == dev0) continue;
            MOE_CUDA_CHECK(cudaStreamWaitEvent(attn_[0].stream, r.end, 0));
        }
        for (auto& r : rec_)
            if (r.device == dev0) MOE_CUDA_CHECK(cudaStreamWaitEvent(attn_[0].stream, r.end, 0));
        MOE_CUDA_CHECK(cudaEventRecord(end, attn_[0].stream));
        MOE_CUDA_CHECK(cudaEventSynchronize(end));
        float total = 0;
        MOE_CUDA_CHECK(cudaEventElapsedTime(&total, t0[dev0], end));
        double iter = total;
        if (spans) {
            spans->clear();
            for (auto& r : rec_) {
                if (!r.start) continue;
                float a = 0, b = 0;
                set_device(r.device);
                MOE_CUDA_CHECK(cudaEventElapsedTime(&a, t0[r.device], r.start));
                MOE_CUDA_CHECK(cudaEventElapsedTime(&b, t0[r.device], r.end));
                Span sp;
                sp.lane = r.lane, sp.layer = r.layer, sp.micro_batch = r.mb, sp.device = r.device;
                sp.start_ms = a, sp.end_ms = b, sp.bytes = r.bytes;
                spans->push_back(sp);
                iter = std::max(iter, double(b));
            }
        }
        return iter;
    }

    // The device plan of the last layer must equal the plan pass (routing is deterministic).
    void check_plan() {
        const int l = s_.layers - 1;
        for (std::size_t i = 0; i < mb_.size(); ++i) {
            set_device(attn_[mb_[i].adev].device);
            auto c = mb_[i].counts.download(s_.layer.experts);
            const PlanEntry& p = plan_[std::size_t(l) * mb_.size() + i];
            if (c != p.counts)
                throw Error(ErrorKind::Runtime, "pipeline: micro-batch " + std::to_string(i) +
                                                    " routed differently in the timed run than in the plan pass");
        }
    }

    std::vector<bf16_t> output() {
        const int d = s_.layer.hidden;
        std::vector<bf16_t> out(std::size_t(s_.layer.tokens) * d);
        for (auto& mb : mb_) {
            set_device(attn_[mb.adev].device);
            auto part = mb.x.download(std::size_t(mb.n) * d);
            std::copy(part.begin(), part.end(), out.begin() + mb.seq0 * d);
        }
        return out;
    }

    std::vector<double> rows_layer0() const {
        std::vector<double> r;
        for (std::size_t i = 0; i < mb_.size(); ++i) r.push_back(double(plan_[i].rows));
        return r;
    }

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

    void split_micro_batches() {
        const std::int64_t B = s_.layer.tokens;
        const int m = s_.micro_batches;
        const int na = int(pools_.attention_devices.size());
        std::vector<std::int64_t> per_dev(na, 0);
        mb_.resize(m);
        for (int i = 0; i < m; ++i) {
            MicroBatch& mb = mb_[i];
            mb.seq0 = micro_batch_start(B, m, i);
            mb.n = micro_batch_start(B, m, i + 1) - mb.seq0;
            mb.adev = i % na;
            mb.local0 = per_dev[mb.adev];
            per_dev[mb.adev] += mb.n;
            mb.max_rows = dispatch::max_rows(mb.n, s_.layer.top_k, s_.layer.experts, s_.layer.align);
        }
        attn_.resize(na);
        for (int a = 0; a < na; ++a) attn_[a].first_seq = per_dev[a];  // temporarily: sequences on the device
        int maxdev = pools_.expert_device;
        for (int d : pools_.attention_devices) maxdev = std::max(maxdev, d);
        ndev_ = maxdev + 1;
        events_.resize(ndev_);
    }

    void check_memory(const std::vector<moe::gpu::DeviceInfo>& devs) {
        (void)devs;
        const LayerSpec& ls = s_.layer;
        const double d = ls.hidden, E = ls.experts, F = ls.ffn, L = s_.layers;
        std::int64_t max_n = 0, rows_all = 0;
        for (auto& mb : mb_) max_n = std::max(max_n, mb.n), rows_all += mb.max_rows;
        const auto a_all = attn_spec(ls.tokens);
        double attn_bytes = attention::kv_bytes(a_all) + L * attention::weight_bytes(a_all) +
                            double(ls.tokens) * d * 2 * 2 + double(rows_all) * d * 2 * 2;
        double expert_bytes = L * E * 3 * F * d * 2 + double(rows_all) * d * 2 * 2;
        auto fits = [&](int dev, double bytes) {
            const double free_b = double(moe::gpu::free_memory_bytes(dev));
            if (bytes + (512.0 * (1 << 20)) > free_b) {
                std::ostringstream os;
                os << "the pipeline needs about " << gib(bytes) << " on GPU " << dev << " (KV cache "
                   << gib(attention::kv_bytes(a_all)) << " for --tokens " << ls.tokens << " × --context " << s_.context
                   << ", expert weights " << gib(L * E * 3 * F * d * 2) << " for --layers " << s_.layers << ") but "
                   << gib(free_b) << " are free; lower --tokens, --context, --layers or --ffn";
                throw Error(ErrorKind::OutOfMemory, os.str());
            }
        };
        if (pools_.attention_devices.size() == 1 && pools_.attention_devices[0] == pools_.expert_device)
            fits(pools_.expert_device, attn_bytes + expert_bytes);
        else {
            fits(pools_.expert_device, expert_bytes);
            for (int a : pools_.attention_devices) fits(a, attn_bytes / pools_.attention_devices.size());
        }
    }

    void allocate() {
        const LayerSpec& ls = s_.layer;
        const int d = ls.hidden, E = ls.experts, k = ls.top_k, F = ls.ffn, L = s_.layers;
        std::int64_t max_n = 0, max_rows = 0;
        for (auto& mb : mb_) max_n = std::max(max_n, mb.n), max_rows = std::max(max_rows, mb.max_rows);
        attn_ws_ = attention::gpu::workspace_bytes(attn_spec(max_n), attn_sms_);
        route_ws_ = std::max(moe::gpu::capacity_workspace_bytes(max_n, k, E),
                             moe::gpu::dispatch_workspace_bytes(strategy_, max_n, k, E));
        expert_ws_ = moe::gpu::experts_workspace_bytes(max_rows, E, F);
        const std::vector<float> logp_host = route::log_popularity(ls.skew, E);

        for (std::size_t a = 0; a < attn_.size(); ++a) {
            AttnDevice& ad = attn_[a];
            const std::int64_t nseq = ad.first_seq;
            ad.device = pools_.attention_devices[a];
            set_device(ad.device);
            if (sm_pools_) {
                ad.stream = sm_pools_->attention_stream();
            } else {
                ad.own_stream = StreamOwner(ad.device);
                ad.stream = ad.own_stream.s;
            }
            ad.sms = attn_sms_;
            ad.blas = std::make_unique<BlasOwner>(ad.device);
            if (!s_.colocated) ad.a2e = StreamOwner(ad.device);
            const auto as = attn_spec(nseq);
            const std::size_t kv_elems = std::size_t(attention::kv_elems(as));
            ad.k = DeviceBuffer<bf16_t>(kv_elems, "KV cache (K)");
            ad.v = DeviceBuffer<bf16_t>(kv_elems, "KV cache (V)");
            attention::gpu::make_kv(mix(ls.seed, kSeedKV, a), as, ad.k.data(), ad.v.data(), ad.stream);
            const std::size_t qkv_rows = std::size_t(s_.q_heads + 2 * s_.kv_groups) * attention::Spec::head_dim;
            for (int l = 0; l < L; ++l) {
                ad.wqkv.emplace_back(qkv_rows * d, "attention Wqkv");
                ad.wo.emplace_back(std::size_t(d) * s_.q_heads * attention::Spec::head_dim, "attention Wo");
                attention::gpu::make_weights(ls.seed, l, as, ad.wqkv.back().data(), ad.wo.back().data(), ad.stream);
                if (ls.router == Router::Gate) {
                    ad.wg.emplace_back(std::size_t(E) * d, "gate weights");
                    moe::gpu::make_gate(mix(ls.seed, kSeedGate, l), E, d, ad.wg.back().data(), ad.stream);
                }
            }
            ad.logp = DeviceBuffer<float>(E, "log popularity");
            MOE_CUDA_CHECK(cudaMemcpyAsync(ad.logp.data(), logp_host.data(), 4 * E, cudaMemcpyHostToDevice, ad.stream));
            ad.ws = DeviceBuffer<std::uint8_t>(std::max(attn_ws_, route_ws_), "attention workspace");
            ad.stamp = DeviceBuffer<unsigned long long>(1, "link pacing stamp");
        }
        ExpertDevice& ed = expert_;
        ed.device = pools_.expert_device;
        set_device(ed.device);
        if (sm_pools_)
            ed.stream = sm_pools_->expert_stream();
        else if (s_.multi_device) {
            ed.own_stream = StreamOwner(ed.device);
            ed.stream = ed.own_stream.s;
        } else {
            ed.stream = attn_[0].stream;  // colocated: one stream
        }
        ed.sms = pools_.expert_sms;
        ed.blas = s_.colocated ? nullptr : std::make_unique<BlasOwner>(ed.device);
        if (!s_.colocated) ed.e2a = StreamOwner(ed.device);
        for (int l = 0; l < L; ++l) {
            ed.w1.emplace_back(std::size_t(E) * 2 * F * d, "expert w1");
            ed.w2.emplace_back(std::size_t(E) * d * F, "expert w2");
            moe::gpu::make_w1(mix(ls.seed, kSeedW1, l), E, F, d, ed.w1.back().data(), ed.stream);
            moe::gpu::make_w2(mix(ls.seed, kSeedW2, l), E, d, F, ed.w2.back().data(), ed.stream);
        }
        ed.ws = DeviceBuffer<std::uint8_t>(expert_ws_, "expert workspace");
        ed.h1 = DeviceBuffer<bf16_t>(std::size_t(max_rows) * 2 * F, "expert h1");
        ed.h = DeviceBuffer<bf16_t>(std::size_t(max_rows) * F, "expert h");
        ed.stamp = DeviceBuffer<unsigned long long>(1, "link pacing stamp");

        for (auto& mb : mb_) {
            AttnDevice& ad = attn_[mb.adev];
            set_device(ad.device);
            const std::size_t n = std::size_t(mb.n), R = std::size_t(mb.max_rows);
            mb.x = DeviceBuffer<bf16_t>(n * d, "layer input");
            mb.h = DeviceBuffer<bf16_t>(n * d, "attention output");
            mb.xp = DeviceBuffer<bf16_t>(R * d, "packed rows");
            mb.ya = DeviceBuffer<bf16_t>(R * d, "expert outputs (attention side)");
            mb.logits = DeviceBuffer<float>(n * E, "logits");
            mb.w = DeviceBuffer<float>(n * k, "top-k weights");
            mb.ids = DeviceBuffer<std::int32_t>(n * k, "top-k ids");
            mb.demand = DeviceBuffer<std::int32_t>(E, "demand");
            mb.counts = DeviceBuffer<std::int32_t>(E, "counts");
            mb.offsets = DeviceBuffer<std::int32_t>(E + 1, "offsets");
            mb.row_token = DeviceBuffer<std::int32_t>(R, "row_token");
            mb.inv = DeviceBuffer<std::int32_t>(n * k, "inverse map");
            // The micro-batch's first layer input: its slice of the batch's x.
            moe::gpu::make_x(mix(ls.seed, kSeedX, std::uint64_t(mb.seq0)), mb.n, d, mb.x.data(), ad.stream);
            if (s_.colocated || (!s_.multi_device && !sm_pools_)) {
                mb.counts_e = {}, mb.offsets_e = {}, mb.row_token_e = {};
            } else {
                set_device(expert_.device);
                mb.xe = DeviceBuffer<bf16_t>(R * d, "packed rows (expert side)");
                mb.ye = DeviceBuffer<bf16_t>(R * d, "expert outputs");
                mb.counts_e = DeviceBuffer<std::int32_t>(E, "counts (expert side)");
                mb.offsets_e = DeviceBuffer<std::int32_t>(E + 1, "offsets (expert side)");
                mb.row_token_e = DeviceBuffer<std::int32_t>(R, "row_token (expert side)");
            }
        }
        sync_all();
    }

    void sync_all() {
        for (auto& ad : attn_) {
            set_device(ad.device);
            MOE_CUDA_CHECK(cudaDeviceSynchronize());
        }
        set_device(expert_.device);
        MOE_CUDA_CHECK(cudaDeviceSynchronize());
    }

    template <class F>
    void for_each_stream(F&& f) {
        for (auto& ad : attn_) {
            f(ad.device, ad.stream);
            if (ad.a2e.s) f(ad.device, ad.a2e.s);
        }
        if (expert_.stream != attn_[0].stream) f(expert_.device, expert_.stream);
        if (expert_.e2a.s) f(expert_.device, expert_.e2a.s);
    }

    // ---- the work of each step (no host syncs) ------------------------------------------------------------
    void attention_step(int l, MicroBatch& mb, cudaStream_t st) {
        const LayerSpec& ls = s_.layer;
        AttnDevice& ad = attn_[mb.adev];
        UseBlas use(ad.blas->h);
        const int E = ls.experts, k = ls.top_k, d = ls.hidden;
        // The cache is [sequence, group, context − 1, 128]: a micro-batch's sequences are one contiguous slice.
        const std::size_t kv_off = std::size_t(attention::kv_elems(attn_spec(mb.local0)));
        attention::gpu::decode(attn_spec(mb.n), mb.x.data(), ad.wqkv[l].data(), ad.wo[l].data(), ad.k.data() + kv_off,
                               ad.v.data() + kv_off, mb.h.data(), ad.ws.data(), attn_ws_, attn_sms_, st);
        if (ls.router == Router::Gate) {
            moe::gpu::gate_route(mb.h.data(), ad.wg[l].data(), ad.logp.data(), mb.n, d, E, k, ls.renormalize,
                                 mb.logits.data(), mb.ids.data(), mb.w.data(), st);
        } else {
            route::gpu::popularity_logits(mix(ls.seed, l, std::uint64_t(mb.seq0)), ad.logp.data(), mb.n, E,
                                          mb.logits.data(), st);
            route::gpu::softmax_topk(mb.logits.data(), mb.n, E, k, ls.renormalize, mb.ids.data(), mb.w.data(), st);
        }
        const std::int64_t cap = route::capacity(ls.capacity_factor, mb.n, k, E);
        moe::gpu::capacity(mb.ids.data(), mb.w.data(), mb.n, k, E, cap, ls.drop_policy, mb.demand.data(), ad.ws.data(),
                           route_ws_, st);
        moe::gpu::dispatch(strategy_, mb.h.data(), mb.ids.data(), mb.n, k, E, d, ls.align, mb.counts.data(),
                           mb.offsets.data(), mb.row_token.data(), mb.inv.data(), mb.xp.data(), ad.ws.data(), route_ws_,
                           st);
    }

    void experts_step(int l, std::size_t i, MicroBatch& mb, cudaStream_t st, bool from_packed) {
        const LayerSpec& ls = s_.layer;
        const PlanEntry& p = plan_[std::size_t(l) * mb_.size() + i];
        ExpertDevice& ed = expert_;
        UseBlas use(ed.blas ? ed.blas->h : attn_[mb.adev].blas->h);
        if (grouped_ && grouped(l, i, mb, st, from_packed)) {
            impl_ = "grouped (pointers uploaded by the plan pass)";
            return;
        }
        // Serial: every GEMM on the pool's own stream (side streams would escape the SM partition).
        const auto impl = moe::gpu::experts_ffn(
            moe::gpu::ExpertsImpl::Serial, from_packed ? mb.xp.data() : mb.xe.data(), nullptr,
            from_packed ? mb.row_token.data() : mb.row_token_e.data(),
            from_packed ? mb.counts.data() : mb.counts_e.data(), from_packed ? mb.offsets.data() : mb.offsets_e.data(),
            p.counts.data(), p.offsets.data(), ls.experts, ls.hidden, ls.ffn, ed.w1[l].data(), ed.w2[l].data(),
            from_packed ? mb.ya.data() : mb.ye.data(), ed.ws.data(), expert_ws_, st);
        impl_ = moe::gpu::experts_impl_name(impl);
    }

    // Both projections as cublasGemmGroupedBatchedEx calls over the non-empty experts. The first call for a
    // (layer, micro-batch) happens in the plan pass and uploads its pointers; later calls only launch.
    bool grouped(int l, std::size_t i, MicroBatch& mb, cudaStream_t st, bool from_packed) {
        PlanEntry& p = plan_[std::size_t(l) * mb_.size() + i];
        ExpertDevice& ed = expert_;
        if (!p.ffn.prepared()) {
            moe::gpu::GroupedFfnOperands ops;
            ops.w1 = ed.w1[l].data(), ops.w2 = ed.w2[l].data();
            ops.x = from_packed ? mb.xp.data() : mb.xe.data();
            ops.y = from_packed ? mb.ya.data() : mb.ye.data();
            ops.h1 = ed.h1.data(), ops.h = ed.h.data();
            set_device(ed.device);
            p.ffn.prepare(p.counts, p.offsets, s_.layer.hidden, s_.layer.ffn, ops);
        }
        if (p.ffn.launch(st)) return true;
        grouped_ = false;  // this cuBLAS has no grouped bf16 GEMM: per-expert calls from now on
        return false;
    }

    void combine(MicroBatch& mb, cudaStream_t st) {
        moe::gpu::combine(mb.ya.data(), mb.inv.data(), mb.w.data(), mb.n, s_.layer.top_k, s_.layer.hidden, mb.x.data(),
                          st);
    }

    void copy(void* dst, int dst_dev, const void* src, int src_dev, std::size_t bytes, cudaStream_t st,
              unsigned long long* stamp) {
        moe::gpu::paced_copy(dst, dst_dev, src, src_dev, bytes, s_.pace_gbps, st, stamp);
    }

    double copy_a2e(int l, std::size_t i, MicroBatch& mb, cudaStream_t st, unsigned long long* stamp) {
        const PlanEntry& p = plan_[std::size_t(l) * mb_.size() + i];
        const int E = s_.layer.experts, d = s_.layer.hidden;
        const int src = attn_[mb.adev].device, dst = expert_.device;
        const std::size_t rows_b = std::size_t(p.rows) * d * 2;
        copy(mb.xe.data(), dst, mb.xp.data(), src, rows_b, st, stamp);
        copy(mb.counts_e.data(), dst, mb.counts.data(), src, 4 * E, st, nullptr);
        copy(mb.offsets_e.data(), dst, mb.offsets.data(), src, 4 * (E + 1), st, nullptr);
        copy(mb.row_token_e.data(), dst, mb.row_token.data(), src, 4 * std::size_t(p.rows), st, nullptr);
        return double(rows_b) + 4.0 * (2 * E + 1 + p.rows);
    }
    double copy_e2a(int l, std::size_t i, MicroBatch& mb, cudaStream_t st, unsigned long long* stamp) {
        const PlanEntry& p = plan_[std::size_t(l) * mb_.size() + i];
        const std::size_t rows_b = std::size_t(p.rows) * s_.layer.hidden * 2;
        copy(mb.ya.data(), attn_[mb.adev].device, mb.ye.data(), expert_.device, rows_b, st, stamp);
        return double(rows_b);
    }

    // ---- schedules ----------------------------------------------------------------------------------------
    // Opens a span on stream st: waits on `after` (if any) and records the start event when spans are timed.
    Recorded& open(int lane, int l, int i, int dev, cudaStream_t st, cudaEvent_t after) {
        set_device(dev);
        if (after) MOE_CUDA_CHECK(cudaStreamWaitEvent(st, after, 0));
        Recorded r{lane, l, i, dev};
        if (s_.time_spans) {
            r.start = ev(dev);
            MOE_CUDA_CHECK(cudaEventRecord(r.start, st));
        }
        rec_.push_back(r);
        return rec_.back();
    }
    cudaEvent_t close(int dev, cudaStream_t st) {
        Recorded& r = rec_.back();
        r.end = ev(dev);
        MOE_CUDA_CHECK(cudaEventRecord(r.end, st));
        return r.end;
    }

    static std::string tag(const char* what, int l, std::size_t i) {
        return std::string(what) + " l" + std::to_string(l) + " mb" + std::to_string(i);
    }

    void enqueue_pipelined() {
        const int L = s_.layers;
        const std::size_t m = mb_.size();
        std::vector<cudaEvent_t> back(m, nullptr);  // E2A of the previous layer, per micro-batch
        for (int l = 0; l < L; ++l)
            for (std::size_t i = 0; i < m; ++i) {
                MicroBatch& mb = mb_[i];
                AttnDevice& ad = attn_[mb.adev];
                ExpertDevice& ed = expert_;
                {
                    Nvtx n(tag("attention", l, i));
                    open(kAttention, l, int(i), ad.device, ad.stream, back[i]);
                    if (l > 0) combine(mb, ad.stream);
                    attention_step(l, mb, ad.stream);
                }
                cudaEvent_t a_done = close(ad.device, ad.stream);
                cudaEvent_t c_done;
                {
                    Nvtx n(tag("a2e", l, i));
                    Recorded& r = open(kA2E, l, int(i), ad.device, ad.a2e.s, a_done);
                    r.bytes = copy_a2e(l, i, mb, ad.a2e.s, ad.stamp.data());
                    c_done = close(ad.device, ad.a2e.s);
                }
                cudaEvent_t e_done;
                {
                    Nvtx n(tag("experts", l, i));
                    open(kExperts, l, int(i), ed.device, ed.stream, c_done);
                    set_device(ed.device);
                    experts_step(l, i, mb, ed.stream, false);
                    e_done = close(ed.device, ed.stream);
                }
                {
                    Nvtx n(tag("e2a", l, i));
                    Recorded& r = open(kE2A, l, int(i), ed.device, ed.e2a.s, e_done);
                    r.bytes = copy_e2a(l, i, mb, ed.e2a.s, ed.stamp.data());
                    back[i] = close(ed.device, ed.e2a.s);
                }
            }
        for (std::size_t i = 0; i < m; ++i) {  // the last layer's combine, on the attention pool
            MicroBatch& mb = mb_[i];
            AttnDevice& ad = attn_[mb.adev];
            Nvtx n(tag("combine", L - 1, i));
            open(kAttention, L, int(i), ad.device, ad.stream, back[i]);
            combine(mb, ad.stream);
            close(ad.device, ad.stream);
        }
    }

    // Colocated: per micro-batch, attention then experts then combine, all on one stream of the whole GPU.
    void enqueue_colocated() {
        const int L = s_.layers;
        AttnDevice& ad = attn_[0];
        for (int l = 0; l < L; ++l)
            for (std::size_t i = 0; i < mb_.size(); ++i) {
                MicroBatch& mb = mb_[i];
                {
                    Nvtx n(tag("attention", l, i));
                    open(kAttention, l, int(i), ad.device, ad.stream, nullptr);
                    if (l > 0) combine(mb, ad.stream);
                    attention_step(l, mb, ad.stream);
                    close(ad.device, ad.stream);
                }
                {
                    Nvtx n(tag("experts", l, i));
                    open(kExperts, l, int(i), ad.device, ad.stream, nullptr);
                    experts_step(l, i, mb, ad.stream, true);
                    close(ad.device, ad.stream);
                }
            }
        for (std::size_t i = 0; i < mb_.size(); ++i) {
            Nvtx n(tag("combine", L - 1, i));
            open(kAttention, L, int(i), ad.device, ad.stream, nullptr);
            combine(mb_[i], ad.stream);
            close(ad.device, ad.stream);
        }
    }

    bool grouped_ = true;  // one grouped GEMM per projection; false after cuBLAS said it cannot

  public:
    std::string impl_ = "serial";
};

}  // namespace

bool green_contexts_available(std::string* why) { return moe::gpu::green_contexts_supported(why); }

void run(const Spec& spec, Run& run) {
    int dev0 = 0;
    if (!moe::gpu::devices().empty()) MOE_CUDA_CHECK(cudaGetDevice(&dev0));
    Machine mach(spec);
    run.device = mach.device_name();
    run.pools = mach.pools();
    run.mb_tokens.clear();
    for (auto& mb : mach.mbs()) run.mb_tokens.push_back(mb.n);
    mach.plan_pass();
    run.mb_rows = mach.rows_layer0();
    for (int w = 0; w < spec.warmup; ++w) mach.iteration(nullptr);
    std::vector<std::vector<Span>> all;
    run.iteration_ms.clear();
    for (int r = 0; r < std::max(1, spec.repeats); ++r) {
        std::vector<Span> spans;
        run.iteration_ms.push_back(mach.iteration(spec.time_spans ? &spans : nullptr));
        all.push_back(std::move(spans));
    }
    if (spec.check_plan) mach.check_plan();
    // The spans of the repeat whose iteration time is the median.
    std::vector<std::size_t> order(run.iteration_ms.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return run.iteration_ms[a] < run.iteration_ms[b]; });
    run.spans = all[order[order.size() / 2]];
    if (spec.keep_output) run.output = mach.output();
    run.experts_impl = mach.impl_;
    MOE_CUDA_CHECK(cudaSetDevice(dev0));
}

}  // namespace gpu
}  // namespace moe::pipeline
