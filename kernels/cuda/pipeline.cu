// The measured ping-pong pipeline (kernels/pipeline.hpp): the plan pass, the pipelined and the colocated schedules,
// span timing with CUDA events, paced copies and NVTX ranges. Pools and buffers are set up in pipeline_setup.cu.
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
#include <numeric>

#include "kernels/attention.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/grouped_ffn.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/cuda/links.cuh"
#include "kernels/cuda/owners.cuh"
#include "kernels/cuda/pipeline_machine.cuh"
#include "kernels/cuda/pools.cuh"
#include "kernels/pipeline.hpp"

namespace moe::pipeline::gpu {

namespace detail {

namespace {

struct Nvtx {
    explicit Nvtx(const std::string& name) { nvtxRangePushA(name.c_str()); }
    ~Nvtx() { nvtxRangePop(); }
};

}  // namespace

void Machine::plan_pass() {
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
            MOE_CUDA_CHECK(
                cudaMemcpyAsync(p.counts.data(), mb.counts.data(), 4 * p.counts.size(), cudaMemcpyDeviceToHost, st));
            MOE_CUDA_CHECK(
                cudaMemcpyAsync(p.offsets.data(), mb.offsets.data(), 4 * p.offsets.size(), cudaMemcpyDeviceToHost, st));
            MOE_CUDA_CHECK(cudaStreamSynchronize(st));
            p.rows = p.offsets.back();
            if (!s_.multi_device && !sm_pools_) {
                experts_step(l, i, mb, st, /*from_packed=*/true);
            } else {
                copy_a2e(l, i, mb, ad.a2e.s ? ad.a2e.s : st, nullptr);
                sync_all();
                experts_step(l, i, mb, expert_.stream, false);
                sync_all();  // the E2A stream does not wait for the expert stream on its own
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

double Machine::iteration(std::vector<Span>* spans) {
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

void Machine::check_plan() {
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

std::vector<bf16_t> Machine::output() {
    const int d = s_.layer.hidden;
    std::vector<bf16_t> out(std::size_t(s_.layer.tokens) * d);
    for (auto& mb : mb_) {
        set_device(attn_[mb.adev].device);
        auto part = mb.x.download(std::size_t(mb.n) * d);
        std::copy(part.begin(), part.end(), out.begin() + mb.seq0 * d);
    }
    return out;
}

std::vector<double> Machine::rows_layer0() const {
    std::vector<double> r;
    for (std::size_t i = 0; i < mb_.size(); ++i) r.push_back(double(plan_[i].rows));
    return r;
}

// ---- the work of each step (no host syncs) ----------------------------------------------------------------
void Machine::attention_step(int l, MicroBatch& mb, cudaStream_t st) {
    const LayerSpec& ls = s_.layer;
    AttnDevice& ad = attn_[mb.adev];
    UseBlas use(*ad.blas);
    const int E = ls.experts, k = ls.top_k, d = ls.hidden;
    // The cache is [sequence, group, context − 1, 128]: a micro-batch's sequences are one contiguous slice.
    const std::size_t kv_off = std::size_t(attention::kv_elems(attn_spec(mb.local0)));
    attention::gpu::decode(attn_spec(mb.n), l == 0 ? mb.x0.data() : mb.x.data(), ad.wqkv[l].data(), ad.wo[l].data(),
                           ad.k.data() + kv_off, ad.v.data() + kv_off, mb.h.data(), ad.ws.data(), attn_ws_, attn_sms_,
                           st);
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

void Machine::experts_step(int l, std::size_t i, MicroBatch& mb, cudaStream_t st, bool from_packed) {
    const LayerSpec& ls = s_.layer;
    const PlanEntry& p = plan_[std::size_t(l) * mb_.size() + i];
    ExpertDevice& ed = expert_;
    UseBlas use(ed.blas ? *ed.blas : *attn_[mb.adev].blas);
    // On the expert pool's stream the FFN gets the pool's SMs: the persistent kernels size their grids to them, and
    // cuBLAS its SM count target. Colocated steps and the plan pass without pools run on the whole GPU.
    const moe::gpu::SmBudget budget(st == ed.stream ? ed.sms : 0);
    if (st == ed.stream) set_device(ed.device);  // the kernels launch on the current device (two-GPU pools)
    // The engine's own choice where it is one of the kernels that read the plan on the device (decode, mid, wgmma:
    // no host sync, nothing to prepare), from the plan pass's counts. MOELAB_PIPELINE_FFN=grouped keeps the cuBLAS
    // grouped GEMMs, the expert step before the twenty-ninth session (kernels/cuda/PIPELINE.md).
    if (!force_grouped_) {
        std::int64_t kept = 0, busiest = 0;
        for (std::int32_t c : p.counts) kept += c, busiest = std::max<std::int64_t>(busiest, c);
        const auto choice =
            moe::gpu::experts_auto_choice(double(kept) / std::max(ls.experts, 1), ls.hidden, ls.ffn, true, busiest);
        if (choice == moe::gpu::ExpertsImpl::Decode || choice == moe::gpu::ExpertsImpl::Mid ||
            choice == moe::gpu::ExpertsImpl::Wgmma) {
            const auto ran =
                moe::gpu::experts_ffn(choice, from_packed ? mb.xp.data() : mb.xe.data(), nullptr,
                                      from_packed ? mb.row_token.data() : mb.row_token_e.data(),
                                      from_packed ? mb.counts.data() : mb.counts_e.data(),
                                      from_packed ? mb.offsets.data() : mb.offsets_e.data(), p.counts.data(),
                                      p.offsets.data(), ls.experts, ls.hidden, ls.ffn, ed.w1[l].data(), ed.w2[l].data(),
                                      from_packed ? mb.ya.data() : mb.ye.data(), ed.ws.data(), expert_ws_, st);
            impl_ = moe::gpu::experts_impl_name(ran);
            return;
        }
    }
    if (grouped_ && grouped(l, i, mb, st, from_packed)) {
        impl_ = "grouped (pointers uploaded by the plan pass)";
        return;
    }
    // Serial: every GEMM on the pool's own stream (side streams would escape the SM partition).
    const auto impl = moe::gpu::experts_ffn(
        moe::gpu::ExpertsImpl::Serial, from_packed ? mb.xp.data() : mb.xe.data(), nullptr,
        from_packed ? mb.row_token.data() : mb.row_token_e.data(), from_packed ? mb.counts.data() : mb.counts_e.data(),
        from_packed ? mb.offsets.data() : mb.offsets_e.data(), p.counts.data(), p.offsets.data(), ls.experts, ls.hidden,
        ls.ffn, ed.w1[l].data(), ed.w2[l].data(), from_packed ? mb.ya.data() : mb.ye.data(), ed.ws.data(), expert_ws_,
        st);
    impl_ = moe::gpu::experts_impl_name(impl);
}

bool Machine::grouped(int l, std::size_t i, MicroBatch& mb, cudaStream_t st, bool from_packed) {
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

void Machine::combine(MicroBatch& mb, cudaStream_t st) {
    moe::gpu::combine(mb.ya.data(), mb.inv.data(), mb.w.data(), mb.n, s_.layer.top_k, s_.layer.hidden, mb.x.data(), st);
}

void Machine::copy(void* dst, int dst_dev, const void* src, int src_dev, std::size_t bytes, cudaStream_t st,
                   unsigned long long* stamp) {
    moe::gpu::paced_copy(dst, dst_dev, src, src_dev, bytes, s_.pace_gbps, st, stamp);
}

double Machine::copy_a2e(int l, std::size_t i, MicroBatch& mb, cudaStream_t st, unsigned long long* stamp) {
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

double Machine::copy_e2a(int l, std::size_t i, MicroBatch& mb, cudaStream_t st, unsigned long long* stamp) {
    const PlanEntry& p = plan_[std::size_t(l) * mb_.size() + i];
    const std::size_t rows_b = std::size_t(p.rows) * s_.layer.hidden * 2;
    copy(mb.ya.data(), attn_[mb.adev].device, mb.ye.data(), expert_.device, rows_b, st, stamp);
    return double(rows_b);
}

// ---- schedules ----------------------------------------------------------------------------------------------
Recorded& Machine::open(int lane, int l, int i, int dev, cudaStream_t st, cudaEvent_t after) {
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

cudaEvent_t Machine::close(int dev, cudaStream_t st) {
    Recorded& r = rec_.back();
    r.end = ev(dev);
    MOE_CUDA_CHECK(cudaEventRecord(r.end, st));
    return r.end;
}

std::string Machine::tag(const char* what, int l, std::size_t i) {
    return std::string(what) + " l" + std::to_string(l) + " mb" + std::to_string(i);
}

void Machine::enqueue_pipelined() {
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

void Machine::enqueue_colocated() {
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

}  // namespace detail

bool green_contexts_available(std::string* why) { return moe::gpu::green_contexts_supported(why); }

void run(const Spec& spec, Run& run) {
    int dev0 = 0;
    if (!moe::gpu::devices().empty()) MOE_CUDA_CHECK(cudaGetDevice(&dev0));
    detail::Machine mach(spec);
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

}  // namespace moe::pipeline::gpu
