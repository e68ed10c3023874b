// The expert-parallel MoE layer over G GPUs: each rank routes its own tokens (with the reference's drops over all
// ranks when a capacity is set), the rows go to the ranks owning their experts (NCCL all-to-all, in chunks of local
// experts), the local experts run, the outputs come back and are combined. With overlap, the exchanges run on the
// comm stream and the compute on a stream of its own, so chunk i + 1 moves while chunk i's experts compute; their
// rows move over the copy engines where one process drives every GPU (no SMs taken from the experts), else over NCCL
// with SMs left free for it.
// Setup is in ep_setup.cu, the gathering of results in ep_results.cu, the state they share in ep_common.hpp.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <numeric>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/nccl/comm.hpp"
#include "kernels/nccl/ep_common.hpp"
#include "kernels/nccl/ep_kernels.hpp"
#include "kernels/nccl/nccl_api.hpp"
#include "kernels/nccl/recv_plan.hpp"

namespace moe::nccl {

using namespace ep;

namespace {

// Peer access between every pair of this process's ranks (what cudaMemcpyPeerAsync needs to go over NVLink instead of
// through the host); false where a pair has none, or ranks live in other processes.
bool peer_access_everywhere(Communicator& c) {
    if (c.multi_process()) return false;
    for (int g : c.local())
        for (int p : c.local()) {
            if (g == p) continue;
            int can = 0;
            if (cudaDeviceCanAccessPeer(&can, c.device(g), c.device(p)) != cudaSuccess || !can) return false;
            c.use(g);
            const cudaError_t e = cudaDeviceEnablePeerAccess(c.device(p), 0);
            if (e == cudaErrorPeerAccessAlreadyEnabled)
                (void)cudaGetLastError();
            else if (e != cudaSuccess)
                return (void)cudaGetLastError(), false;
        }
    return true;
}

}  // namespace

void run_ep_layer(const LayerSpec& s, int G, const LayerRunOptions& opt, EpRun& run) {
    run_ep_layer(s, G, opt, EpOptions{}, run);
}

void run_ep_layer(const LayerSpec& s, int G, const LayerRunOptions& opt, const EpOptions& eo, EpRun& run) {
    check_spec(s, G, eo);
    if (opt.repeats < 1 || opt.warmup < 0) MOE_BAD_INPUT("repeats must be >= 1 and warmup >= 0");
    const EpShape sh = ep_shape(s, G, eo, opt.run_experts);
    const std::int64_t cap = sh.cap, Tmax = sh.Tmax, recv_max = sh.recv_max, p_max = sh.p_max;
    const int E = sh.E, k = sh.k, d = sh.d, F = sh.F, El = sh.El, K = sh.K;
    const bool experts_on = sh.experts_on;
    const Strategy st = sh.st;
    const std::size_t plan_ints = sh.plan_ints, row_b = sh.row_b;

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
    int comm_sms = eo.comm_sms;
    if (comm_sms < 0) {
        const char* env = std::getenv("MOELAB_EP_COMM_SMS");
        comm_sms = env && *env ? std::max(0, std::atoi(env)) : 16;
    }
    if (!eo.overlap || K < 2) comm_sms = 0;  // nothing runs beside the experts

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
        states.r[g] = make_rank(c, g, s, sh, eo.overlap, logp_host);
    }
    // The overlapped run's transport: copy engines where one process drives every rank with peer access (they need no
    // SMs), else NCCL with comm_sms SMs left free beside the experts.
    bool ce = false;
    if (eo.overlap && eo.transport != EpOptions::Transport::Nccl) {
        ce = peer_access_everywhere(c);
        if (!ce && eo.transport == EpOptions::Transport::CopyEngines)
            throw Error(ErrorKind::NoDevice,
                        "the copy-engine transport needs one process driving every rank, with peer access between "
                        "every pair of GPUs; use --transport nccl (or auto)");
    }
    if (ce) comm_sms = 0;
    run.transport = ce ? "copy engines" : "nccl";
    // The experts' SMs: all but comm_sms (at least half of the GPU)
    const int sms = gpu::device_sms();
    const int expert_sms = comm_sms > 0 ? std::max(sms / 2, sms - comm_sms) : 0;
    run.comm_sms = comm_sms > 0 ? sms - expert_sms : 0;
    AbortOnUnwind guard(c);
    c.wait_streams("input generation on every rank");  // so no rank's first exchange waits on a slower peer's inputs

