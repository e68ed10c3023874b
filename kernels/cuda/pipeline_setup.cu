// The measured pipeline's setup (kernels/pipeline.hpp; the executor is pipeline.cu): the pools (green contexts, a
// colocated stream or whole devices with peer access), the micro-batches, the memory check, and every buffer.
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <sstream>

#include "kernels/attention.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/cuda/owners.cuh"
#include "kernels/cuda/pipeline_machine.cuh"
#include "kernels/cuda/pools.cuh"
#include "kernels/pipeline.hpp"

namespace moe::pipeline::gpu::detail {

namespace {

std::string gib(double b) {
    std::ostringstream os;
    os.precision(2);
    os << std::fixed << b / (1 << 30) << " GiB";
    return os.str();
}

}  // namespace

Machine::Machine(const Spec& s) : s_(s) {
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
            throw Error(ErrorKind::NoDevice, "the pipeline across devices needs " + std::to_string(need) + " GPUs (" +
                                                 std::to_string(s.attention_devices) +
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

void Machine::split_micro_batches() {
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

void Machine::check_memory(const std::vector<moe::gpu::DeviceInfo>& devs) {
    (void)devs;
    const LayerSpec& ls = s_.layer;
    const double d = ls.hidden, E = ls.experts, F = ls.ffn, L = s_.layers;
    std::int64_t max_n = 0, rows_all = 0;
    for (auto& mb : mb_) max_n = std::max(max_n, mb.n), rows_all += mb.max_rows;
    const auto a_all = attn_spec(ls.tokens);
    double attn_bytes = attention::kv_bytes(a_all) + L * attention::weight_bytes(a_all) +
                        double(ls.tokens) * d * 2 * 3 + double(rows_all) * d * 2 * 2;
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

void Machine::allocate() {
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
        mb.x0 = DeviceBuffer<bf16_t>(n * d, "first layer input");
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
        moe::gpu::make_x(mix(ls.seed, kSeedX, std::uint64_t(mb.seq0)), mb.n, d, mb.x0.data(), ad.stream);
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

void Machine::sync_all() {
    for (auto& ad : attn_) {
        set_device(ad.device);
        MOE_CUDA_CHECK(cudaDeviceSynchronize());
    }
    set_device(expert_.device);
    MOE_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace moe::pipeline::gpu::detail
