// `moelab bench alltoall` (nccl-tests style: size | count | time | algbw | busbw | #wrong, with the PyTorch peer's
// ratio) and `moelab bench ep-layer` (per-rank stage times of the expert-parallel layer, checked against the CPU).
#include "app/cli/bench_nccl.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "demos/atomic_file.hpp"
#include "kernels/api.hpp"
#include "kernels/common/error.hpp"
#include "kernels/nccl/nccl_api.hpp"

namespace moelab_cli {

namespace {

std::size_t parse_bytes(const std::string& flag, const std::string& text) {
    std::size_t pos = 0;
    double v = -1;
    try {
        v = std::stod(text, &pos);
    } catch (const std::exception&) {
    }
    std::string unit = text.substr(std::min(pos, text.size()));
    double mul = unit.empty() || unit == "B"    ? 1
                 : unit == "K" || unit == "KiB" ? 1024.0
                 : unit == "M" || unit == "MiB" ? 1048576.0
                 : unit == "G" || unit == "GiB" ? 1073741824.0
                                                : -1;
    if (!(v > 0) || mul < 0 || v * mul > 17179869184.0)
        MOE_BAD_INPUT(flag << " '" << text << "': a size in bytes with an optional K, M or G suffix, up to 16G");
    return static_cast<std::size_t>(v * mul);
}

int nccl_ranks(const NcclBenchArgs& a) {
    if (!moe::nccl::built())
        throw moe::Error(moe::ErrorKind::NoDevice, "moelab bench " + a.what +
                                                       " needs the nccl backend, which this "
                                                       "build lacks (configure with CUDA and NCCL found)");
    if (a.ranks < 0 || a.ranks > 64) MOE_BAD_INPUT("--ranks " << a.ranks << " must be in [0, 64] (0: every GPU)");
    const int gpus = moe::nccl::usable_gpus();
    if (a.ranks == 0 && gpus == 0)
        throw moe::Error(moe::ErrorKind::NoDevice, "moelab bench " + a.what + ": no GPU found");
    return a.ranks ? a.ranks : gpus;
}

}  // namespace

nlohmann::json read_peer_json(const std::string& path) {
    std::string text, err;
    if (!demos::read_regular_file(path, std::size_t(64) << 20, &text, &err))
        MOE_BAD_INPUT("--peer '" << path << "': " << err);
    try {
        return nlohmann::json::parse(text);
    } catch (const std::exception& e) {
        MOE_BAD_INPUT("--peer '" << path << "': not JSON (" << e.what() << ")");
    }
}

namespace {

int run_alltoall_bench(const NcclBenchArgs& a) {
    // Bad sizes are bad input on any machine, so they are checked before looking for GPUs.
    const std::size_t lo = parse_bytes("--min-bytes", a.min_bytes), hi = parse_bytes("--max-bytes", a.max_bytes);
    if (hi < lo) MOE_BAD_INPUT("--max-bytes " << a.max_bytes << " must be >= --min-bytes " << a.min_bytes);
    // The PyTorch peer (kernels/bench/torch_a2a_peer.py): rows keyed by the same rounded bytes per rank.
    nlohmann::json peer_rows = nlohmann::json::array();
    std::string peer_device;
    if (!a.peer.empty()) {
        nlohmann::json j = read_peer_json(a.peer);
        peer_rows = j.value("rows", nlohmann::json::array());
        peer_device = j.value("device", "") + ", torch " + j.value("torch", "") + ", " +
                      std::to_string(j.value("world_size", 0)) + " ranks";
    }
    auto peer_of = [&](std::size_t bytes) -> const nlohmann::json* {
        for (const auto& p : peer_rows)
            if (p.value("bytes_per_rank", std::size_t(0)) == bytes && p.contains("median_ms")) return &p;
        return nullptr;
    };
    const int G = nccl_ranks(a);
    std::vector<std::size_t> sizes;
    for (std::size_t b = lo; b <= hi; b *= 2) sizes.push_back(b);
    auto points = moe::nccl::bench_alltoall(G, sizes, a.repeats, a.timeout, a.warmup);

    nlohmann::json out = {{"what", "alltoall"},
                          {"ranks", G},
                          {"nccl", moe::nccl::version()},
                          {"warmup", a.warmup},
                          {"iters", a.repeats},
                          {"peer_device", peer_device},
                          {"rows", nlohmann::json::array()}};
    if (!a.json) {
        std::printf(
            "# moelab bench alltoall: %d ranks, NCCL %s, ncclSend/ncclRecv to every rank in one group; "
            "size = bytes each rank sends (itself included), median and p95 of %d iterations after %d warm-up\n",
            G, moe::nccl::version().c_str(), a.repeats, a.warmup);
        if (!peer_device.empty()) std::printf("# PyTorch peer: all_to_all_single on %s\n", peer_device.c_str());
        std::printf("#\n# %12s %12s %10s %10s %8s %8s %7s %10s %8s %7s\n", "size(B)", "count(u32)", "time(us)",
                    "p95(us)", "algbw", "busbw", "#wrong", "torch(us)", "t.busbw", "ratio");
        std::printf("# %12s %12s %10s %10s %8s %8s %7s %10s %8s %7s\n", "", "", "", "", "(GB/s)", "(GB/s)", "", "",
                    "(GB/s)", "busbw");
    }
    double bus_sum = 0, worst_ratio = 1e30;
    std::int64_t wrong = 0;
    for (const auto& p : points) {
        const nlohmann::json* t = peer_of(p.bytes_per_rank);
        double t_ms = t ? (*t)["median_ms"].get<double>() : 0, t_bus = t ? t->value("busbw", 0.0) : 0;
        double ratio = t && t_bus > 0 ? p.busbw / t_bus : 0;
        if (t && p.bytes_per_rank >= (std::size_t(16) << 20)) worst_ratio = std::min(worst_ratio, ratio);
        bus_sum += p.busbw;
        wrong += p.wrong;
        if (!a.json) {
            char ts[32] = "-", tb[32] = "-", rs[32] = "-";
            if (t) {
                std::snprintf(ts, sizeof ts, "%.1f", t_ms * 1e3);
                std::snprintf(tb, sizeof tb, "%.1f", t_bus);
                std::snprintf(rs, sizeof rs, "%.2f", ratio);
            }
            std::printf("  %12zu %12zu %10.1f %10.1f %8.1f %8.1f %7lld %10s %8s %7s\n", p.bytes_per_rank, p.count,
                        p.time_ms_median * 1e3, p.p95 * 1e3, p.algbw, p.busbw, (long long)p.wrong, ts, tb, rs);
            std::fflush(stdout);
        }
        nlohmann::json row = {{"bytes_per_rank", p.bytes_per_rank},
                              {"count", p.count},
                              {"median_ms", p.time_ms_median},
                              {"p95_ms", p.p95},
                              {"min_ms", p.min_ms},
                              {"algbw", p.algbw},
                              {"busbw", p.busbw},
                              {"wrong", p.wrong}};
        if (t) row["torch_ms"] = t_ms, row["torch_busbw"] = t_bus, row["busbw_ratio"] = ratio;
        out["rows"].push_back(row);
    }
    out["avg_busbw"] = points.empty() ? 0.0 : bus_sum / double(points.size());
    if (worst_ratio < 1e29) out["min_ratio_at_16MiB_plus"] = worst_ratio;
    if (!a.json) {
        std::printf("# Out of bounds values : %lld %s\n", (long long)wrong, wrong ? "WRONG" : "OK");
        std::printf("# Avg bus bandwidth    : %.2f GB/s\n", points.empty() ? 0.0 : bus_sum / double(points.size()));
        if (worst_ratio < 1e29)
            std::printf("# busbw vs torch at >= 16 MiB per rank: worst %.1f%% (target >= 95%%)\n", 100 * worst_ratio);
    } else {
        std::cout << out.dump(2) << "\n";
    }
    if (!a.save.empty()) {
        std::ofstream f(a.save);
        if (!f) MOE_BAD_INPUT("--save '" << a.save << "': cannot write the file");
        f << out.dump(2) << "\n";
    }
    if (wrong > 0) throw moe::Error(moe::ErrorKind::Runtime, "bench alltoall: received data did not match its pattern");
    return 0;
}

// The reference's outputs and counts for one spec, computed once and compared with every NCCL run of it.
struct Reference {
    moe::LayerRun run;
    double rms = 0;
};

Reference reference_of(const moe::LayerSpec& s) {
    Reference r;
    moe::LayerRunOptions copt;
    copt.keep_tensors = true;
    moe::cpu::run_layer(s, copt, r.run);
    double sq = 0;
    for (auto v : r.run.tensors.out) sq += double(moe::bf16_to_f32(v)) * moe::bf16_to_f32(v);
    r.rms = r.run.tensors.out.empty() ? 0 : std::sqrt(sq / double(r.run.tensors.out.size()));
    return r;
}

struct Check {
    std::int64_t wrong = 0;
    double max_err = 0;
    bool counts_equal = false, ids_equal = false;
};

// Outputs within 2·eps·(rms + |ref|) as in the GPU tests; kept counts, demand and the kept ids exactly.
Check check_against(const Reference& ref, const moe::nccl::EpRun& run) {
    Check c;
    const auto& want = ref.run.tensors.out;
    for (std::size_t i = 0; i < want.size(); ++i) {
        double w = moe::bf16_to_f32(want[i]), got = i < run.out.size() ? moe::bf16_to_f32(run.out[i]) : 1e30;
        double err = std::fabs(got - w);
        if (!(err <= 2 * moe::kBf16Eps * (ref.rms + std::fabs(w)))) ++c.wrong;
        if (err > c.max_err || err != err) c.max_err = err;
    }
    c.counts_equal = ref.run.counts == run.counts && ref.run.demand == run.demand;
    c.ids_equal = ref.run.tensors.topk_ids == run.topk_ids;
    return c;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

// The dispatch exchange's wall span on one rank: first chunk start to last chunk end (medians of the timeline).
double dispatch_wall_ms(const moe::nccl::EpRun& run, int g, const char* label) {
    double a = 1e30, b = -1e30;
    for (const auto& sp : run.spans)
        if (sp.rank == g && sp.label == label) a = std::min(a, sp.start_ms), b = std::max(b, sp.end_ms);
    return b > a ? b - a : 0.0;
}

nlohmann::json run_json(const moe::nccl::EpRun& run, const char* mode, const Check* chk) {
    nlohmann::json j = {{"mode", mode},
                        {"chunks", run.chunks},
                        {"comm_sms", run.comm_sms},
                        {"transport", run.transport},
                        {"overlap", run.overlap},
                        {"processes", run.processes},
                        {"capacity", run.capacity},
                        {"dropped", run.dropped},
                        {"traffic", run.traffic},
                        {"counts", run.counts},
                        {"demand", run.demand},
                        {"pair_ms", run.pair_ms},
                        {"ranks_detail", nlohmann::json::array()},
                        {"spans", nlohmann::json::array()},
                        {"provenance", "measured-gpu"}};
    for (int g = 0; g < run.ranks; ++g) {
        nlohmann::json rj = {{"rank", g},
                             {"tokens", run.rank_tokens[g]},
                             {"rows_received", run.rows_received[g]},
                             {"bytes_sent", run.bytes_sent[g]},
                             {"layer_median_ms", median(run.rank_layer_ms[g])},
                             {"a2a_dispatch_wall_ms", dispatch_wall_ms(run, g, "a2a dispatch")},
                             {"stages_median_ms", nlohmann::json::object()}};
        for (auto& st : run.rank_stages[g]) rj["stages_median_ms"][st.stage] = median(st.ms);
        j["ranks_detail"].push_back(rj);
    }
    for (const auto& sp : run.spans)
        j["spans"].push_back({{"rank", sp.rank},
                              {"lane", sp.lane},
                              {"label", sp.label},
                              {"chunk", sp.chunk},
                              {"start_ms", sp.start_ms},
                              {"end_ms", sp.end_ms}});
    if (chk)
        j["check"] = {{"wrong", chk->wrong},
                      {"max_abs_err", chk->max_err},
                      {"counts_equal", chk->counts_equal},
                      {"ids_equal", chk->ids_equal}};
    return j;
}

void print_run(const moe::nccl::EpRun& run, const char* mode, const Check* chk, std::size_t outputs) {
    std::printf("#\n# %s: %d chunk%s, %s, %d process%s", mode, run.chunks, run.chunks == 1 ? "" : "s",
                run.overlap ? "compute and comm streams overlapped" : "one stream per rank, in order", run.processes,
                run.processes == 1 ? "" : "es");
    std::printf(", rows over %s", run.transport.c_str());
    if (run.comm_sms > 0) std::printf(", the experts leave %d SMs to the exchanges", run.comm_sms);
    std::printf("\n");
    std::printf("# %4s %7s %8s %9s", "rank", "tokens", "rows in", "sent MB");
    for (auto& n : run.stage_names) std::printf(" %12s", n.c_str());
    std::printf(" %10s\n", "layer");
    for (int g = 0; g < run.ranks; ++g) {
        std::printf("  %4d %7lld %8lld %9.2f", g, (long long)run.rank_tokens[g], (long long)run.rows_received[g],
                    run.bytes_sent[g] / 1e6);
        for (auto& st : run.rank_stages[g]) std::printf(" %12.1f", median(st.ms) * 1e3);
        std::printf(" %10.1f\n", median(run.rank_layer_ms[g]) * 1e3);
    }
    std::printf("# timeline (us from each rank's start, medians; lane: label[chunk] start-end)\n");
    for (int g = 0; g < run.ranks; ++g)
        for (const char* lane : {"compute", "comm"}) {
            std::printf("#   rank %d %-7s", g, lane);
            for (const auto& sp : run.spans)
                if (sp.rank == g && sp.lane == lane) {
                    std::printf(" %s", sp.label.c_str());
                    if (sp.chunk >= 0) std::printf("[%d]", sp.chunk);
                    std::printf(" %.0f-%.0f;", sp.start_ms * 1e3, sp.end_ms * 1e3);
                }
            std::printf("\n");
        }
    if (run.capacity > 0)
        std::printf("# capacity %lld per expert: %lld of %lld assignments dropped\n", (long long)run.capacity,
                    (long long)run.dropped,
                    (long long)std::accumulate(run.demand.begin(), run.demand.end(), std::int64_t(0)));
    if (!run.pair_ms.empty() && run.ranks > 1) {
        std::printf("# per pair (dispatch bytes of the pair sent alone, us):");
        for (int s2 = 0; s2 < run.ranks; ++s2)
            for (int d2 = 0; d2 < run.ranks; ++d2)
                if (s2 != d2) std::printf(" %d->%d %.1f", s2, d2, run.pair_ms[std::size_t(s2) * run.ranks + d2] * 1e3);
        std::printf("\n");
    }
    if (chk)
        std::printf(
            "# check vs the CPU reference: %lld of %zu outputs outside 2·eps·(rms + |ref|), max |err| %.3g; "
            "expert counts and demand %s; kept ids %s\n",
            (long long)chk->wrong, outputs, chk->max_err, chk->counts_equal ? "equal" : "DIFFER",
            chk->ids_equal ? "equal" : "DIFFER");
}

int run_ep_layer_bench(const NcclBenchArgs& a) {
    const int G = nccl_ranks(a);
    moe::LayerSpec s;  // the classroom scenario unless the shape flags say otherwise
    s.tokens = a.tokens > 0 ? a.tokens : 4096;
    s.experts = a.experts > 0 ? a.experts : 16;
    s.top_k = a.top_k > 0 ? a.top_k : 2;
    s.hidden = a.hidden > 0 ? a.hidden : 1024;
    s.ffn = a.ffn > 0 ? a.ffn : 2816;
    s.skew = moe::route::parse_skew(a.skew);
    s.strategy = moe::Strategy::Scan;
    s.seed = a.seed;
    const NcclBenchExtra& x = nccl_bench_extra();
    if (!(x.capacity_factor >= 0 && x.capacity_factor <= 1000))
        MOE_BAD_INPUT("--capacity-factor " << x.capacity_factor << " must be in [0, 1000] (0: dropless)");
    s.capacity_factor = x.capacity_factor;
    if (x.drop_policy == "token")
        s.drop_policy = moe::DropPolicy::TokenOrder;
    else if (x.drop_policy == "probability")
        s.drop_policy = moe::DropPolicy::Probability;
    else
        MOE_BAD_INPUT("--drop-policy '" << x.drop_policy << "': allowed: token, probability");
    if (s.experts % G) MOE_BAD_INPUT("--experts " << s.experts << " must be a multiple of --ranks " << G);
    const int El = s.experts / G;
    const int K = x.chunks > 0 ? x.chunks : std::min(4, El);
    if (K < 1 || K > El) MOE_BAD_INPUT("--chunks " << x.chunks << " must be in [1, " << El << "] (E/G local experts)");
    if (x.comm_sms < -1 || x.comm_sms > 64)
        MOE_BAD_INPUT("--comm-sms " << x.comm_sms << " must be in [0, 64] (SMs left to the exchanges)");
    moe::nccl::EpOptions::Transport transport = moe::nccl::EpOptions::Transport::Auto;
    if (x.transport == "nccl")
        transport = moe::nccl::EpOptions::Transport::Nccl;
    else if (x.transport == "ce")
        transport = moe::nccl::EpOptions::Transport::CopyEngines;
    else if (x.transport != "auto")
        MOE_BAD_INPUT("--transport '" << x.transport << "': allowed: auto, nccl, ce");
    moe::LayerRunOptions opt;
    opt.warmup = a.warmup;
    opt.repeats = a.repeats;
    opt.keep_tensors = !a.no_check;
    const bool root = moe::nccl::world_rank() == 0;

    struct Mode {
        const char* name;
        moe::nccl::EpOptions o;
    };
    std::vector<Mode> modes;
    moe::nccl::EpOptions plain;
    plain.pair_probe = true;
    modes.push_back({"plain", plain});
    moe::nccl::EpOptions ov;
    ov.chunks = K, ov.overlap = true, ov.comm_sms = x.comm_sms, ov.transport = transport;
    modes.push_back({"overlap", ov});
    if (K > 1) {
        moe::nccl::EpOptions one;
        one.chunks = 1, one.overlap = true, one.transport = transport;  // streams without chunks: what chunks add
        modes.push_back({"streams", one});
    }
    std::vector<moe::nccl::EpRun> runs(modes.size());
    for (std::size_t i = 0; i < modes.size(); ++i) moe::nccl::run_ep_layer(s, G, opt, modes[i].o, runs[i]);

    // The raw all-to-all of the same bytes: the largest rank's dispatch bytes (self included), split evenly.
    std::size_t bytes = 0;
    for (int g = 0; g < G; ++g) {
        std::int64_t rows = 0;
        for (int p = 0; p < G; ++p) rows += runs[0].traffic[std::size_t(g) * G + p];
        bytes = std::max(bytes, std::size_t(rows) * std::size_t(s.hidden) * 2);
    }
    std::vector<moe::nccl::A2aPoint> raw;
    if (bytes > 0) raw = moe::nccl::bench_alltoall(G, {bytes}, std::max(a.repeats, 20), a.timeout, a.warmup);

    const bool check = !a.no_check && root;
    Reference ref;
    std::vector<Check> checks(runs.size());
    if (check) {
        ref = reference_of(s);
        for (std::size_t i = 0; i < runs.size(); ++i) checks[i] = check_against(ref, runs[i]);
    }
    const auto& r0 = runs[0];
    nlohmann::json out = {{"what", "ep-layer"},
                          {"ranks", G},
                          {"device", r0.device},
                          {"nccl", r0.nccl_version},
                          {"tokens", s.tokens},
                          {"experts", s.experts},
                          {"top_k", s.top_k},
                          {"hidden", s.hidden},
                          {"ffn", s.ffn},
                          {"skew", a.skew},
                          {"capacity_factor", s.capacity_factor},
                          {"drop_policy", x.drop_policy},
                          {"warmup", a.warmup},
                          {"repeats", a.repeats},
                          {"nccl_blocking", r0.blocking},
                          {"runs", nlohmann::json::array()}};
    // Compatibility with the first version's readers: the plain run's table at the top level.
    out["traffic"] = r0.traffic, out["counts"] = r0.counts;
    if (!a.json)
        std::printf(
            "# moelab bench ep-layer on %s, NCCL %s: T=%lld E=%d k=%d d=%d F=%d skew=%s cf=%g (%s), medians of %d "
            "repeats after %d warm-up (us, CUDA events per rank), %s communicators\n",
            r0.device.c_str(), r0.nccl_version.c_str(), (long long)s.tokens, s.experts, s.top_k, s.hidden, s.ffn,
            a.skew.c_str(), s.capacity_factor, x.drop_policy.c_str(), a.repeats, a.warmup,
            r0.blocking ? "blocking" : "non-blocking");
    double raw_ms = raw.empty() ? 0 : raw[0].time_ms_median;
    for (std::size_t i = 0; i < runs.size(); ++i) {
        if (!a.json) print_run(runs[i], modes[i].name, check ? &checks[i] : nullptr, runs[i].out.size());
        out["runs"].push_back(run_json(runs[i], modes[i].name, check ? &checks[i] : nullptr));
    }
    // Summary: the layer's wall time per mode (slowest rank), and the dispatch exchange against the raw one.
    auto layer_ms = [&](const moe::nccl::EpRun& r) {
        double w = 0;
        for (int g = 0; g < G; ++g) w = std::max(w, median(r.rank_layer_ms[g]));
        return w;
    };
    auto a2a_ms = [&](const moe::nccl::EpRun& r) {
        double w = 0;
        for (int g = 0; g < G; ++g) w = std::max(w, dispatch_wall_ms(r, g, "a2a dispatch"));
        return w;
    };
    nlohmann::json sum = {{"raw_a2a_bytes_per_rank", raw.empty() ? 0 : raw[0].bytes_per_rank},
                          {"raw_a2a_median_ms", raw_ms},
                          {"raw_a2a_wrong", raw.empty() ? 0 : raw[0].wrong}};
    for (std::size_t i = 0; i < runs.size(); ++i) {
        sum[std::string(modes[i].name) + "_layer_ms"] = layer_ms(runs[i]);
        sum[std::string(modes[i].name) + "_a2a_dispatch_ms"] = a2a_ms(runs[i]);
    }
    const double plain_ms = layer_ms(runs[0]), over_ms = layer_ms(runs[1]);
    sum["overlap_speedup"] = over_ms > 0 ? plain_ms / over_ms : 0;
    sum["plain_a2a_dispatch_vs_raw"] = raw_ms > 0 ? a2a_ms(runs[0]) / raw_ms : 0;
    out["summary"] = sum;
    if (!a.json) {
        std::printf("#\n# layer (slowest rank): plain %.1f us, overlap (%d chunks) %.1f us: %.2fx", plain_ms * 1e3, K,
                    over_ms * 1e3, over_ms > 0 ? plain_ms / over_ms : 0.0);
        if (runs.size() > 2) std::printf(", streams without chunks %.1f us", layer_ms(runs[2]) * 1e3);
        std::printf("\n");
        if (raw_ms > 0)
            std::printf(
                "# dispatch all-to-all (plain, slowest rank) %.1f us vs the raw all-to-all of the same %zu bytes per "
                "rank %.1f us: %.2fx (goal <= 1.5x when balanced)\n",
                a2a_ms(runs[0]) * 1e3, raw[0].bytes_per_rank, raw_ms * 1e3, a2a_ms(runs[0]) / raw_ms);
    } else if (root) {
        std::cout << out.dump(2) << "\n";
    }
    if (!a.save.empty() && root) {
        std::ofstream f(a.save);
        if (!f) MOE_BAD_INPUT("--save '" << a.save << "': cannot write the file");
        f << out.dump(2) << "\n";
    }
    if (check)
        for (auto& c : checks)
            if (c.wrong != 0 || !c.counts_equal || !c.ids_equal)
                throw moe::Error(moe::ErrorKind::Runtime,
                                 "bench ep-layer: the NCCL layer disagreed with the CPU reference");
    if (!raw.empty() && raw[0].wrong)
        throw moe::Error(moe::ErrorKind::Runtime, "bench ep-layer: the raw all-to-all's data did not match");
    return 0;
}

// `moelab bench alltoall --latency`: median and p99 per message size (bytes per peer, 2 KB .. 8 MB, the axes of
// MegaScale-Infer's Figure 11), and the utilisation curve Util(msg) = busbw(msg) / busbw at 64 MiB per peer.
int run_latency_bench(const NcclBenchArgs& a) {
    const int G = nccl_ranks(a);
    std::vector<std::size_t> per_peer;
    for (std::size_t b = 2048; b <= (std::size_t(8) << 20); b *= 2) per_peer.push_back(b);
    per_peer.push_back(std::size_t(64) << 20);  // the plateau Util is measured against
    std::vector<std::size_t> sizes;
    for (auto b : per_peer) sizes.push_back(b * G);
    const int iters = std::max(a.repeats, 200);
    auto pts = moe::nccl::bench_alltoall(G, sizes, iters, a.timeout, a.warmup);
    const double peak = pts.empty() ? 0 : pts.back().busbw;
    nlohmann::json out = {{"what", "alltoall-latency"},   {"ranks", G},
                          {"nccl", moe::nccl::version()}, {"iters", iters},
                          {"warmup", a.warmup},           {"peak_busbw", peak},
                          {"provenance", "measured-gpu"}, {"rows", nlohmann::json::array()}};
    if (!a.json) {
        std::printf(
            "# moelab bench alltoall --latency: %d ranks, NCCL %s, %d iterations after %d warm-up; size = bytes each "
            "rank sends to each peer; Util = busbw / busbw at 64 MiB per peer (%.1f GB/s)\n#\n# %10s %10s %10s %10s "
            "%10s %8s %7s\n",
            G, moe::nccl::version().c_str(), iters, a.warmup, peak, "per peer", "median(us)", "p95(us)", "p99(us)",
            "busbw", "Util", "#wrong");
    }
    std::int64_t wrong = 0;
    for (std::size_t i = 0; i < pts.size(); ++i) {
        const auto& p = pts[i];
        const double util = peak > 0 ? p.busbw / peak : 0;
        wrong += p.wrong;
        if (!a.json)
            std::printf("  %10zu %10.1f %10.1f %10.1f %10.1f %8.3f %7lld\n", p.bytes_per_rank / G,
                        p.time_ms_median * 1e3, p.p95 * 1e3, p.p99 * 1e3, p.busbw, util, (long long)p.wrong);
        out["rows"].push_back({{"bytes_per_peer", p.bytes_per_rank / G},
                               {"bytes_per_rank", p.bytes_per_rank},
                               {"median_ms", p.time_ms_median},
                               {"p95_ms", p.p95},
                               {"p99_ms", p.p99},
                               {"min_ms", p.min_ms},
                               {"busbw", p.busbw},
                               {"util", util},
                               {"wrong", p.wrong}});
    }
    if (!a.json)
        std::printf("# Out of bounds values : %lld %s\n", (long long)wrong, wrong ? "WRONG" : "OK");
    else if (moe::nccl::world_rank() == 0)
        std::cout << out.dump(2) << "\n";
    if (!a.save.empty() && moe::nccl::world_rank() == 0) {
        std::ofstream f(a.save);
        if (!f) MOE_BAD_INPUT("--save '" << a.save << "': cannot write the file");
        f << out.dump(2) << "\n";
    }
    if (wrong > 0) throw moe::Error(moe::ErrorKind::Runtime, "bench alltoall: received data did not match its pattern");
    return 0;
}

}  // namespace

NcclBenchExtra& nccl_bench_extra() {
    static NcclBenchExtra x;
    return x;
}

void add_nccl_bench_options(CLI::App& cmd) {
    NcclBenchExtra& x = nccl_bench_extra();
    cmd.add_flag("--latency", x.latency,
                 "alltoall: median and p99 per message size, 2 KB to 8 MB per peer, with Util(msg) (needs >= 200 "
                 "iterations: --repeats below that is raised)");
    cmd.add_option("--chunks", x.chunks,
                   "ep-layer: chunks of local experts for the overlapped run (1..E/G; 0: min(4, E/G))");
    cmd.add_option("--comm-sms", x.comm_sms,
                   "ep-layer: SMs the overlapped run's experts leave free for the NCCL exchanges that run beside them "
                   "(0..64; default: MOELAB_EP_COMM_SMS, else 16)");
    cmd.add_option("--transport", x.transport,
                   "ep-layer: how the overlapped runs move rows: nccl, ce (peer copies on the copy engines, no SMs; "
                   "one process driving every GPU) or auto (ce where it works)")
        ->capture_default_str();
    cmd.add_option("--capacity-factor", x.capacity_factor, "ep-layer: capacity factor (0: dropless)")
        ->capture_default_str();
    cmd.add_option("--drop-policy", x.drop_policy, "ep-layer: token or probability")->capture_default_str();
}

int run_alltoall_latency_bench(const BenchCommon& c) {
    NcclBenchArgs n;
    n.what = "alltoall";
    n.warmup = c.warmup, n.repeats = c.repeats, n.json = c.json, n.save = c.save;
    nccl_bench_extra().latency = true;
    return run_nccl_bench(n);
}

int run_nccl_bench(const NcclBenchArgs& a) {
    if (a.repeats < 1 || a.repeats > 100000) MOE_BAD_INPUT("--repeats " << a.repeats << " must be in [1, 100000]");
    if (a.warmup < 0 || a.warmup > 10000) MOE_BAD_INPUT("--warmup " << a.warmup << " must be in [0, 10000]");
    if (!(a.timeout > 0 && a.timeout <= 3600)) MOE_BAD_INPUT("--timeout " << a.timeout << " must be in (0, 3600]");
    moe::nccl::set_timeout_s(a.timeout);  // also bounds the communicator's setup
    if (a.what == "alltoall") return nccl_bench_extra().latency ? run_latency_bench(a) : run_alltoall_bench(a);
    return run_ep_layer_bench(a);
}

}  // namespace moelab_cli