    std::vector<std::vector<std::int64_t>> send_rows(G, std::vector<std::int64_t>(G)), recv_rows = send_rows;
    std::vector<std::vector<std::int64_t>> zero_off(G, std::vector<std::int64_t>(G, 0));
    std::vector<std::vector<std::int64_t>> el_rows(G, std::vector<std::int64_t>(G, El));
    std::vector<std::vector<ChunkPlan>> plans(G);
    auto each = [&](auto&& f) { each_rank(c, states, f); };
    auto ptrs = [&](auto get) { return rank_ptrs(c, states, get); };
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
        std::vector<std::vector<int>> arrived(G, std::vector<int>(K)), computed = arrived, returned = arrived;
        // Chunk i's rows between the ranks: dispatch (xs to xr) or back (yr to yback), each rank's part a span on its
        // comm stream that ends at done[g][i]. NCCL: a rank has all its rows once its own stream passes done.
        // Copy engines: rank g pushes its rows into every peer's buffer (peer copies on g's comm stream), so a
        // receiver waits for every sender's done event (await_rows).
        // (The copy engines take the outputs back on a stream of their own, so the next chunks' rows do not queue
        // behind them.)
        auto exchange_stream = [&](RankState& R, bool dispatch_dir) { return ce && !dispatch_dir ? R.ys : R.ns; };
        auto exchange = [&](int i, bool dispatch_dir, std::vector<std::vector<int>>& done) {
            std::vector<int> a(G);
            each([&](RankState& R) { a[R.g] = R.mark(exchange_stream(R, dispatch_dir)); });
            const auto rows = chunk_rows(i, dispatch_dir);  // send offsets and rows, receive offsets and rows
            const auto &so = rows[0], &sr = rows[1], &ro = rows[2], &rr = rows[3];
            auto src_of = [dispatch_dir](RankState& R) -> const void* {
                return dispatch_dir ? R.xs.data() : R.yr.data();
            };
            auto dst_of = [dispatch_dir](RankState& R) -> void* { return dispatch_dir ? R.xr.data() : R.yback.data(); };
            if (ce) {
                each([&](RankState& R) {
                    const int g = R.g;
                    for (int p = 0; p < G; ++p) {
                        if (sr[g][p] == 0) continue;
                        MOE_ASSERT(sr[g][p] == rr[p][g], "rank " << g << " would copy " << sr[g][p] << " rows to rank "
                                                                 << p << ", which expects " << rr[p][g]);
                        const char* src = static_cast<const char*>(src_of(R)) + std::size_t(so[g][p]) * row_b;
                        char* dst = static_cast<char*>(dst_of(*states.r[p])) + std::size_t(ro[p][g]) * row_b;
                        MOE_CUDA_CHECK(cudaMemcpyPeerAsync(dst, c.device(p), src, c.device(g),
                                                           std::size_t(sr[g][p]) * row_b,
                                                           exchange_stream(R, dispatch_dir)));
                    }
                });
            } else {
                alltoallv_at(c, ptrs(src_of), ptrs(dst_of), so, sr, ro, rr, row_b,
                             dispatch_dir ? "the dispatch all-to-all" : "the combine all-to-all");
            }
            each([&](RankState& R) {
                done[R.g][i] = R.mark(exchange_stream(R, dispatch_dir));
                R.span(dispatch_dir ? "a2a dispatch" : "a2a combine", "comm", a[R.g], done[R.g][i], i);
            });
        };
        // Stream s of rank R waits until R has every row of chunk i that `done` tracks.
        auto await_rows = [&](RankState& R, cudaStream_t s, const std::vector<std::vector<int>>& done, int i) {
            if (!ce) {
                if (s != R.ns) MOE_CUDA_CHECK(cudaStreamWaitEvent(s, R.ev[done[R.g][i]], 0));
                return;
            }
            for (int q : L) MOE_CUDA_CHECK(cudaStreamWaitEvent(s, states.r[q]->ev[done[q][i]], 0));
        };
        auto dispatch_chunk = [&](int i) { exchange(i, true, arrived); };
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
            await_rows(R, R.cs, arrived, i);
            const int a = R.mark(R.cs);
            if (P.P > 0) {
                bf16_t* xe = R.xe.data() + ck.p_base * d;
                bf16_t* ye = R.ye.data() + ck.p_base * d;
                std::int32_t* tag = R.row_tag.data() + ck.p_base;
                copy_segments(R.xr.data() + ck.r_base * d, xe, d, fwd_dst, fwd_src, int(P.fwd_src.size()), P.P, tag,
                              R.cs);
                // The auto choice, except one cuBLAS call per expert (streams) becomes two grouped calls: the host
                // queues the chunks faster than the GPU runs them, so the chunks can overlap at all.
                const std::int64_t busiest = n > 0 ? *std::max_element(loc_counts_h, loc_counts_h + n) : 0;
                gpu::ExpertsImpl impl = gpu::experts_auto_choice(double(P.R) / n, d, F, true, busiest);
                if (impl == gpu::ExpertsImpl::Streams) impl = gpu::ExpertsImpl::Grouped;
                const gpu::SmBudget budget(expert_sms);  // SMs left to the exchanges that overlap these experts
                gpu::experts_ffn(impl, xe, nullptr, tag, loc_counts, loc_offsets, loc_counts_h, loc_offsets_h, n, d, F,
                                 R.w1.data() + std::size_t(ck.e0) * 2 * F * d, R.w2.data() + std::size_t(ck.e0) * d * F,
                                 ye, R.ws.data(), R.ws.bytes(), R.cs);
                copy_segments(ye, R.yr.data() + ck.r_base * d, d, bwd_dst, bwd_src, int(P.bwd_src.size()), P.R, nullptr,
                              R.cs);
            }
            computed[R.g][i] = R.mark(R.cs);
            R.span("experts", "compute", a, computed[R.g][i], i);
        };
        // Chunk i's outputs back to their ranks once its experts are done.
        auto combine_chunk = [&](int i) {
            each([&](RankState& R) {
                MOE_CUDA_CHECK(cudaStreamWaitEvent(exchange_stream(R, false), R.ev[computed[R.g][i]], 0));
            });
            exchange(i, false, returned);
        };
        dispatch_chunk(0);
        open_gates();  // the first exchange is queued behind its barrier: the GPU may start
        // Overlapped chunks: the host queues, per chunk, its experts, the next chunk's rows and its outputs back, so
        // the comm stream runs dispatch i + 1 and combine i while the experts of chunk i + 1 compute (no gate: the
        // host is ahead of the GPU here, and a late host shows as a gap between spans).
        const bool interleaved = experts_on && eo.overlap && K > 1;
        for (int i = 0; i < K; ++i) {
            if (experts_on) each([&](RankState& R) { experts_chunk(R, i); });
            if (i + 1 < K) dispatch_chunk(i + 1);
            if (interleaved) {
                if (i == 0 && !ce) {  // (an NCCL barrier would wait for SMs behind the experts of chunk 1)
                    each([&](RankState& R) { R.ns_waits(computed[R.g][0]); });
                    wait_span(0);
                }
                combine_chunk(i);
            }
        }
        if (experts_on && !interleaved) {
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
                combine_chunk(i);
                if (i == 0) open_gates();
            }
        }
        if (experts_on) {
            each([&](RankState& R) {
                if (ce) {  // the time this rank waits for the slower ranks' experts and their rows back
                    const int w = eo.wait_spans ? R.mark(R.cs) : -1;
                    await_rows(R, R.cs, returned, K - 1);
                    if (w >= 0) R.span("wait", "compute", w, R.mark(R.cs), K - 1);
                } else {
                    R.cs_waits(returned[R.g][K - 1]);
                }
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
    gather_records(c, states, sh, opt.repeats, layout, send_rows, recv_rows, pair_mine, times, run);
    gather_tensors(c, states, sh, opt, run);
}

}  // namespace moe::nccl
