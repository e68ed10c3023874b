// `moelab bench alltoall` (nccl-tests style: size | count | time | algbw | busbw | #wrong, with the PyTorch peer's
// ratio) and `moelab bench ep-layer` (per-rank stage times of the expert-parallel layer, checked against the CPU).
#include "app/cli/bench_nccl.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <vector>

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

int run_alltoall_bench(const NcclBenchArgs& a) {
    // Bad sizes are bad input on any machine, so they are checked before looking for GPUs.
    const std::size_t lo = parse_bytes("--min-bytes", a.min_bytes), hi = parse_bytes("--max-bytes", a.max_bytes);
    if (hi < lo) MOE_BAD_INPUT("--max-bytes " << a.max_bytes << " must be >= --min-bytes " << a.min_bytes);
    const int G = nccl_ranks(a);
    std::vector<std::size_t> sizes;
    for (std::size_t b = lo; b <= hi; b *= 2) sizes.push_back(b);
    // The PyTorch peer (kernels/bench/torch_a2a_peer.py): rows keyed by the same rounded bytes per rank.
    nlohmann::json peer_rows = nlohmann::json::array();
    std::string peer_device;
    if (!a.peer.empty()) {
        std::ifstream f(a.peer);
        if (!f) MOE_BAD_INPUT("--peer '" << a.peer << "': cannot open the file");
        nlohmann::json j;
        try {
            f >> j;
        } catch (const std::exception& e) {
            MOE_BAD_INPUT("--peer '" << a.peer << "': not JSON (" << e.what() << ")");
        }
        peer_rows = j.value("rows", nlohmann::json::array());
        peer_device = j.value("device", "") + ", torch " + j.value("torch", "") + ", " +
                      std::to_string(j.value("world_size", 0)) + " ranks";
    }
    auto peer_of = [&](std::size_t bytes) -> const nlohmann::json* {
        for (const auto& p : peer_rows)
            if (p.value("bytes_per_rank", std::size_t(0)) == bytes && p.contains("median_ms")) return &p;
        return nullptr;
    };
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
    moe::LayerRunOptions opt;
    opt.warmup = a.warmup;
    opt.repeats = a.repeats;
    opt.keep_tensors = !a.no_check;
    moe::nccl::EpRun run;
    moe::nccl::run_ep_layer(s, G, opt, run);

    // Check: the concatenated outputs against the CPU reference, abs + |ref|·eps as in the GPU tests.
    std::int64_t wrong = -1;
    bool counts_equal = false;
    double max_err = 0;
    if (!a.no_check) {
        moe::LayerRunOptions copt;
        copt.keep_tensors = true;
        moe::LayerRun ref;
        moe::cpu::run_layer(s, copt, ref);
        double sq = 0;
        for (auto v : ref.tensors.out) sq += double(moe::bf16_to_f32(v)) * moe::bf16_to_f32(v);
        const double rms = ref.tensors.out.empty() ? 0 : std::sqrt(sq / double(ref.tensors.out.size()));
        wrong = 0;
        for (std::size_t i = 0; i < ref.tensors.out.size(); ++i) {
            double want = moe::bf16_to_f32(ref.tensors.out[i]), got = moe::bf16_to_f32(run.out[i]);
            double err = std::fabs(got - want);
            if (!(err <= 2 * moe::kBf16Eps * (rms + std::fabs(want)))) ++wrong;
            if (err > max_err || err != err) max_err = err;
        }
        counts_equal = std::equal(ref.counts.begin(), ref.counts.end(), run.counts.begin(), run.counts.end());
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.empty() ? 0.0 : v[v.size() / 2];
    };
    nlohmann::json out = {
        {"what", "ep-layer"},       {"ranks", G},           {"device", run.device},
        {"nccl", run.nccl_version}, {"tokens", s.tokens},   {"experts", s.experts},
        {"top_k", s.top_k},         {"hidden", s.hidden},   {"ffn", s.ffn},
        {"skew", a.skew},           {"warmup", a.warmup},   {"repeats", a.repeats},
        {"traffic", run.traffic},   {"counts", run.counts}, {"ranks_detail", nlohmann::json::array()}};
    if (!a.json) {
        std::printf(
            "# moelab bench ep-layer on %s, NCCL %s: T=%lld E=%d k=%d d=%d F=%d skew=%s, medians of %d repeats "
            "after %d warm-up (us, CUDA events per rank)\n#\n# %4s %7s %8s %9s",
            run.device.c_str(), run.nccl_version.c_str(), (long long)s.tokens, s.experts, s.top_k, s.hidden, s.ffn,
            a.skew.c_str(), a.repeats, a.warmup, "rank", "tokens", "rows in", "sent MB");
        for (auto& n : run.stage_names) std::printf(" %12s", n.c_str());
        std::printf(" %10s\n", "total");
    }
    for (int g = 0; g < G; ++g) {
        nlohmann::json rj = {{"rank", g},
                             {"tokens", run.rank_tokens[g]},
                             {"rows_received", run.rows_received[g]},
                             {"bytes_sent", run.bytes_sent[g]},
                             {"stages_median_ms", nlohmann::json::object()}};
        double total = 0;
        if (!a.json)
            std::printf("  %4d %7lld %8lld %9.2f", g, (long long)run.rank_tokens[g], (long long)run.rows_received[g],
                        run.bytes_sent[g] / 1e6);
        for (auto& st : run.rank_stages[g]) {
            double m = median(st.ms);
            total += m;
            rj["stages_median_ms"][st.stage] = m;
            if (!a.json) std::printf(" %12.1f", m * 1e3);
        }
        if (!a.json) std::printf(" %10.1f\n", total * 1e3);
        out["ranks_detail"].push_back(rj);
    }
    if (!a.no_check) out["check"] = {{"wrong", wrong}, {"max_abs_err", max_err}, {"counts_equal", counts_equal}};
    if (a.json)
        std::cout << out.dump(2) << "\n";
    else if (a.no_check)
        std::printf("# not checked (--no-check)\n");
    else
        std::printf(
            "# check vs the CPU reference: %lld of %zu outputs outside 2·eps·(rms + |ref|), max |err| %.3g; "
            "expert counts %s\n",
            (long long)wrong, run.out.size(), max_err, counts_equal ? "equal" : "DIFFER");
    if (!a.save.empty()) {
        std::ofstream f(a.save);
        if (!f) MOE_BAD_INPUT("--save '" << a.save << "': cannot write the file");
        f << out.dump(2) << "\n";
    }
    if (!a.no_check && (wrong != 0 || !counts_equal))
        throw moe::Error(moe::ErrorKind::Runtime, "bench ep-layer: the NCCL layer disagreed with the CPU reference");
    return 0;
}

}  // namespace

int run_nccl_bench(const NcclBenchArgs& a) {
    if (a.repeats < 1 || a.repeats > 100000) MOE_BAD_INPUT("--repeats " << a.repeats << " must be in [1, 100000]");
    if (a.warmup < 0 || a.warmup > 10000) MOE_BAD_INPUT("--warmup " << a.warmup << " must be in [0, 10000]");
    if (!(a.timeout > 0 && a.timeout <= 3600)) MOE_BAD_INPUT("--timeout " << a.timeout << " must be in (0, 3600]");
    moe::nccl::set_timeout_s(a.timeout);  // also bounds the communicator's setup
    return a.what == "alltoall" ? run_alltoall_bench(a) : run_ep_layer_bench(a);
}

}  // namespace moelab_cli
