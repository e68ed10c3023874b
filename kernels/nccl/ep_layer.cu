// The expert-parallel MoE layer over G local GPUs: each rank routes and packs its own tokens, the rows go to the
// ranks owning their experts (NCCL all-to-all), the local experts run, the outputs come back and are combined.
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <sstream>

#include "kernels/common/rng.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/counting.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/nccl/comm.hpp"
#include "kernels/nccl/ep_kernels.hpp"
#include "kernels/nccl/nccl_api.hpp"
#include "kernels/nccl/recv_plan.hpp"

namespace moe::nccl {

namespace {

using gpu::DeviceBuffer;

// Page-locked, portable host memory: async copies from any rank's stream land in it.
template <class T>
class Pinned {
  public:
    explicit Pinned(std::size_t n) {
        MOE_CUDA_CHECK(cudaHostAlloc(&p_, std::max<std::size_t>(n, 1) * sizeof(T), cudaHostAllocPortable));
    }
    ~Pinned() { cudaFreeHost(p_); }
    Pinned(const Pinned&) = delete;
    Pinned& operator=(const Pinned&) = delete;
    T* data() { return p_; }
    T& operator[](std::size_t i) { return p_[i]; }

  private:
    T* p_ = nullptr;
};

struct RankState {
    int g = 0;
    std::int64_t t0 = 0, T = 0;  // global first token and token count of this rank
    DeviceBuffer<bf16_t> x, wg, w1, w2, xs, xr, xe, ye, yr, yback, out;
    DeviceBuffer<float> logp, logits, w;
    DeviceBuffer<std::int32_t> ids, counts, offsets, row_token, inv, cnt_recv, plan, row_tag;
    DeviceBuffer<std::uint8_t> ws;
    std::unique_ptr<Pinned<std::int32_t>> host;  // own counts [E], received counts [G·El], then the plan staging
    std::vector<cudaEvent_t> ev;
    ~RankState() {
        for (cudaEvent_t e : ev) cudaEventDestroy(e);
    }
};

// Frees every rank's state with its own device current. Declared before the AbortOnUnwind guard, so on an error
// the communicator is aborted first and no cudaFree waits on a stuck kernel.
struct RankStates {
    std::vector<std::unique_ptr<RankState>> r;
    ~RankStates() {
        for (std::size_t g = 0; g < r.size(); ++g) {
            cudaSetDevice(int(g));
            r[g].reset();
        }
    }
};

void check_spec(const LayerSpec& s, int G) {
    if (G < 1) MOE_BAD_INPUT("ranks " << G << " must be >= 1");
    if (s.tokens < 1) MOE_BAD_INPUT("tokens " << s.tokens << " must be >= 1");
    if (s.experts < 1 || s.experts > gpu::counting::kMaxExperts)
        MOE_BAD_INPUT("experts " << s.experts << " must be in [1, " << gpu::counting::kMaxExperts
                                 << "] on the nccl backend");
    if (s.experts % G != 0)
        MOE_BAD_INPUT("experts " << s.experts << " must be a multiple of ranks " << G
                                 << ": the nccl backend places E/G experts on each rank");
    if (s.top_k < 1 || s.top_k > s.experts)
        MOE_BAD_INPUT("top-k " << s.top_k << " must be in [1, " << s.experts << "]");
    if (s.hidden < 1 || s.ffn < 1) MOE_BAD_INPUT("hidden and ffn must be >= 1");
    if (s.align < 1) MOE_BAD_INPUT("align " << s.align << " must be >= 1");
    if (s.capacity_factor != 0.0)
        MOE_BAD_INPUT("capacity factor " << s.capacity_factor
                                         << ": the nccl backend is dropless only (cf = 0); capacity is per expert over "
                                            "all ranks, so drops would need every rank's counts before dropping");
    if (dispatch::max_rows(s.tokens, s.top_k, s.experts, s.align) >= (std::int64_t(1) << 31))
        MOE_BAD_INPUT("tokens·top-k + experts·(align−1) must stay below 2^31 on the nccl backend");
}

std::string gib(double b) {
    std::ostringstream os;
    os.precision(2);
    os << std::fixed << b / (1024.0 * 1024.0 * 1024.0) << " GiB";
    return os.str();
}

}  // namespace

void run_ep_layer(const LayerSpec& s, int G, const LayerRunOptions& opt, EpRun& run) {
    check_spec(s, G);
    if (opt.repeats < 1 || opt.warmup < 0) MOE_BAD_INPUT("repeats must be >= 1 and warmup >= 0");
    const std::int64_t T = s.tokens;
    const int E = s.experts, k = s.top_k, d = s.hidden, F = s.ffn, El = E / G;
    const bool experts_on = opt.run_experts;
    // nopack has no packed rows to send: the send side packs with scan (same plan, stable order) instead.
    const Strategy st = s.strategy == Strategy::NoPack ? Strategy::Scan : s.strategy;
    const std::int64_t recv_max = T * std::min(k, El);  // a token's k experts are distinct: ≤ min(k, E/G) per rank
    const std::int64_t p_max = recv_max + std::int64_t(El) * (s.align - 1);
    const std::size_t plan_ints = 4 * std::size_t(G) * El + 4 * std::size_t(El) + 3;
    const std::size_t row_b = std::size_t(d) * sizeof(bf16_t);

    auto lock = shared_lock();
    DeviceRestore restore;
    Communicator& c = shared_communicator(G);
    run = EpRun{};
    run.ranks = G;
    run.device = c.device_names();
    run.nccl_version = version();
    run.stage_names = {"route", "dispatch", "a2a dispatch"};
    if (experts_on) run.stage_names.insert(run.stage_names.end(), {"experts", "a2a combine", "combine"});
    const int nst = int(run.stage_names.size());

    // ---- allocate and generate, rank by rank (each on its own device) ----
    RankStates states;
    std::vector<float> logp_host = route::log_popularity(s.skew, E);
    for (int g = 0; g < G; ++g) {
        c.use(g);
        auto rs = std::make_unique<RankState>();
        RankState& R = *rs;
        R.g = g;
        R.t0 = token_begin(g, T, G);
        R.T = token_begin(g + 1, T, G) - R.t0;
        const std::int64_t Tg = std::max<std::int64_t>(R.T, 1);  // ≥ 1 element: launchers assert non-null buffers
        std::size_t ws_bytes = gpu::dispatch_workspace_bytes(st, R.T, k, E);
        if (experts_on)
            ws_bytes = std::max(ws_bytes, gpu::experts_workspace_bytes(std::max<std::int64_t>(p_max, 1), El, F));
        std::size_t need = ws_bytes + std::size_t(Tg) * (2 * row_b + 4 * E + 12 * k) + std::size_t(Tg) * k * row_b +
                           std::size_t(recv_max) * row_b + (std::size_t(256) << 20);
        if (experts_on)
            need += std::size_t(El) * 3 * F * row_b + 2 * std::size_t(p_max) * row_b + std::size_t(recv_max) * row_b +
                    std::size_t(Tg) * k * row_b;
        const std::size_t free_b = gpu::free_memory_bytes(g);
        if (need > free_b) {
            std::ostringstream os;
            os << "rank " << g << " needs about " << need << " bytes (" << gib(double(need)) << ") on GPU " << g
               << " but " << free_b << " bytes (" << gib(double(free_b)) << ") are free; lower --tokens, --hidden, "
               << "--ffn or --experts";
            throw Error(ErrorKind::OutOfMemory, os.str());
        }
        const Stream sg = c.stream(g);
        gpu::context();  // this device's cuBLAS handles and side streams now, not inside the first timed repeat
        R.x = DeviceBuffer<bf16_t>(Tg * d, "x slice");
        R.logp = DeviceBuffer<float>(E, "log popularity");
        R.logits = DeviceBuffer<float>(Tg * E, "logits");
        R.w = DeviceBuffer<float>(Tg * k, "top-k weights");
        R.ids = DeviceBuffer<std::int32_t>(Tg * k, "top-k ids");
        R.counts = DeviceBuffer<std::int32_t>(E, "counts");
        R.offsets = DeviceBuffer<std::int32_t>(E + 1, "offsets");
        R.row_token = DeviceBuffer<std::int32_t>(Tg * k, "row_token");
        R.inv = DeviceBuffer<std::int32_t>(Tg * k, "inverse map");
        R.xs = DeviceBuffer<bf16_t>(Tg * k * d, "packed rows to send");
        R.cnt_recv = DeviceBuffer<std::int32_t>(std::size_t(G) * El, "received counts");
        R.xr = DeviceBuffer<bf16_t>(std::max<std::int64_t>(recv_max, 1) * d, "received rows");
        R.plan = DeviceBuffer<std::int32_t>(plan_ints, "receive plan");
        R.ws = DeviceBuffer<std::uint8_t>(ws_bytes, "stage workspace");
        if (s.router == Router::Gate) R.wg = DeviceBuffer<bf16_t>(std::size_t(E) * d, "gate weights");
        if (experts_on) {
            R.w1 = DeviceBuffer<bf16_t>(std::size_t(El) * 2 * F * d, "local expert w1");
            R.w2 = DeviceBuffer<bf16_t>(std::size_t(El) * d * F, "local expert w2");
            R.xe = DeviceBuffer<bf16_t>(std::max<std::int64_t>(p_max, 1) * d, "rows by local expert");
            R.ye = DeviceBuffer<bf16_t>(std::max<std::int64_t>(p_max, 1) * d, "expert outputs");
            R.row_tag = DeviceBuffer<std::int32_t>(std::max<std::int64_t>(p_max, 1), "row tags");
            R.yr = DeviceBuffer<bf16_t>(std::max<std::int64_t>(recv_max, 1) * d, "outputs to return");
            R.yback = DeviceBuffer<bf16_t>(Tg * k * d, "returned outputs");
            R.out = DeviceBuffer<bf16_t>(Tg * d, "combine output");
        }
        R.host = std::make_unique<Pinned<std::int32_t>>(E + std::size_t(G) * El + plan_ints);
        R.ev.resize(nst + 1);
        for (auto& e : R.ev) MOE_CUDA_CHECK(cudaEventCreate(&e));

        // Global index ranges: the rank's x rows, its experts' weights; the gate is the whole [E, d].
        make_bf16_range(s.seed, kStreamX, R.t0 * d, R.T * d, x_scale(), R.x.data(), sg);
        if (s.router == Router::Gate) gpu::make_gate(s.seed, E, d, R.wg.data(), sg);
        if (experts_on) {
            const std::int64_t n1 = std::int64_t(El) * 2 * F * d, n2 = std::int64_t(El) * d * F;
            make_bf16_range(s.seed, kStreamW1, std::int64_t(g) * n1, n1, w1_scale(d), R.w1.data(), sg);
            make_bf16_range(s.seed, kStreamW2, std::int64_t(g) * n2, n2, w2_scale(F), R.w2.data(), sg);
        }
        MOE_CUDA_CHECK(
            cudaMemcpyAsync(R.logp.data(), logp_host.data(), sizeof(float) * E, cudaMemcpyHostToDevice, c.stream(g)));
        states.r.push_back(std::move(rs));
    }
    AbortOnUnwind guard(c);
    c.wait_streams("input generation on every rank");  // so no rank's first exchange waits on a slower peer's inputs

    run.rank_stages.assign(G, {});
    for (int g = 0; g < G; ++g)
        for (auto& n : run.stage_names) run.rank_stages[g].push_back({n, {}});
    std::vector<std::vector<std::int64_t>> send_rows(G, std::vector<std::int64_t>(G)), recv_rows = send_rows;
    std::vector<std::vector<std::int64_t>> el_rows(G, std::vector<std::int64_t>(G, El));
    std::vector<RecvPlan> plans(G);
    auto rec = [&](int g, int i) { MOE_CUDA_CHECK(cudaEventRecord(states.r[g]->ev[i], c.stream(g))); };

    const int total = opt.warmup + opt.repeats;
    for (int rep = 0; rep < total; ++rep) {
        if (opt.progress) opt.progress(float(rep) / total, "route");
        if (opt.cancel && opt.cancel->load()) {
            guard.disarm();  // every rank is idle between repeats: the communicator stays usable
            throw Error(ErrorKind::Runtime, "run cancelled");
        }
        // ---- route and pack on every rank ----
        for (int g = 0; g < G; ++g) {
            RankState& R = *states.r[g];
            c.use(g);
            const Stream sg = c.stream(g);
            rec(g, 0);
            if (s.router == Router::Gate) {
                gpu::gate_route(R.x.data(), R.wg.data(), R.logp.data(), R.T, d, E, k, s.renormalize, R.logits.data(),
                                R.ids.data(), R.w.data(), sg);
            } else {
                popularity_logits_range(s.seed, R.logp.data(), R.t0, R.T, E, R.logits.data(), sg);
                route::gpu::softmax_topk(R.logits.data(), R.T, E, k, s.renormalize, R.ids.data(), R.w.data(), sg);
            }
            rec(g, 1);
            // align 1 on the send side: each destination's rows are one contiguous run, padding is the receiver's.
            gpu::dispatch(st, R.x.data(), R.ids.data(), R.T, k, E, d, 1, R.counts.data(), R.offsets.data(),
                          R.row_token.data(), R.inv.data(), R.xs.data(), R.ws.data(), R.ws.bytes(), sg);
            rec(g, 2);
        }
        // ---- counts: rank g sends each peer p the counts of p's experts, then every rank's counts go to the host ----
        {
            std::vector<const void*> snd;
            for (auto& R : states.r) snd.push_back(R->counts.data());
            std::vector<void*> rcv;
            for (auto& R : states.r) rcv.push_back(R->cnt_recv.data());
            alltoallv(c, snd, rcv, el_rows, el_rows, sizeof(std::int32_t), "the expert-counts all-to-all");
        }
        for (int g = 0; g < G; ++g) {
            RankState& R = *states.r[g];
            c.use(g);
            std::int32_t* h = R.host->data();
            MOE_CUDA_CHECK(
                cudaMemcpyAsync(h, R.counts.data(), sizeof(std::int32_t) * E, cudaMemcpyDeviceToHost, c.stream(g)));
            MOE_CUDA_CHECK(cudaMemcpyAsync(h + E, R.cnt_recv.data(), sizeof(std::int32_t) * G * El,
                                           cudaMemcpyDeviceToHost, c.stream(g)));
        }
        c.wait_streams("the expert counts of every rank");  // NCCL's send/recv sizes are host arguments
        for (int g = 0; g < G; ++g) {
            RankState& R = *states.r[g];
            const std::int32_t* own = R.host->data();
            const std::int32_t* got = own + E;
            for (int p = 0; p < G; ++p) {
                send_rows[g][p] = std::accumulate(own + p * El, own + (p + 1) * El, std::int64_t(0));
                recv_rows[g][p] = std::accumulate(got + p * El, got + (p + 1) * El, std::int64_t(0));
            }
            plans[g] = plan_receive(got, G, El, s.align);
            MOE_ASSERT(plans[g].R <= recv_max && plans[g].P <= p_max,
                       "rank " << g << " received " << plans[g].R << " rows, more than the bound " << recv_max);
            if (!experts_on) continue;
            // Stage the plan in pinned memory and send it up; the next repeat overwrites it only after a host sync.
            const RecvPlan& P = plans[g];
            std::int32_t* stage = R.host->data() + E + std::size_t(G) * El;
            std::size_t o = 0;
            for (auto* v : {&P.fwd_dst, &P.fwd_src, &P.bwd_dst, &P.bwd_src, &P.loc_counts, &P.loc_offsets})
                std::copy(v->begin(), v->end(), stage + o), o += v->size();
            MOE_ASSERT(o <= plan_ints, "receive plan of " << o << " ints overflows " << plan_ints);
            c.use(g);
            MOE_CUDA_CHECK(
                cudaMemcpyAsync(R.plan.data(), stage, sizeof(std::int32_t) * o, cudaMemcpyHostToDevice, c.stream(g)));
        }
        // ---- rows to the experts' ranks ----
        {
            std::vector<const void*> snd;
            for (auto& R : states.r) snd.push_back(R->xs.data());
            std::vector<void*> rcv;
            for (auto& R : states.r) rcv.push_back(R->xr.data());
            alltoallv(c, snd, rcv, send_rows, recv_rows, row_b, "the dispatch all-to-all");
        }
        for (int g = 0; g < G; ++g) c.use(g), rec(g, 3);
        if (experts_on) {
            // ---- local experts: regroup by expert, FFN, regroup back by source ----
            for (int g = 0; g < G; ++g) {
                RankState& R = *states.r[g];
                const RecvPlan& P = plans[g];
                c.use(g);
                const Stream sg = c.stream(g);
                const std::int32_t* dp = R.plan.data();
                const std::int32_t *fwd_dst = dp, *fwd_src = fwd_dst + P.fwd_dst.size();
                const std::int32_t *bwd_dst = fwd_src + P.fwd_src.size(), *bwd_src = bwd_dst + P.bwd_dst.size();
                const std::int32_t *loc_counts = bwd_src + P.bwd_src.size(), *loc_offsets = loc_counts + El;
                const std::int32_t* stage = R.host->data() + E + std::size_t(G) * El;
                const std::int32_t* loc_counts_h = stage + (loc_counts - dp);
                const std::int32_t* loc_offsets_h = stage + (loc_offsets - dp);
                copy_segments(R.xr.data(), R.xe.data(), d, fwd_dst, fwd_src, int(P.fwd_src.size()), P.P,
                              R.row_tag.data(), sg);
                gpu::experts_ffn(gpu::ExpertsImpl::Auto, R.xe.data(), nullptr, R.row_tag.data(), loc_counts,
                                 loc_offsets, loc_counts_h, loc_offsets_h, El, d, F, R.w1.data(), R.w2.data(),
                                 R.ye.data(), R.ws.data(), R.ws.bytes(), sg);
                copy_segments(R.ye.data(), R.yr.data(), d, bwd_dst, bwd_src, int(P.bwd_src.size()), P.R, nullptr, sg);
                rec(g, 4);
            }
            // ---- outputs back: rank g returns to s exactly the rows it received from s ----
            {
                std::vector<const void*> snd;
                for (auto& R : states.r) snd.push_back(R->yr.data());
                std::vector<void*> rcv;
                for (auto& R : states.r) rcv.push_back(R->yback.data());
                alltoallv(c, snd, rcv, recv_rows, send_rows, row_b, "the combine all-to-all");
            }
            for (int g = 0; g < G; ++g) {
                RankState& R = *states.r[g];
                c.use(g);
                rec(g, 5);
                gpu::combine(R.yback.data(), R.inv.data(), R.w.data(), R.T, k, d, R.out.data(), c.stream(g));
                rec(g, 6);
            }
        }
        std::vector<cudaEvent_t> last;
        for (auto& R : states.r) last.push_back(R->ev[nst]);
        c.wait_events(last, "the layer's last stage on every rank");
        if (rep < opt.warmup) continue;
        for (int g = 0; g < G; ++g) {
            c.use(g);
            for (int i = 0; i < nst; ++i) {
                float ms = 0;
                MOE_CUDA_CHECK(cudaEventElapsedTime(&ms, states.r[g]->ev[i], states.r[g]->ev[i + 1]));
                run.rank_stages[g][i].ms.push_back(ms);
            }
        }
    }
    if (opt.progress) opt.progress(1.0f, "done");

    // ---- bookkeeping from the last repeat (routing is the same in every repeat) ----
    run.rank_tokens.resize(G);
    run.counts.assign(E, 0);
    run.traffic.assign(std::size_t(G) * G, 0);
    run.rows_received.assign(G, 0);
    run.bytes_sent.assign(G, 0.0);
    for (int g = 0; g < G; ++g) {
        run.rank_tokens[g] = states.r[g]->T;
        const std::int32_t* own = states.r[g]->host->data();
        for (int e = 0; e < E; ++e) run.counts[e] += own[e];
        for (int p = 0; p < G; ++p) {
            run.traffic[std::size_t(g) * G + p] = send_rows[g][p];
            run.rows_received[g] += recv_rows[g][p];
            if (p != g) run.bytes_sent[g] += double(send_rows[g][p] + (experts_on ? recv_rows[g][p] : 0)) * row_b;
        }
    }
    const bool want_ids = opt.keep_tensors || opt.keep_routing;
    if (opt.keep_tensors && experts_on) run.out.resize(std::size_t(T) * d);
    if (want_ids) run.topk_ids.resize(std::size_t(T) * k), run.topk_w.resize(std::size_t(T) * k);
    for (int g = 0; g < G; ++g) {
        RankState& R = *states.r[g];
        if (R.T == 0) continue;
        c.use(g);
        if (opt.keep_tensors && experts_on)
            MOE_CUDA_CHECK(
                cudaMemcpy(run.out.data() + R.t0 * d, R.out.data(), std::size_t(R.T) * row_b, cudaMemcpyDeviceToHost));
        if (want_ids) {
            MOE_CUDA_CHECK(cudaMemcpy(run.topk_ids.data() + R.t0 * k, R.ids.data(), sizeof(std::int32_t) * R.T * k,
                                      cudaMemcpyDeviceToHost));
            MOE_CUDA_CHECK(
                cudaMemcpy(run.topk_w.data() + R.t0 * k, R.w.data(), sizeof(float) * R.T * k, cudaMemcpyDeviceToHost));
        }
    }
}

}  // namespace moe::nccl
