// The expert-parallel MoE layer over G GPUs: each rank routes its own tokens (with the reference's drops over all
// ranks when a capacity is set), the rows go to the ranks owning their experts (NCCL all-to-all, in chunks of local
// experts), the local experts run, the outputs come back and are combined. With overlap, the exchanges run on the
// comm stream and the compute on a stream of its own, so chunk i + 1 moves while chunk i's experts compute.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <map>
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

// One rank's timeline of a repeat: events recorded on its streams, and spans between them.
struct SpanRef {
    const char* label;
    const char* lane;
    int chunk;
    int a, b;  // event indices
};

struct RankState {
    int g = 0;
    std::int64_t t0 = 0, T = 0;  // global first token and token count of this rank
    cudaStream_t ns = nullptr;   // comm stream (the communicator's): every NCCL call
    cudaStream_t cs = nullptr;   // compute stream: == ns without overlap
    bool own_cs = false;
    DeviceBuffer<bf16_t> x, wg, w1, w2, xs, xr, xe, ye, yr, yback, out;
    DeviceBuffer<float> logp, logits, w, w_all, scratch;
    DeviceBuffer<std::int32_t> ids, counts, offsets, row_token, inv, cnt_own, cnt_recv, plan, row_tag, ids_all, demand;
    DeviceBuffer<std::uint8_t> ws;
    std::unique_ptr<Pinned<std::int32_t>> host;  // own counts [E], received [G·El], demand [E], plan staging
    unsigned* gate_h = nullptr;  // pinned, mapped: the value the gate kernels wait for (gate_d on the device)
    const unsigned* gate_d = nullptr;
    unsigned epoch = 0;
    std::vector<cudaEvent_t> ev;
    int used = 0;
    std::vector<SpanRef> spans;

    int mark(cudaStream_t s) {
        if (used == int(ev.size())) {
            ev.push_back(nullptr);
            MOE_CUDA_CHECK(cudaEventCreate(&ev.back()));
        }
        MOE_CUDA_CHECK(cudaEventRecord(ev[used], s));
        return used++;
    }
    void span(const char* label, const char* lane, int a, int b, int chunk = -1) {
        spans.push_back({label, lane, chunk, a, b});
    }
    // The compute stream waits for event i (no-op without overlap: one stream keeps the order by itself).
    void cs_waits(int i) {
        if (cs != ns) MOE_CUDA_CHECK(cudaStreamWaitEvent(cs, ev[i], 0));
    }
    void ns_waits(int i) {
        if (cs != ns) MOE_CUDA_CHECK(cudaStreamWaitEvent(ns, ev[i], 0));
    }
    ~RankState() {
        if (gate_h) cudaFreeHost(gate_h);
        for (cudaEvent_t e : ev) cudaEventDestroy(e);
        if (own_cs && cs) cudaStreamDestroy(cs);
    }
};

// Frees every rank's state with its own device current. Declared before the AbortOnUnwind guard, so on an error
// the communicator is aborted first and no cudaFree waits on a stuck kernel.
struct RankStates {
    std::vector<int> devices;
    std::vector<std::unique_ptr<RankState>> r;  // [G], null for ranks of other processes
    ~RankStates() {
        for (std::size_t g = 0; g < r.size(); ++g)
            if (r[g]) {
                cudaSetDevice(devices[g]);
                r[g].reset();
            }
    }
};

void check_spec(const LayerSpec& s, int G, const EpOptions& o) {
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
    if (!(s.capacity_factor >= 0) || s.capacity_factor > 1000)
        MOE_BAD_INPUT("capacity factor " << s.capacity_factor << " must be in [0, 1000] (0: dropless)");
    if (o.chunks < 1 || o.chunks > s.experts / G)
        MOE_BAD_INPUT("chunks " << o.chunks << " must be in [1, " << s.experts / G
                                << "]: a chunk is a group of at least one of a rank's E/G local experts");
    if (dispatch::max_rows(s.tokens, s.top_k, s.experts, s.align) >= (std::int64_t(1) << 31))
        MOE_BAD_INPUT("tokens·top-k + experts·(align−1) must stay below 2^31 on the nccl backend");
}

std::string gib(double b) {
    std::ostringstream os;
    os.precision(2);
    os << std::fixed << b / (1024.0 * 1024.0 * 1024.0) << " GiB";
    return os.str();
}

double median_of(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Every rank's `bytes` (on its device at src[g]) to every process: an NCCL all-gather through a scratch buffer of
// G·bytes per local rank, then one copy to the host. The same path for one process and for one process per GPU.
std::vector<unsigned char> gather_to_host(Communicator& c, const std::vector<const void*>& src, std::size_t bytes,
                                          const char* what) {
    const int G = c.ranks();
    std::vector<unsigned char> all(bytes * G);
    if (bytes == 0) return all;
    std::vector<DeviceBuffer<unsigned char>> bufs(G);
    std::vector<void*> ptrs(G, nullptr);
    for (int g : c.local()) {
        c.use(g);
        bufs[g] = DeviceBuffer<unsigned char>(bytes * G, "result gather");
        MOE_CUDA_CHECK(cudaMemcpyAsync(bufs[g].data() + bytes * g, src[g], bytes, cudaMemcpyDefault, c.stream(g)));
        ptrs[g] = bufs[g].data();
    }
    allgather(c, ptrs, bytes, what);
    c.wait_streams(what);
    const int g0 = c.local().front();
    c.use(g0);
    MOE_CUDA_CHECK(cudaMemcpy(all.data(), bufs[g0].data(), bytes * G, cudaMemcpyDeviceToHost));
    for (int g : c.local()) c.use(g), bufs[g] = DeviceBuffer<unsigned char>();
    return all;
}

}  // namespace

