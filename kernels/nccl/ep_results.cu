// The expert-parallel layer's results (ep_layer.cu runs it): every rank's counts, traffic and span times, and on
// request its outputs and routing, gathered to every process with NCCL (also under mpirun) and laid out in the EpRun.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/nccl/comm.hpp"
#include "kernels/nccl/ep_common.hpp"
#include "kernels/nccl/recv_plan.hpp"

namespace moe::nccl::ep {

namespace {

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

void gather_records(Communicator& c, RankStates& states, const EpShape& sh, int repeats,
                    const std::vector<SpanRef>& layout, const RowTable& send_rows, const RowTable& recv_rows,
                    const std::vector<double>& pair_mine, const RepeatTimes& times, EpRun& run) {
    const int G = sh.G, E = sh.E, El = sh.El;
    const std::int64_t cap = sh.cap;
    const bool experts_on = sh.experts_on;
    const std::size_t row_b = sh.row_b;
    const int nsp = int(layout.size());
    auto each = [&](auto&& f) { each_rank(c, states, f); };

    // ---- every rank's numbers to every process (one NCCL all-gather, also under mpirun) ----
    // Per rank: tokens, kept counts [E], demand [E], send rows [G], recv rows [G], pair ms [G], then per repeat the
    // layer's span and 2·nsp span ends.
    const std::size_t nrec = 1 + 2 * std::size_t(E) + 3 * std::size_t(G) + std::size_t(repeats) * (1 + 2 * nsp);
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
        for (int rep = 0; rep < repeats; ++rep) {
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
}

void gather_tensors(Communicator& c, RankStates& states, const EpShape& sh, const LayerRunOptions& opt, EpRun& run) {
    const std::int64_t T = sh.T, Tmax = sh.Tmax;
    const int G = sh.G, k = sh.k, d = sh.d;
    const bool experts_on = sh.experts_on;
    const std::size_t row_b = sh.row_b;
    auto each = [&](auto&& f) { each_rank(c, states, f); };

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

}  // namespace moe::nccl::ep
