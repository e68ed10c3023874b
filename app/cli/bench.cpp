// `moelab bench route|dispatch|experts|combine|layer|all`: checks each GPU stage against the CPU reference, then
// times it; prints an nccl-tests style table with the floor, the % of it reached and the PyTorch peer (--peer).
// `alltoall` and `ep-layer` (the nccl backend) run from bench_nccl.cpp; further subcommands register through
// bench_hooks.hpp (bench_extensions.cpp lists them).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/cli/bench_hooks.hpp"
#include "app/cli/bench_nccl.hpp"
#include "app/cli/commands.hpp"
#include "demos/roofline.hpp"
#include "demos/roofline_saved.hpp"
#include "kernels/api.hpp"
#include "kernels/common/error.hpp"
#if MOELAB_HAVE_CUDA
#include "kernels/bench/bench.hpp"
#include "kernels/cuda/launchers.hpp"
#endif

namespace moelab_cli {

namespace {

struct BenchArgs {
    std::string what = "all";
    std::vector<std::string> shapes = {"all"};
    std::int64_t tokens = 0;
    int hidden = 0, experts = 0, top_k = 0, ffn = 0;
    std::vector<std::string> strategies = {"sort", "atomic", "scan", "nopack"};
    std::vector<std::string> impls = {"auto", "batched", "grouped", "streams", "serial", "nopack"};
    std::string skew = "uniform";
    bool sweep = false, no_check = false, json = false, quiet = false;
    int warmup = 10, repeats = 50;
    std::uint64_t seed = 1;
    std::string save, peer;
    std::string from;    // experts: a saved sweep to summarise instead of timing (any machine)
    NcclBenchArgs nccl;  // alltoall, ep-layer: --ranks, --min-bytes, --max-bytes, --timeout
};

// `bench experts --from FILE`: a sweep saved on a GPU machine (--save), summarised on any machine: per shape and size,
// what auto ran, its time, % of the roofline and ratio to the PyTorch peer, then the line against the targets.
int print_saved_sweep(const std::string& path) {
    const std::vector<demos::ExpertRoofline> set = demos::load_rooflines(path, "--from");
    std::printf("# expert FFN sweep measured on %s (measured-gpu, saved in %s)\n", set.front().recorded.c_str(),
                path.c_str());
    std::printf("# %-9s %6s %10s | %-14s %10s %6s %8s | %10s\n", "shape", "tpe", "roof(us)", "auto ran", "time(us)",
                "%roof", "vs torch", "torch(us)");
    std::vector<demos::TargetPoint> targets;
    const auto& swept = demos::roofline_sweep();  // the targets' sizes (the file may hold the standard shapes' too)
    for (const demos::ExpertRoofline& rl : set)
        for (const demos::RooflinePoint& p : rl.points) {
            const double vs = p.peer_ms > 0 && p.median_ms > 0 ? p.peer_ms / p.median_ms : 0.0;
            char vs_s[16] = "-", torch_s[24] = "-";
            if (vs > 0) {
                std::snprintf(vs_s, sizeof vs_s, "%.2fx", vs);
                std::snprintf(torch_s, sizeof torch_s, "%.1f", p.peer_ms * 1e3);
            }
            const std::string name = rl.shape_name.empty() ? "d=" + std::to_string(rl.shape.hidden) : rl.shape_name;
            std::printf("  %-9s %6.0f %10.1f | %-14s %10.1f %6.1f %8s | %10s\n", name.c_str(), p.tokens_per_expert,
                        p.floor_ms * 1e3, p.impl.c_str(), p.median_ms * 1e3, p.pct_of_roofline(), vs_s, torch_s);
            auto is_swept = [&](int t) { return std::abs(t - p.tokens_per_expert) < 0.5; };
            if (std::none_of(swept.begin(), swept.end(), is_swept)) continue;
            char label[64];
            std::snprintf(label, sizeof label, "%s %.0f", name.c_str(), p.tokens_per_expert);
            targets.push_back({label, p.pct_of_roofline(), vs});
        }
    std::printf("# auto against the targets (PERF.md), at the swept sizes: %s\n", demos::targets_line(targets).c_str());
    return 0;
}

#if MOELAB_HAVE_CUDA
using nlohmann::json;

std::string today_utc() {
    std::time_t now = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    return buf;
}

// PyTorch peer rows (kernels/bench/torch_peer.py): the same shapes, timed the way a PyTorch user writes them.
struct Peer {
    json rows = json::array();
    std::string device;
    // The peer of one of our rows: same stage and shape (and skew for dispatch); for experts, torch._grouped_mm
    // when it ran, else the per-expert loop; for combine and layer, the faster of the peer's variants (index_add_
    // or the gather by the inverse map).
    const json* find(const moe::bench::Row& r, std::string* what) const {
        const json* best = nullptr;
        for (const auto& p : rows) {
            if (p.value("stage", "") != r.stage || p.value("tokens", 0LL) != r.tokens ||
                p.value("hidden", 0) != r.hidden || p.value("experts", 0) != r.experts ||
                p.value("top_k", 0) != r.top_k)
                continue;
            if ((r.stage == "experts" || r.stage == "layer") && p.value("ffn", 0) != r.ffn) continue;
            if (r.stage == "dispatch" && p.value("skew", "uniform") != r.skew) continue;
            if (!p.contains("median_ms") || p["median_ms"].is_null()) continue;
            const bool stronger = (r.stage == "combine" || r.stage == "layer") && best &&
                                  p["median_ms"].get<double>() < (*best)["median_ms"].get<double>();
            if (!best || stronger || (r.stage == "experts" && p.value("variant", "") == "_grouped_mm")) best = &p;
        }
        if (best && what) *what = best->value("variant", "");
        return best;
    }
};

Peer load_peer(const std::string& path) {
    Peer peer;
    if (path.empty()) return peer;
    json j = read_peer_json(path);
    peer.rows = j.value("rows", json::array());
    peer.device = j.value("device", "");
    return peer;
}

std::vector<moe::bench::Shape> resolve_shapes(const BenchArgs& a) {
    const auto& std_shapes = moe::bench::standard_shapes();
    std::vector<moe::bench::Shape> out;
    if (a.tokens > 0 || a.hidden > 0 || a.experts > 0 || a.top_k > 0 || a.ffn > 0) {
        if (a.tokens < 1 || a.hidden < 8 || a.hidden % 8 || a.experts < 1 || a.top_k < 1 || a.top_k > a.experts ||
            a.ffn < 1)
            MOE_BAD_INPUT(
                "a custom shape needs --tokens >= 1, --hidden a multiple of 8, --experts >= 1, "
                "--top-k in [1, experts] and --ffn >= 1");
        out.push_back({"custom", a.tokens, a.hidden, a.experts, a.top_k, a.ffn});
        return out;
    }
    for (const auto& name : a.shapes) {
        if (name == "all") return std_shapes;
        auto it = std::find_if(std_shapes.begin(), std_shapes.end(), [&](auto& s) { return s.name == name; });
        if (it == std_shapes.end()) MOE_BAD_INPUT("--shape '" << name << "': allowed: classroom, S1, S2, S3, all");
        out.push_back(*it);
    }
    return out;
}

void print_header(const moe::bench::Ceilings& c, const Peer& peer) {
    std::printf("# moelab bench on %s (%d SMs, %.0f MB L2), %s\n", c.device.c_str(), c.sms, c.l2_mb,
                today_utc().c_str());
    std::printf(
        "# floors from ceilings measured now: device-to-device copy %.0f GB/s (read + write), read %.0f GB/s "
        "(16-byte loads), bf16 GEMM %.0f TFLOP/s (cuBLAS 8192^3)\n",
        c.copy_gbps, c.read_gbps, c.gemm_tflops);
    if (!c.gemm_clocks.empty())
        std::printf(
            "# the GEMM ceiling ran at %s; a row's note gives the clock and power while it was timed (a math-bound "
            "row that runs for long holds the board at its power limit, and the driver lowers the clock)\n",
            c.gemm_clocks.c_str());
    if (!peer.device.empty()) std::printf("# PyTorch peer measured on %s\n", peer.device.c_str());
    std::printf("#\n# %-8s %-9s %6s %5s %4s %2s %6s %-9s %-14s %10s %10s %8s %8s %7s %10s %8s %7s  %s\n", "stage",
                "shape", "T", "d", "E", "k", "F", "skew", "variant", "time(us)", "p95(us)", "GB/s", "TFLOP/s", "%floor",
                "torch(us)", "speedup", "#wrong", "note");
}

void print_row(const moe::bench::Row& r, const Peer& peer) {
    if (!r.error.empty()) {  // nothing measured: the row says what failed, and the run went on
        std::printf("  %-8s %-9s %6lld %5d %4d %2d %6d %-9s %-14s FAILED: %s\n", r.stage.c_str(), r.shape.c_str(),
                    static_cast<long long>(r.tokens), r.hidden, r.experts, r.top_k, r.ffn, r.skew.c_str(),
                    r.variant.c_str(), r.error.c_str());
        std::fflush(stdout);
        return;
    }
    std::string what;
    const json* p = peer.find(r, &what);
    char torch[32] = "-", speed[32] = "-", wrong[32] = "-";
    if (p) {
        double pm = (*p)["median_ms"].get<double>();
        std::snprintf(torch, sizeof torch, "%.1f", pm * 1e3);
        std::snprintf(speed, sizeof speed, "%.2fx", pm / r.median_ms);
    }
    if (r.wrong >= 0) std::snprintf(wrong, sizeof wrong, "%lld", static_cast<long long>(r.wrong));
    std::string note = r.note;
    if (p) note += (note.empty() ? "" : "; ") + std::string("torch: ") + what;
    std::printf("  %-8s %-9s %6lld %5d %4d %2d %6d %-9s %-14s %10.1f %10.1f %8.0f %8.1f %7.1f %10s %8s %7s  %s\n",
                r.stage.c_str(), r.shape.c_str(), static_cast<long long>(r.tokens), r.hidden, r.experts, r.top_k, r.ffn,
                r.skew.c_str(), r.variant.c_str(), r.median_ms * 1e3, r.p95_ms * 1e3, r.gbps, r.tflops, r.pct_floor,
                torch, speed, wrong, note.c_str());
    std::fflush(stdout);
}

json row_json(const moe::bench::Row& r, const Peer& peer) {
    json j = {{"stage", r.stage},     {"shape", r.shape},         {"variant", r.variant},     {"skew", r.skew},
              {"tokens", r.tokens},   {"hidden", r.hidden},       {"experts", r.experts},     {"top_k", r.top_k},
              {"ffn", r.ffn},         {"median_ms", r.median_ms}, {"p95_ms", r.p95_ms},       {"min_ms", r.min_ms},
              {"repeats", r.repeats}, {"bytes", r.bytes},         {"flops", r.flops},         {"floor_ms", r.floor_ms},
              {"gbps", r.gbps},       {"tflops", r.tflops},       {"pct_floor", r.pct_floor}, {"wrong", r.wrong},
              {"note", r.note},       {"group", r.group}};
    if (!r.error.empty()) {
        j["error"] = r.error;
        return j;
    }
    if (r.sm_mhz > 0) {
        j["sm_mhz"] = r.sm_mhz;
        j["power_w"] = r.power_w;
        j["clocks"] = r.clocks;
    }
    if (r.stage == "experts") {
        j["tokens_per_expert"] = r.tokens_per_expert;
        j["weight_ms"] = r.weight_ms;
        j["math_ms"] = r.math_ms;
        j["bound"] = r.bound;
    }
    std::string what;
    if (const json* p = peer.find(r, &what)) {
        j["torch_ms"] = (*p)["median_ms"];
        j["torch_variant"] = what;
        j["speedup"] = (*p)["median_ms"].get<double>() / r.median_ms;
    }
    return j;
}

// The expert sweep in one table per shape and size: the roofline and what bounds it, the engine's choice (auto),
// the fastest variant, and torch._grouped_mm, with the % of the roofline and the ratio to torch.
void print_experts_summary(const std::vector<moe::bench::Row>& rows, const Peer& peer) {
    std::map<std::pair<std::string, std::int64_t>, std::vector<const moe::bench::Row*>> by_size;
    std::vector<std::pair<std::string, std::int64_t>> order;
    for (const auto& r : rows) {
        if (r.stage != "experts" || r.group != "experts sweep" || !r.error.empty()) continue;
        auto key = std::make_pair(r.shape, r.tokens);
        if (!by_size.count(key)) order.push_back(key);
        by_size[key].push_back(&r);
    }
    if (order.empty()) return;
    std::printf(
        "#\n# expert FFN sweep: roofline = max(weight bytes / read ceiling, FLOPs / GEMM ceiling); %%roof = "
        "roofline / time; vs torch = torch._grouped_mm time / ours; MHz: NVML's mean SM clock while auto's row was "
        "timed (under load the effective clock can be lower: kernels/bench/RESULTS.md); probe: the same work without "
        "the FFN around it, stream = the weight bytes alone in the FFN's two dependent kernels, dense = cuBLAS over "
        "all rows as one expert's; balanced: auto with every expert T·k/E rows (round-robin routing, no expert's last "
        "tile part-empty; FLOP-bound sizes)\n");
    std::printf(
        "# %-9s %6s %6s %10s %-7s | %-16s %10s %6s %8s %5s | %-14s %10s %6s %8s | %10s | %-6s %10s %6s | %-8s %6s\n",
        "shape", "tpe", "T", "roof(us)", "bound", "auto ran", "time(us)", "%roof", "vs torch", "MHz", "best variant",
        "time(us)", "%roof", "vs torch", "torch(us)", "probe", "time(us)", "%roof", "balanced", "%roof");
    std::vector<demos::TargetPoint> targets;  // auto at each size, against PERF.md's targets
    for (const auto& key : order) {
        const auto& v = by_size[key];
        const moe::bench::Row* autorow = nullptr;
        const moe::bench::Row* best = nullptr;
        const moe::bench::Row* probe = nullptr;     // the probe that matches the bound (stream or dense)
        const moe::bench::Row* balanced = nullptr;  // auto with round-robin routing
        for (const auto* r : v) {
            if (r->variant.rfind("probe-", 0) == 0) {
                if (r->variant == (r->bound == "weights" ? "probe-stream" : "probe-dense")) probe = r;
                if (r->variant == "probe-balanced") balanced = r;
                continue;
            }
            if (r->variant.rfind("auto", 0) == 0) autorow = r;
            if (!best || r->median_ms < best->median_ms) best = r;
        }
        if (!best) continue;
        const moe::bench::Row* any = best;
        std::string what;
        const json* p = peer.find(*any, &what);
        const double torch_ms = p ? (*p)["median_ms"].get<double>() : 0.0;
        auto vs = [&](const moe::bench::Row* r) {
            char b[32] = "-";
            if (r && torch_ms > 0) std::snprintf(b, sizeof b, "%.2fx", torch_ms / r->median_ms);
            return std::string(b);
        };
        char torch_s[32] = "-";
        if (torch_ms > 0) std::snprintf(torch_s, sizeof torch_s, "%.1f", torch_ms * 1e3);
        const moe::bench::Row* a = autorow ? autorow : best;
        char mhz[16] = "-";
        if (a->sm_mhz > 0) std::snprintf(mhz, sizeof mhz, "%.0f", a->sm_mhz);
        char probe_s[48] = "-";
        if (probe)
            std::snprintf(probe_s, sizeof probe_s, "%-6s %10.1f %6.1f", probe->variant.c_str() + 6,
                          probe->median_ms * 1e3, probe->pct_floor);
        char balanced_s[40] = "-";
        if (balanced)
            std::snprintf(balanced_s, sizeof balanced_s, "%8.1f %6.1f", balanced->median_ms * 1e3, balanced->pct_floor);
        std::printf(
            "  %-9s %6.0f %6lld %10.1f %-7s | %-16s %10.1f %6.1f %8s %5s | %-14s %10.1f %6.1f %8s | %10s | %-24s | "
            "%s\n",
            any->shape.c_str(), any->tokens_per_expert, static_cast<long long>(any->tokens), any->floor_ms * 1e3,
            any->bound.c_str(), a->variant.c_str(), a->median_ms * 1e3, a->pct_floor, vs(a).c_str(), mhz,
            best->variant.c_str(), best->median_ms * 1e3, best->pct_floor, vs(best).c_str(), torch_s, probe_s,
            balanced_s);
        char label[64];
        std::snprintf(label, sizeof label, "%s %.0f", any->shape.c_str(), any->tokens_per_expert);
        targets.push_back({label, a->pct_floor, torch_ms > 0 ? torch_ms / a->median_ms : 0.0});
    }
    std::printf("# auto against the targets (PERF.md): %s\n", demos::targets_line(targets).c_str());
}

int run_bench(const BenchArgs& a) {
    moe::bench::Options opt;
    const std::vector<std::string> all = {"route", "dispatch", "experts", "combine", "layer"};
    if (a.what == "all")
        opt.stages = all;
    else if (std::find(all.begin(), all.end(), a.what) != all.end())
        opt.stages = {a.what};
    else {
        std::string extra;
        for (const auto& x : bench_extensions()) extra += std::string(", ") + x.name;
        MOE_BAD_INPUT("bench '" << a.what
                                << "': allowed: route, dispatch, experts, combine, layer, all, alltoall, "
                                   "ep-layer"
                                << extra);
    }
    if (a.repeats < 1 || a.repeats > 100000) MOE_BAD_INPUT("--repeats " << a.repeats << " must be in [1, 100000]");
    if (a.warmup < 0 || a.warmup > 10000) MOE_BAD_INPUT("--warmup " << a.warmup << " must be in [0, 10000]");
    opt.shapes = resolve_shapes(a);
    for (auto& s : a.strategies) opt.strategies.push_back(moe::dispatch::parse_strategy(s));
    for (auto& s : a.impls) {
        if (s != "nopack" && !moe::bench::is_tuning_variant(s))
            (void)moe::gpu::parse_experts_impl(s);  // BadInput naming the allowed
        opt.experts_impls.push_back(s);
    }
    (void)moe::route::parse_skew(a.skew);
    opt.skew = a.skew;
    opt.sweep = a.sweep;
    opt.warmup = a.warmup;
    opt.repeats = a.repeats;
    opt.check = !a.no_check;
    opt.seed = a.seed;
    if (!a.quiet) opt.log = [](const std::string& m) { std::fprintf(stderr, "bench: %s\n", m.c_str()); };
    Peer peer = load_peer(a.peer);

    auto ceil = moe::bench::measure_ceilings();
    if (!a.json) print_header(ceil, peer);
    auto rows = moe::bench::run(opt, ceil, [&](const moe::bench::Row& r) {
        if (!a.json) print_row(r, peer);
    });

    json out = {{"device", ceil.device},
                {"date", today_utc()},
                {"ceilings",
                 {{"copy_gbps", ceil.copy_gbps},
                  {"read_gbps", ceil.read_gbps},
                  {"gemm_tflops", ceil.gemm_tflops},
                  {"gemm_sm_mhz", ceil.gemm_mhz},
                  {"gemm_clocks", ceil.gemm_clocks},
                  {"l2_mb", ceil.l2_mb},
                  {"sms", ceil.sms}}},
                {"warmup", a.warmup},
                {"repeats", a.repeats},
                {"peer_device", peer.device},
                {"rows", json::array()}};
    std::int64_t wrong = 0, failed = 0;
    for (auto& r : rows) {
        out["rows"].push_back(row_json(r, peer));
        wrong += std::max<std::int64_t>(r.wrong, 0);
        failed += !r.error.empty();
    }
    if (a.json) std::cout << out.dump(2) << "\n";
    if (!a.save.empty()) {
        std::ofstream f(a.save);
        if (!f) MOE_BAD_INPUT("--save '" << a.save << "': cannot write the file");
        f << out.dump(2) << "\n";
    }
    if (!a.json) print_experts_summary(rows, peer);
    if (!a.json)
        std::printf("# %zu rows, %lld wrong elements in the checks, %lld failed\n", rows.size(), (long long)wrong,
                    (long long)failed);
    std::fflush(stdout);  // the tables before the error on stderr
    if (wrong > 0) throw moe::Error(moe::ErrorKind::Runtime, "bench: a GPU stage disagreed with the CPU reference");
    if (failed > 0)
        throw moe::Error(
            moe::ErrorKind::Runtime,
            "bench: " + std::to_string(failed) + " of " + std::to_string(rows.size()) +
                " rows failed at run time (each says why" + (a.save.empty() ? "" : ", in the saved file too") +
                (std::size_t(failed) == rows.size() ? "); nothing was measured" : "); the others were measured"));
    return 0;
}
#endif

}  // namespace

void add_bench_command(CLI::App& app, Handler* selected) {
    auto args = std::make_shared<BenchArgs>();
    auto* cmd = app.add_subcommand("bench", "Check and time the GPU stages against their floors and PyTorch");
    std::string whats = "route, dispatch, experts, combine, layer, all; alltoall, ep-layer (NCCL)";
    for (const auto& x : bench_extensions()) whats += std::string("; ") + x.name;
    cmd->add_option("what", args->what, whats)->capture_default_str();
    cmd->add_option("--shape", args->shapes,
                    "classroom, S1, S2, S3 or all (classroom T=4096 d=1024 E=16 k=2 F=2816; S1 T=16384 d=4096 E=64 "
                    "k=8 F=1408; S2 T=4096 d=4096 E=8 k=2 F=14336; S3 T=16384 d=7168 E=256 k=8 F=2048)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--tokens", args->tokens, "Custom shape: T");
    cmd->add_option("--hidden", args->hidden, "Custom shape: d");
    cmd->add_option("--experts", args->experts, "Custom shape: E");
    cmd->add_option("--top-k", args->top_k, "Custom shape: k");
    cmd->add_option("--ffn", args->ffn, "Custom shape: F");
    cmd->add_option("--strategy", args->strategies, "Dispatch strategies: sort, atomic, scan, nopack")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--experts-impl", args->impls,
                    "Expert FFN variants: auto, batched, grouped, streams, serial, fused, decode, mid, wgmma, nopack; "
                    "tuning variants: decode-f1|3, mid-t32|64|128, wgmma-t64|128[-n128|256][-f0|1][-e0|1]")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--skew", args->skew, "Routing skew for dispatch/combine/experts: uniform, zipf:S, hot:R")
        ->capture_default_str();
    cmd->add_flag("--sweep", args->sweep,
                  "Also sweep the dispatch strategies over skew × T {256, 4096, 16384}, and the expert FFN over "
                  "tokens per expert {1, 8, 64, 512, 4096} on classroom, S1, S3, each size beside a probe of the "
                  "same work alone (its weights read, or cuBLAS over all rows) and, where the FLOPs bound it, "
                  "auto with every expert T·k/E rows");
    cmd->add_option("--warmup", args->warmup, "Untimed runs first")->capture_default_str();
    cmd->add_option("--repeats", args->repeats, "Timed runs (median and p95 over them)")->capture_default_str();
    cmd->add_flag("--no-check", args->no_check, "Skip the check against the CPU reference (not recommended)");
    cmd->add_option("--seed", args->seed, "Seed of the generated inputs")->capture_default_str();
    cmd->add_flag("--json", args->json, "Print JSON instead of the table");
    cmd->add_option("--save", args->save,
                    "Also write the JSON to FILE (an experts sweep saved so draws anywhere: moelab snapshot --view "
                    "roofline --roofline FILE, or moelab --roofline FILE)");
    cmd->add_option("--peer", args->peer, "PyTorch peer timings (JSON from kernels/bench/torch_peer.py)");
    cmd->add_option("--from", args->from,
                    "experts: summarise a sweep saved with --save (e.g. kernels/bench/runs/experts-sweep-h200.json) "
                    "instead of timing one; no GPU needed");
    cmd->add_flag("--quiet,-q", args->quiet, "No progress on stderr");
    cmd->add_option("--ranks", args->nccl.ranks, "alltoall, ep-layer: GPUs (NCCL ranks); 0 = every visible GPU");
    cmd->add_option("--min-bytes", args->nccl.min_bytes, "alltoall: smallest size per rank (K, M, G suffixes)")
        ->capture_default_str();
    cmd->add_option("--max-bytes", args->nccl.max_bytes, "alltoall: largest size per rank; sizes double in between")
        ->capture_default_str();
    cmd->add_option("--timeout", args->nccl.timeout, "alltoall, ep-layer: seconds an NCCL wait may take")
        ->capture_default_str();
    for (const auto& x : bench_extensions())
        if (x.add_options) x.add_options(*cmd);
    cmd->callback([selected, args] {
        *selected = [args]() -> int {
            if (!args->from.empty()) {
                if (args->what != "experts")
                    MOE_BAD_INPUT("--from reads a saved expert FFN sweep: allowed only with 'bench experts', not '"
                                  << args->what << "'");
                return print_saved_sweep(args->from);
            }
            for (const auto& x : bench_extensions()) {
                if (args->what != x.name) continue;
                BenchCommon c;
                c.what = args->what, c.shapes = args->shapes, c.tokens = args->tokens, c.hidden = args->hidden;
                c.experts = args->experts, c.top_k = args->top_k, c.ffn = args->ffn, c.skew = args->skew;
                c.warmup = args->warmup, c.repeats = args->repeats, c.seed = args->seed, c.sweep = args->sweep;
                c.no_check = args->no_check, c.json = args->json, c.quiet = args->quiet, c.save = args->save;
                c.peer = args->peer;
                return x.run(c);
            }
            if (args->what == "alltoall" || args->what == "ep-layer") {
                NcclBenchArgs n = args->nccl;
                n.what = args->what;
                n.tokens = args->tokens, n.hidden = args->hidden, n.experts = args->experts, n.top_k = args->top_k;
                n.ffn = args->ffn, n.skew = args->skew, n.warmup = args->warmup, n.repeats = args->repeats;
                n.seed = args->seed, n.no_check = args->no_check, n.json = args->json, n.save = args->save;
                n.peer = args->peer;
                return run_nccl_bench(n);
            }
#if MOELAB_HAVE_CUDA
            return run_bench(*args);
#else
            throw moe::Error(moe::ErrorKind::NoDevice, "moelab bench times the cuda backend, which this build lacks: " +
                                                           moe::gpu::unavailable_reason());
#endif
        };
    });
}

}  // namespace moelab_cli