void run_ep_layer(const LayerSpec& s, int G, const LayerRunOptions& opt, EpRun& run) {
    run_ep_layer(s, G, opt, EpOptions{}, run);
}

void run_ep_layer(const LayerSpec& s, int G, const LayerRunOptions& opt, const EpOptions& eo, EpRun& run) {
    check_spec(s, G, eo);
    if (opt.repeats < 1 || opt.warmup < 0) MOE_BAD_INPUT("repeats must be >= 1 and warmup >= 0");
    const std::int64_t T = s.tokens;
    const int E = s.experts, k = s.top_k, d = s.hidden, F = s.ffn, El = E / G, K = eo.chunks;
    const bool experts_on = opt.run_experts;
    // nopack has no packed rows to send: the send side packs with scan (same plan, stable order) instead.
    const Strategy st = s.strategy == Strategy::NoPack ? Strategy::Scan : s.strategy;
    const std::int64_t cap = route::capacity(s.capacity_factor, T, k, E);
    const std::int64_t Tmax = std::max<std::int64_t>(token_begin(1, T, G), 1);  // largest token slice, ceil(T/G)
    // A token's k experts are distinct: at most min(k, E/G) rows per token reach one rank, and with a capacity at
    // most C rows per expert. The receive buffers are sized for that worst case, so no size waits for the host.
    std::int64_t recv_max = T * std::min(k, El);
    if (cap > 0) recv_max = std::min(recv_max, cap * El);
    const std::int64_t p_max = recv_max + std::int64_t(El) * (s.align - 1);
    const std::size_t plan_ints = 4 * std::size_t(G) * El + 4 * std::size_t(El) + 4 * std::size_t(K) + 8;
    const std::size_t row_b = std::size_t(d) * sizeof(bf16_t);
    const std::size_t host_ints = 2 * std::size_t(E) + std::size_t(G) * El + plan_ints;

    auto lock = shared_lock();
    DeviceRestore restore;
    Communicator& c = shared_communicator(G);
    const std::vector<int> L = c.local();
    run = EpRun{};
    run.ranks = G;
    run.processes = c.multi_process() ? G : 1;
    run.device = c.device_names();
    if (c.multi_process() && run.device.rfind("1x ", 0) == 0)  // this process's GPU stands for each rank's
        run.device = std::to_string(G) + "x " + run.device.substr(3) + " (one process each)";
    run.nccl_version = version();
    run.chunks = K;
    run.blocking = blocking_comms();
    run.overlap = eo.overlap;
    run.capacity = cap;

    // ---- allocate and generate, rank by rank (each on its own device) ----
    RankStates states;
    // Opens every gate when the run ends, also by an error, so that no gate kernel spins until its timeout while
    // the buffers are freed (declared after the states: it runs first).
    struct OpenGatesAtExit {
        RankStates& s;
        ~OpenGatesAtExit() {
            for (auto& r : s.r)
                if (r && r->gate_h) *static_cast<volatile unsigned*>(r->gate_h) = ~0u;
        }
    } open_at_exit{states};
    states.devices.assign(G, 0);
    states.r.resize(G);
    std::vector<float> logp_host = route::log_popularity(s.skew, E);
    for (int g : L) {
        c.use(g);
        states.devices[g] = c.device(g);
        auto rs = std::make_unique<RankState>();
        RankState& R = *rs;
        R.g = g;
        R.t0 = token_begin(g, T, G);
        R.T = token_begin(g + 1, T, G) - R.t0;
        R.ns = c.stream(g);
        if (eo.overlap) {
            MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&R.cs, cudaStreamNonBlocking));
            R.own_cs = true;
        } else {
            R.cs = R.ns;
        }
        const std::int64_t Tg = std::max<std::int64_t>(R.T, 1);  // ≥ 1 element: launchers assert non-null buffers
        std::size_t ws_bytes = gpu::dispatch_workspace_bytes(st, R.T, k, E);
        if (cap > 0) ws_bytes = std::max(ws_bytes, gpu::capacity_workspace_bytes(G * Tmax, k, E));
        if (experts_on)
            ws_bytes = std::max(ws_bytes, gpu::experts_workspace_bytes(std::max<std::int64_t>(p_max, 1), El, F));
        std::size_t need = ws_bytes + std::size_t(Tg) * (2 * row_b + 4 * E + 12 * k) + std::size_t(Tg) * k * row_b +
                           std::size_t(recv_max) * row_b + (std::size_t(256) << 20);
        if (cap > 0) need += std::size_t(G) * Tmax * k * 8;
        if (experts_on)
            need += std::size_t(El) * 3 * F * row_b + 2 * std::size_t(p_max) * row_b + std::size_t(recv_max) * row_b +
                    std::size_t(Tg) * k * row_b;
        const std::size_t free_b = gpu::free_memory_bytes(c.device(g));
        if (need > free_b) {
            std::ostringstream os;
            os << "rank " << g << " needs about " << need << " bytes (" << gib(double(need)) << ") on GPU "
               << c.device(g) << " but " << free_b << " bytes (" << gib(double(free_b))
               << ") are free; lower --tokens, --hidden, --ffn or --experts";
            throw Error(ErrorKind::OutOfMemory, os.str());
        }
        const Stream sg = R.ns;
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
        R.cnt_own = DeviceBuffer<std::int32_t>(E, "own counts");
        R.cnt_recv = DeviceBuffer<std::int32_t>(std::size_t(G) * El, "received counts");
        R.xr = DeviceBuffer<bf16_t>(std::max<std::int64_t>(recv_max, 1) * d, "received rows");
        R.plan = DeviceBuffer<std::int32_t>(plan_ints, "receive plan");
        R.ws = DeviceBuffer<std::uint8_t>(ws_bytes, "stage workspace");
        R.scratch = DeviceBuffer<float>(1, "barrier scratch");
        MOE_CUDA_CHECK(cudaMemsetAsync(R.scratch.data(), 0, sizeof(float), R.ns));
        if (s.router == Router::Gate) R.wg = DeviceBuffer<bf16_t>(std::size_t(E) * d, "gate weights");
        if (cap > 0) {
            // Every rank's ids and weights, slot g = rank g's tokens padded to Tmax with id −1 (never counted), so
            // the slots in rank order are the global (t, j) order the reference drops in.
            R.ids_all = DeviceBuffer<std::int32_t>(std::size_t(G) * Tmax * k, "all ranks' ids");
            R.w_all = DeviceBuffer<float>(std::size_t(G) * Tmax * k, "all ranks' weights");
            R.demand = DeviceBuffer<std::int32_t>(E, "demand");
            MOE_CUDA_CHECK(cudaMemsetAsync(R.ids_all.data(), 0xFF, R.ids_all.bytes(), R.ns));
            MOE_CUDA_CHECK(cudaMemsetAsync(R.w_all.data(), 0, R.w_all.bytes(), R.ns));
        }
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
        R.host = std::make_unique<Pinned<std::int32_t>>(host_ints);
        MOE_CUDA_CHECK(cudaHostAlloc(&R.gate_h, sizeof(unsigned), cudaHostAllocMapped | cudaHostAllocPortable));
        *R.gate_h = 0;
        void* gd = nullptr;
        MOE_CUDA_CHECK(cudaHostGetDevicePointer(&gd, R.gate_h, 0));
        R.gate_d = static_cast<const unsigned*>(gd);

        // Global index ranges: the rank's x rows, its experts' weights; the gate is the whole [E, d].
        make_bf16_range(s.seed, kStreamX, R.t0 * d, R.T * d, x_scale(), R.x.data(), sg);
        if (s.router == Router::Gate) gpu::make_gate(s.seed, E, d, R.wg.data(), sg);
        if (experts_on) {
            const std::int64_t n1 = std::int64_t(El) * 2 * F * d, n2 = std::int64_t(El) * d * F;
            make_bf16_range(s.seed, kStreamW1, std::int64_t(g) * n1, n1, w1_scale(d), R.w1.data(), sg);
            make_bf16_range(s.seed, kStreamW2, std::int64_t(g) * n2, n2, w2_scale(F), R.w2.data(), sg);
        }
        MOE_CUDA_CHECK(
            cudaMemcpyAsync(R.logp.data(), logp_host.data(), sizeof(float) * E, cudaMemcpyHostToDevice, R.ns));
        states.r[g] = std::move(rs);
    }
    AbortOnUnwind guard(c);
    c.wait_streams("input generation on every rank");  // so no rank's first exchange waits on a slower peer's inputs

    std::vector<std::vector<std::int64_t>> send_rows(G, std::vector<std::int64_t>(G)), recv_rows = send_rows;
    std::vector<std::vector<std::int64_t>> zero_off(G, std::vector<std::int64_t>(G, 0));
    std::vector<std::vector<std::int64_t>> el_rows(G, std::vector<std::int64_t>(G, El));
    std::vector<std::vector<ChunkPlan>> plans(G);
    auto each = [&](auto&& f) {
        for (int g : L) {
            c.use(g);
            f(*states.r[g]);
        }
    };
    auto ptrs = [&](auto get) {
        using P = decltype(get(*states.r[L.front()]));
        std::vector<P> v(G, nullptr);
        for (int g : L) v[g] = get(*states.r[g]);
        return v;
    };
    auto scratch = ptrs([](RankState& R) { return R.scratch.data(); });
    auto open_gates = [&] {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        for (int g : L) *static_cast<volatile unsigned*>(states.r[g]->gate_h) = states.r[g]->epoch;
    };
    // A barrier on every rank's comm stream, timed as a "wait" span.
    auto wait_span = [&](int chunk) {
        if (!eo.wait_spans) return;
        std::vector<int> a(G);
        each([&](RankState& R) { a[R.g] = R.mark(R.ns); });
        barrier(c, scratch, "the barrier before an exchange");
        each([&](RankState& R) { R.span("wait", "comm", a[R.g], R.mark(R.ns), chunk); });
    };

    // Per repeat and rank: the layer's span, then every span's start and end, from the rank's first event.
    std::vector<std::vector<std::vector<double>>> times(G);  // [g][repeat][1 + 2·spans]
    std::vector<int> last(G, 0);
    const int total = opt.warmup + opt.repeats;
    for (int rep = 0; rep < total; ++rep) {
        if (opt.progress) opt.progress(float(rep) / total, "route");
        if (opt.cancel && opt.cancel->load()) {
            guard.disarm();  // every rank is idle between repeats: the communicator stays usable
            throw Error(ErrorKind::Runtime, "run cancelled");
        }
        each([&](RankState& R) { R.used = 0, R.spans.clear(); });
        // Aligned start: after a barrier every rank's first event is within the barrier's skew of the others'.
        barrier(c, scratch, "the barrier that starts a repeat");
        each([&](RankState& R) {
            R.mark(R.ns);  // event 0: the rank's origin
            R.cs_waits(0);
        });
        // ---- route on every rank ----
        each([&](RankState& R) {
            const Stream cs = R.cs;
            const int a = R.mark(R.cs);
            if (s.router == Router::Gate) {
                gpu::gate_route(R.x.data(), R.wg.data(), R.logp.data(), R.T, d, E, k, s.renormalize, R.logits.data(),
                                R.ids.data(), R.w.data(), cs);
            } else {
                popularity_logits_range(s.seed, R.logp.data(), R.t0, R.T, E, R.logits.data(), cs);
                route::gpu::softmax_topk(R.logits.data(), R.T, E, k, s.renormalize, R.ids.data(), R.w.data(), cs);
            }
            R.span("route", "compute", a, R.mark(R.cs));
        });
        // ---- capacity: every rank's picks to every rank, then the reference's drops over all T tokens ----
        if (cap > 0) {
            std::vector<int> a(G);
            each([&](RankState& R) {
                const std::size_t slot = std::size_t(R.g) * Tmax * k, n = std::size_t(R.T) * k;
                MOE_CUDA_CHECK(
                    cudaMemcpyAsync(R.ids_all.data() + slot, R.ids.data(), n * 4, cudaMemcpyDeviceToDevice, R.cs));
                MOE_CUDA_CHECK(
                    cudaMemcpyAsync(R.w_all.data() + slot, R.w.data(), n * 4, cudaMemcpyDeviceToDevice, R.cs));
                R.ns_waits(a[R.g] = R.mark(R.cs));
            });
            allgather(c, ptrs([](RankState& R) -> void* { return R.ids_all.data(); }), std::size_t(Tmax) * k * 4,
                      "the all-gather of every rank's expert ids");
            allgather(c, ptrs([](RankState& R) -> void* { return R.w_all.data(); }), std::size_t(Tmax) * k * 4,
                      "the all-gather of every rank's weights");
            each([&](RankState& R) {
                const int b = R.mark(R.ns);
                R.span("capacity exchange", "comm", a[R.g], b);
                R.cs_waits(b);
                const int a2 = R.mark(R.cs);
                gpu::capacity(R.ids_all.data(), R.w_all.data(), G * Tmax, k, E, cap, s.drop_policy, R.demand.data(),
                              R.ws.data(), R.ws.bytes(), R.cs);
                const std::size_t slot = std::size_t(R.g) * Tmax * k, n = std::size_t(R.T) * k;
                MOE_CUDA_CHECK(
                    cudaMemcpyAsync(R.ids.data(), R.ids_all.data() + slot, n * 4, cudaMemcpyDeviceToDevice, R.cs));
                R.span("capacity", "compute", a2, R.mark(R.cs));
            });
        }
        // ---- counts: each peer gets the kept rows of its experts, on the device; then a copy to the host ----
        std::vector<int> ca(G);
        each([&](RankState& R) {
            ca[R.g] = R.mark(R.cs);
            count_experts(R.ids.data(), R.T * k, E, R.cnt_own.data(), R.cs);
            R.ns_waits(R.mark(R.cs));
        });
        alltoallv(c, ptrs([](RankState& R) -> const void* { return R.cnt_own.data(); }),
                  ptrs([](RankState& R) -> void* { return R.cnt_recv.data(); }), el_rows, el_rows, sizeof(std::int32_t),
                  "the expert-counts all-to-all");
        std::vector<int> ch(G);
        each([&](RankState& R) {
            std::int32_t* h = R.host->data();
            MOE_CUDA_CHECK(
                cudaMemcpyAsync(h, R.cnt_own.data(), sizeof(std::int32_t) * E, cudaMemcpyDeviceToHost, R.ns));
            MOE_CUDA_CHECK(
                cudaMemcpyAsync(h + E, R.cnt_recv.data(), sizeof(std::int32_t) * G * El, cudaMemcpyDeviceToHost, R.ns));
            if (cap > 0)
                MOE_CUDA_CHECK(cudaMemcpyAsync(h + E + G * El, R.demand.data(), sizeof(std::int32_t) * E,
                                               cudaMemcpyDeviceToHost, R.ns));
            ch[R.g] = R.mark(R.ns);
            R.span("counts", "comm", ca[R.g], ch[R.g]);
        });
        // ---- pack on the compute stream while the counts travel to the host ----
        std::vector<int> packed(G);
        each([&](RankState& R) {
            const int a = R.mark(R.cs);
            // align 1 on the send side: each destination's rows are one contiguous run, padding is the receiver's.
            gpu::dispatch(st, R.x.data(), R.ids.data(), R.T, k, E, d, 1, R.counts.data(), R.offsets.data(),
                          R.row_token.data(), R.inv.data(), R.xs.data(), R.ws.data(), R.ws.bytes(), R.cs);
            R.span("dispatch", "compute", a, packed[R.g] = R.mark(R.cs));
        });
        // ---- the one host sync: NCCL's message sizes are host arguments ----
        {
            std::vector<cudaEvent_t> evs(G, nullptr);
            for (int g : L) evs[g] = states.r[g]->ev[ch[g]];
            c.wait_events(evs, "the expert counts of every rank");
        }
        each([&](RankState& R) {
            const int g = R.g;
            const std::int32_t* own = R.host->data();
            const std::int32_t* got = own + E;
            plans[g] = plan_chunks(own, got, G, El, K, s.align);
            std::int64_t R_total = 0, P_total = 0;
            for (auto& ck : plans[g]) R_total += ck.recv.R, P_total += ck.recv.P;
            MOE_ASSERT(R_total <= recv_max && P_total <= p_max,
                       "rank " << g << " received " << R_total << " rows, more than the bound " << recv_max);
            for (int p = 0; p < G; ++p) {
                send_rows[g][p] = std::accumulate(own + p * El, own + (p + 1) * El, std::int64_t(0));
                recv_rows[g][p] = std::accumulate(got + p * El, got + (p + 1) * El, std::int64_t(0));
            }
            // A gate holds the comm stream until the host has queued the first exchange (see open_gates).
            gate(R.gate_d, ++R.epoch, c.timeout_s(), R.ns);
            if (experts_on) {
                // Stage every chunk's plan in pinned memory and send it up; the next repeat overwrites it only after
                // this one has finished (the host waits for each repeat's last event).
                std::int32_t* stage = R.host->data() + 2 * E + std::size_t(G) * El;
                std::size_t o = 0;
                for (auto& ck : plans[g])
                    for (auto* v : {&ck.recv.fwd_dst, &ck.recv.fwd_src, &ck.recv.bwd_dst, &ck.recv.bwd_src,
                                    &ck.recv.loc_counts, &ck.recv.loc_offsets}) {
                        MOE_ASSERT(o + v->size() <= plan_ints, "receive plan overflows " << plan_ints << " ints");
                        std::copy(v->begin(), v->end(), stage + o), o += v->size();
                    }
                MOE_CUDA_CHECK(
                    cudaMemcpyAsync(R.plan.data(), stage, sizeof(std::int32_t) * o, cudaMemcpyHostToDevice, R.ns));
            }
            R.span("host", "comm", ch[g], R.mark(R.ns));
            R.ns_waits(packed[g]);  // the rows leave once packed
        });
        // ---- rows to the experts' ranks, chunk by chunk, interleaved on the host with the experts ----
        wait_span(0);
        auto chunk_rows = [&](int i, bool dispatch_dir) {
            std::vector<std::vector<std::int64_t>> so = zero_off, sr = zero_off, ro = zero_off, rr = zero_off;
            for (int g : L) {
                const ChunkPlan& ck = plans[g][i];
                if (dispatch_dir)
                    so[g] = ck.send_off, sr[g] = ck.send_rows, ro[g] = ck.recv_off, rr[g] = ck.recv_rows;
                else
                    so[g] = ck.recv_off, sr[g] = ck.recv_rows, ro[g] = ck.send_off, rr[g] = ck.send_rows;
            }
            return std::array<std::vector<std::vector<std::int64_t>>, 4>{so, sr, ro, rr};
        };
        std::vector<std::vector<int>> arrived(G, std::vector<int>(K)), computed = arrived;
        auto dispatch_chunk = [&](int i) {
            std::vector<int> a(G);
            each([&](RankState& R) { a[R.g] = R.mark(R.ns); });
            auto [so, sr, ro, rr] = chunk_rows(i, true);
            alltoallv_at(c, ptrs([](RankState& R) -> const void* { return R.xs.data(); }),
                         ptrs([](RankState& R) -> void* { return R.xr.data(); }), so, sr, ro, rr, row_b,
                         "the dispatch all-to-all");
            each([&](RankState& R) {
                arrived[R.g][i] = R.mark(R.ns);
                R.span("a2a dispatch", "comm", a[R.g], arrived[R.g][i], i);
            });
        };
        // Local experts of chunk i on the compute stream: regroup, FFN, regroup back.
        auto experts_chunk = [&](RankState& R, int i) {
            const std::int32_t* dp = R.plan.data();
            const std::int32_t* stage = R.host->data() + 2 * E + std::size_t(G) * El;
            for (int j = 0; j < i; ++j) {
                const RecvPlan& Q = plans[R.g][j].recv;
                const int nj = plans[R.g][j].e1 - plans[R.g][j].e0;
                dp += Q.fwd_dst.size() + Q.fwd_src.size() + Q.bwd_dst.size() + Q.bwd_src.size() + 2 * nj + 1;
            }
            const ChunkPlan& ck = plans[R.g][i];
            const RecvPlan& P = ck.recv;
            const int n = ck.e1 - ck.e0;
            const std::int32_t *fwd_dst = dp, *fwd_src = fwd_dst + P.fwd_dst.size();
            const std::int32_t *bwd_dst = fwd_src + P.fwd_src.size(), *bwd_src = bwd_dst + P.bwd_dst.size();
            const std::int32_t *loc_counts = bwd_src + P.bwd_src.size(), *loc_offsets = loc_counts + n;
            const std::int32_t* loc_counts_h = stage + (loc_counts - R.plan.data());
            const std::int32_t* loc_offsets_h = stage + (loc_offsets - R.plan.data());
            R.cs_waits(arrived[R.g][i]);
            const int a = R.mark(R.cs);
            if (P.P > 0) {
                bf16_t* xe = R.xe.data() + ck.p_base * d;
                bf16_t* ye = R.ye.data() + ck.p_base * d;
                std::int32_t* tag = R.row_tag.data() + ck.p_base;
                copy_segments(R.xr.data() + ck.r_base * d, xe, d, fwd_dst, fwd_src, int(P.fwd_src.size()), P.P, tag,
                              R.cs);
                // The auto choice, except one cuBLAS call per expert (streams) becomes two grouped calls: the host
                // queues the chunks faster than the GPU runs them, so the chunks can overlap at all.
                gpu::ExpertsImpl impl = gpu::experts_auto_choice(double(P.R) / n, d, F, true);
                if (impl == gpu::ExpertsImpl::Streams) impl = gpu::ExpertsImpl::Grouped;
                gpu::experts_ffn(impl, xe, nullptr, tag, loc_counts, loc_offsets, loc_counts_h, loc_offsets_h, n, d, F,
                                 R.w1.data() + std::size_t(ck.e0) * 2 * F * d, R.w2.data() + std::size_t(ck.e0) * d * F,
                                 ye, R.ws.data(), R.ws.bytes(), R.cs);
                copy_segments(ye, R.yr.data() + ck.r_base * d, d, bwd_dst, bwd_src, int(P.bwd_src.size()), P.R, nullptr,
                              R.cs);
            }
            computed[R.g][i] = R.mark(R.cs);
            R.span("experts", "compute", a, computed[R.g][i], i);
        };
        dispatch_chunk(0);
        open_gates();  // the first exchange is queued behind its barrier: the GPU may start
        for (int i = 0; i < K; ++i) {
            if (experts_on) each([&](RankState& R) { experts_chunk(R, i); });
            if (i + 1 < K) dispatch_chunk(i + 1);
        }
        if (experts_on) {
            // ---- outputs back, chunk by chunk, each once its experts are done; a gate holds the comm stream until
            // the host has queued the first one, so its spans hold no host latency ----
            each([&](RankState& R) {
                R.ns_waits(computed[R.g][0]);
                const int a = R.mark(R.ns);
                gate(R.gate_d, ++R.epoch, c.timeout_s(), R.ns);
                R.span("host", "comm", a, R.mark(R.ns));
            });
            wait_span(0);
            for (int i = 0; i < K; ++i) {
                if (i > 0) each([&](RankState& R) { R.ns_waits(computed[R.g][i]); });
                std::vector<int> a(G);
                each([&](RankState& R) { a[R.g] = R.mark(R.ns); });
                auto [so, sr, ro, rr] = chunk_rows(i, false);
                alltoallv_at(c, ptrs([](RankState& R) -> const void* { return R.yr.data(); }),
                             ptrs([](RankState& R) -> void* { return R.yback.data(); }), so, sr, ro, rr, row_b,
                             "the combine all-to-all");
                each([&](RankState& R) { R.span("a2a combine", "comm", a[R.g], R.mark(R.ns), i); });
                if (i == 0) open_gates();
            }
            each([&](RankState& R) {
                R.cs_waits(R.used - 1);
                const int a = R.mark(R.cs);
                gpu::combine(R.yback.data(), R.inv.data(), R.w.data(), R.T, k, d, R.out.data(), R.cs);
                R.span("combine", "compute", a, last[R.g] = R.mark(R.cs));
            });
        } else {
            each([&](RankState& R) { last[R.g] = R.used - 1; });
        }
        {
            std::vector<cudaEvent_t> evs(G, nullptr);
            for (int g : L) evs[g] = states.r[g]->ev[last[g]];
            c.wait_events(evs, "the layer's last stage on every rank");
        }
        if (rep < opt.warmup) continue;
        each([&](RankState& R) {
            std::vector<double> v;
            float ms = 0;
            MOE_CUDA_CHECK(cudaEventElapsedTime(&ms, R.ev[0], R.ev[last[R.g]]));
            v.push_back(ms);
            for (auto& sp : R.spans) {
                float a = 0, b = 0;
                MOE_CUDA_CHECK(cudaEventElapsedTime(&a, R.ev[0], R.ev[sp.a]));
                MOE_CUDA_CHECK(cudaEventElapsedTime(&b, R.ev[0], R.ev[sp.b]));
                v.push_back(a), v.push_back(std::max(a, b));
            }
            times[R.g].push_back(std::move(v));
        });
    }
    if (opt.progress) opt.progress(1.0f, "done");
    const std::vector<SpanRef> layout = states.r[L.front()]->spans;  // the same on every rank
    const int nsp = int(layout.size());

    // ---- optional: each pair's dispatch bytes alone, sender-side CUDA events, median of 5 ----
    std::vector<double> pair_mine(std::size_t(G) * G, 0.0);
    if (eo.pair_probe && G > 1) {
        const int reps = 5;
        for (int src = 0; src < G; ++src)
            for (int dst = 0; dst < G; ++dst) {
                if (src == dst) continue;
                // Both sides know the pair's rows (send_rows of the sender, recv_rows of the receiver).
                std::vector<std::vector<std::int64_t>> sr = zero_off, rr = zero_off;
                std::int64_t rows = -1;
                for (int g : L) {
                    if (g == src) sr[g][dst] = send_rows[src][dst], rows = send_rows[src][dst];
                    if (g == dst) rr[g][src] = recv_rows[dst][src], rows = recv_rows[dst][src];
                }
                if (rows <= 0) continue;  // nothing to time, or this process is not in the pair
                std::vector<double> ms;
                for (int rp = 0; rp < reps; ++rp) {
                    std::vector<int> a(G);
                    each([&](RankState& R) { a[R.g] = R.mark(R.ns); });
                    alltoallv_at(c, ptrs([](RankState& R) -> const void* { return R.xs.data(); }),
                                 ptrs([](RankState& R) -> void* { return R.xr.data(); }), zero_off, sr, zero_off, rr,
                                 row_b, "the per-pair probe");
                    std::vector<int> b(G);
                    std::vector<cudaEvent_t> evs(G, nullptr);
                    each([&](RankState& R) { evs[R.g] = R.ev[b[R.g] = R.mark(R.ns)]; });
                    c.wait_events(evs, "the per-pair probe");
                    if (c.is_local(src)) {
                        c.use(src);
                        float t = 0;
                        MOE_CUDA_CHECK(cudaEventElapsedTime(&t, states.r[src]->ev[a[src]], states.r[src]->ev[b[src]]));
                        ms.push_back(t);
                    }
                }
                if (c.is_local(src)) pair_mine[std::size_t(src) * G + dst] = median_of(ms);
            }
    }

    // ---- every rank's numbers to every process (one NCCL all-gather, also under mpirun) ----
    // Per rank: tokens, kept counts [E], demand [E], send rows [G], recv rows [G], pair ms [G], then per repeat the
    // layer's span and 2·nsp span ends.
    const std::size_t nrec = 1 + 2 * std::size_t(E) + 3 * std::size_t(G) + std::size_t(opt.repeats) * (1 + 2 * nsp);
    std::vector<DeviceBuffer<double>> recbuf(G);
    std::vector<const void*> recp(G, nullptr);
    each([&](RankState& R) {
        const int g = R.g;
        std::vector<double> v;
        v.push_back(double(R.T));
        const std::int32_t* own = R.host->data();
        for (int e = 0; e < E; ++e) v.push_back(own[e]);
        if (cap > 0)
            for (int e = 0; e < E; ++e) v.push_back(own[E + G * El + e]);  // global demand, the same on every rank
        else
            for (int e = 0; e < E; ++e) v.push_back(own[e]);  // dropless: demand = kept
        for (int p = 0; p < G; ++p) v.push_back(double(send_rows[g][p]));
        for (int p = 0; p < G; ++p) v.push_back(double(recv_rows[g][p]));
        for (int p = 0; p < G; ++p) v.push_back(pair_mine[std::size_t(g) * G + p]);
        for (auto& rep : times[g]) v.insert(v.end(), rep.begin(), rep.end());
        MOE_ASSERT(v.size() == nrec, "rank record of " << v.size() << " numbers, expected " << nrec);
        recbuf[g] = DeviceBuffer<double>(nrec, "rank record");
        MOE_CUDA_CHECK(cudaMemcpy(recbuf[g].data(), v.data(), nrec * sizeof(double), cudaMemcpyHostToDevice));
        recp[g] = recbuf[g].data();
    });
    auto rec_bytes = gather_to_host(c, recp, nrec * sizeof(double), "gathering every rank's counts and times");
    each([&](RankState& R) { recbuf[R.g] = DeviceBuffer<double>(); });
    std::vector<double> recs(nrec * G);
    std::memcpy(recs.data(), rec_bytes.data(), rec_bytes.size());

    // ---- bookkeeping ----
    run.rank_tokens.resize(G);
    run.counts.assign(E, 0);
    run.demand.assign(E, 0);
    run.traffic.assign(std::size_t(G) * G, 0);
    run.rows_received.assign(G, 0);
    run.bytes_sent.assign(G, 0.0);
    run.pair_ms.assign(std::size_t(G) * G, 0.0);
    for (int lbl = 0; lbl < nsp; ++lbl)
        if (std::find(run.stage_names.begin(), run.stage_names.end(), layout[lbl].label) == run.stage_names.end())
            run.stage_names.push_back(layout[lbl].label);
    run.rank_stages.assign(G, {});
    run.rank_layer_ms.assign(G, {});
    for (int g = 0; g < G; ++g) {
        const double* v = recs.data() + nrec * g;
        run.rank_tokens[g] = std::int64_t(v[0]);
        const double* own = v + 1;
        const double* dem = own + E;
        const double* sr = dem + E;
        const double* rr = sr + G;
        const double* pm = rr + G;
        const double* tv = pm + G;
        for (int e = 0; e < E; ++e) run.counts[e] += std::int64_t(own[e]);
        for (int e = 0; e < E; ++e)
            if (cap > 0)
                run.demand[e] = std::int64_t(dem[e]);
            else
                run.demand[e] += std::int64_t(dem[e]);
        for (int p = 0; p < G; ++p) {
            run.traffic[std::size_t(g) * G + p] = std::int64_t(sr[p]);
            run.rows_received[g] += std::int64_t(rr[p]);
            if (p != g) run.bytes_sent[g] += (sr[p] + (experts_on ? rr[p] : 0.0)) * double(row_b);
            run.pair_ms[std::size_t(g) * G + p] = pm[p];
        }
        for (auto& n : run.stage_names) run.rank_stages[g].push_back({n, {}});
        std::vector<std::vector<double>> starts(nsp), ends(nsp);
        for (int rep = 0; rep < opt.repeats; ++rep) {
            const double* x = tv + std::size_t(rep) * (1 + 2 * nsp);
            run.rank_layer_ms[g].push_back(x[0]);
            std::map<std::string, double> sum;
            for (int i = 0; i < nsp; ++i) {
                starts[i].push_back(x[1 + 2 * i]), ends[i].push_back(x[2 + 2 * i]);
                sum[layout[i].label] += x[2 + 2 * i] - x[1 + 2 * i];
            }
            for (auto& stg : run.rank_stages[g]) stg.ms.push_back(sum[stg.stage]);
        }
        for (int i = 0; i < nsp; ++i) {
            EpSpan sp;
            sp.rank = g;
            sp.lane = layout[i].lane;
            sp.label = layout[i].label;
            sp.chunk = layout[i].chunk;
            sp.start_ms = median_of(starts[i]);
            sp.end_ms = std::max(sp.start_ms, median_of(ends[i]));
            run.spans.push_back(sp);
        }
    }
    for (int e = 0; e < E; ++e) run.dropped += run.demand[e] - run.counts[e];

    // ---- tensors: outputs and the kept ids, padded to Tmax per rank and gathered ----
    const bool want_ids = opt.keep_tensors || opt.keep_routing;
    if (opt.keep_tensors && experts_on) {
        std::vector<const void*> src(G, nullptr);
        each([&](RankState& R) { src[R.g] = R.out.data(); });
        // R.out has max(T_g, 1) rows; the gather reads Tmax rows, so a padded copy is made per rank.
        std::vector<DeviceBuffer<bf16_t>> pad(G);
        each([&](RankState& R) {
            pad[R.g] = DeviceBuffer<bf16_t>(std::size_t(Tmax) * d, "padded outputs");
            if (R.T > 0)
                MOE_CUDA_CHECK(
                    cudaMemcpy(pad[R.g].data(), R.out.data(), std::size_t(R.T) * row_b, cudaMemcpyDeviceToDevice));
            src[R.g] = pad[R.g].data();
        });
        auto all = gather_to_host(c, src, std::size_t(Tmax) * row_b, "gathering the outputs");
        run.out.resize(std::size_t(T) * d);
        for (int g = 0; g < G; ++g) {
            const std::int64_t t0 = token_begin(g, T, G), n = token_begin(g + 1, T, G) - t0;
            std::memcpy(run.out.data() + t0 * d, all.data() + std::size_t(g) * Tmax * row_b, std::size_t(n) * row_b);
        }
        each([&](RankState& R) { pad[R.g] = DeviceBuffer<bf16_t>(); });
    }
    if (want_ids) {
        std::vector<DeviceBuffer<std::int32_t>> pad(G);
        std::vector<const void*> src(G, nullptr);
        each([&](RankState& R) {
            // ids and weights of the rank, side by side: [Tmax·k ids][Tmax·k weights as bits]
            pad[R.g] = DeviceBuffer<std::int32_t>(2 * std::size_t(Tmax) * k, "padded ids");
            if (R.T > 0) {
                MOE_CUDA_CHECK(
                    cudaMemcpy(pad[R.g].data(), R.ids.data(), std::size_t(R.T) * k * 4, cudaMemcpyDeviceToDevice));
                MOE_CUDA_CHECK(cudaMemcpy(pad[R.g].data() + std::size_t(Tmax) * k, R.w.data(), std::size_t(R.T) * k * 4,
                                          cudaMemcpyDeviceToDevice));
            }
            src[R.g] = pad[R.g].data();
        });
        auto all = gather_to_host(c, src, 2 * std::size_t(Tmax) * k * 4, "gathering the routing");
        run.topk_ids.resize(std::size_t(T) * k), run.topk_w.resize(std::size_t(T) * k);
        for (int g = 0; g < G; ++g) {
            const std::int64_t t0 = token_begin(g, T, G), n = token_begin(g + 1, T, G) - t0;
            const unsigned char* base = all.data() + std::size_t(g) * 2 * Tmax * k * 4;
            std::memcpy(run.topk_ids.data() + t0 * k, base, std::size_t(n) * k * 4);
            std::memcpy(run.topk_w.data() + t0 * k, base + std::size_t(Tmax) * k * 4, std::size_t(n) * k * 4);
        }
        each([&](RankState& R) { pad[R.g] = DeviceBuffer<std::int32_t>(); });
    }
}

}  // namespace moe::nccl
