// Benchmarks of the matrix-bound stages: the expert FFN (cuBLAS grouped, per-expert streams, our fused GEMM,
// and nopack's gathering GEMM) and the whole layer. Checked on sampled rows against the CPU reference first.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>

#include "kernels/bench/harness.hpp"
#include "kernels/common/rng.hpp"

namespace moe::bench::detail {

namespace {

struct StreamGuard {
    Stream s = gpu::create_stream();
    ~StreamGuard() { gpu::destroy_stream(s); }
};

// Host copies of one expert's weights, made from the RNG (S3's full weights would be 22 GB on the host).
struct HostExpert {
    std::vector<bf16_t> w1, w2;
};
const HostExpert& host_expert(std::map<int, HostExpert>& cache, const Shape& sh, std::uint64_t seed, int e) {
    auto it = cache.find(e);
    if (it != cache.end()) return it->second;
    HostExpert h;
    const std::int64_t n1 = 2LL * sh.ffn * sh.hidden, n2 = std::int64_t(sh.hidden) * sh.ffn;
    h.w1 = host_slice(seed, kStreamW1, e * n1, n1, w1_scale(sh.hidden));
    h.w2 = host_slice(seed, kStreamW2, e * n2, n2, w2_scale(sh.ffn));
    return cache.emplace(e, std::move(h)).first->second;
}

// y rows of `rows` token rows through one expert on the CPU reference.
std::vector<bf16_t> cpu_expert_rows(const Shape& sh, const HostExpert& he, const std::vector<bf16_t>& xr, int n) {
    std::vector<std::int32_t> counts = {n}, offsets = {0, n};
    std::vector<bf16_t> y(std::size_t(n) * sh.hidden);
    experts::ffn(xr.data(), nullptr, nullptr, counts.data(), offsets.data(), 1, sh.hidden, sh.ffn, he.w1.data(),
                 he.w2.data(), y.data(), 0);
    return y;
}

// Elements of got outside 2·eps·(|ref| + rms(ref)), the GPU tests' bf16 tolerance.
std::int64_t count_outside(const std::vector<bf16_t>& got, const std::vector<bf16_t>& want) {
    double s = 0;
    for (auto v : want) s += double(bf16_to_f32(v)) * bf16_to_f32(v);
    const float rms = want.empty() ? 0.f : float(std::sqrt(s / want.size()));
    std::int64_t bad = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        float g = bf16_to_f32(got[i]), r = bf16_to_f32(want[i]);
        if (!(std::fabs(g - r) <= 2 * kBf16Eps * (rms + std::fabs(r)))) ++bad;
    }
    return bad;
}

// Sets an environment variable for one benchmark row ("" leaves it alone), restoring it after: a kernel's tuning
// knob (MOELAB_DECODE_FLAVOR, MOELAB_MID_TILE) timed side by side with the launcher's own choice.
// The value of the dash-separated part of a variant name that starts with `key` ("wgmma-t128-n256", 'n': "256").
std::string name_part(const std::string& name, char key) {
    for (std::size_t p = name.find('-'); p != std::string::npos; p = name.find('-', p + 1))
        if (p + 1 < name.size() && name[p + 1] == key) return name.substr(p + 2, name.find('-', p + 1) - p - 2);
    return "";
}

struct FlavorEnv {
    std::string name, old;
    bool set = false, had = false;
    FlavorEnv(const char* n, const std::string& v) : name(n) {
        if (v.empty()) return;
        if (const char* o = std::getenv(n)) had = true, old = o;
        setenv(n, v.c_str(), 1);
        set = true;
    }
    ~FlavorEnv() {
        if (!set) return;
        if (had)
            setenv(name.c_str(), old.c_str(), 1);
        else
            unsetenv(name.c_str());
    }
};

// MOELAB_BENCH_SMS=N (an experiment's knob): the expert FFN's rows run on at most N SMs (SmBudget: the persistent
// kernels' grids and cuBLAS's SM target), so that its time against the SMs it has can be measured. 0 or unset: all.
int bench_sms() {
    const char* v = std::getenv("MOELAB_BENCH_SMS");
    return v && *v ? std::max(0, std::atoi(v)) : 0;
}

// Times `body` for about half a second of repeats (at least 5, at most opt.repeats), after a 2-run probe.
Timing time_for_half_a_second(Stream s, const Options& opt, bool graph, const std::function<void(int)>& body) {
    const Timing probe = time_runs(s, 1, 0, 2, false, body);
    const int repeats = std::max(5, std::min(opt.repeats, int(500.0 / std::max(probe.median_ms, 1e-3))));
    return time_runs(s, 1, std::min(opt.warmup, 3), repeats, graph, body);
}

// The probes: what this GPU gives the size's work without the FFN around it, in the FFN's shape (opt.probes, the
// sweep: the one that matches the roofline's bound; MOELAB_BENCH_STREAM=1, an experiment's knob: all three). Not
// variants: no result is checked, and the summary does not pick them. One that fails at run time (out of memory for
// dense's h, say) leaves a row saying so, as a variant does.
//   probe-stream:  the weight bytes of as many experts as the size has non-empty ones, gate/up's in one kernel, then
//                  down's in a second one launched programmatically that waits for the first, as the FFN's GEMMs do
//                  (16-byte streaming loads, no arithmetic): the launches, the first bytes' latency, the two tails;
//   probe-stream1: the same bytes in one kernel;
//   probe-dense:   the FFN's two GEMMs through cuBLAS over all rows as one expert's (no SiLU): the FLOPs without
//                  the grouping (no expert's last, partial tile; its weights are one expert's).
struct ProbeCtx {
    ShapeState& st;
    const Options& opt;
    const Ceilings& c;
    Stream s;
    std::size_t nonempty;
    std::int64_t rows;
    const bf16_t* xp;
    bf16_t* y;
    void* ws;
    std::size_t wsb;
    double flops, bytes, weight_ms, math_ms;
};
void probe_rows(const ProbeCtx& p, const Emit& emit) {
    const Shape& sh = p.st.shape;
    const bool weights = p.weight_ms >= p.math_ms, all = env_on("MOELAB_BENCH_STREAM");
    const std::size_t up = p.nonempty * 2 * std::size_t(sh.ffn) * sh.hidden * 2,
                      down = p.nonempty * std::size_t(sh.ffn) * sh.hidden * 2;
    gpu::DeviceBuffer<unsigned> sink(1, "bench probe sink");
    auto one = [&](const char* name, const char* note, const std::function<void(int)>& body, bool gemm) {
        Row r = base_row(p.st, "experts", name);
        try {
            body(0);
            gpu::synchronize(p.s);
            const Timing t = time_for_half_a_second(p.s, p.opt, false, body);
            r.flops = gemm ? p.flops : 0.0;
            r.bytes = gemm ? p.bytes : double(up + down);
            r.tokens_per_expert = double(p.rows) / sh.experts;
            r.weight_ms = p.weight_ms, r.math_ms = p.math_ms, r.floor_ms = std::max(p.weight_ms, p.math_ms);
            r.bound = weights ? "weights" : "math";
            r.note = note;
            finish_row(r, t, p.c);
        } catch (const Error& e) {
            if (!record_failure(r, e, emit)) throw;
            return;
        }
        emit(r);
    };
    auto stream = [&](bool two) {
        return [&, two](int) { gpu::stream_read(p.st.w1.data(), up, p.st.w2.data(), down, two, sink.data(), p.s); };
    };
    if (all) one("probe-stream1", "the weight bytes read in one kernel, no arithmetic", stream(false), false);
    if (all || weights)
        one("probe-stream", "the weight bytes read as the FFN reads them: gate/up's, then down's after it",
            stream(true), false);
    if (all || !weights)
        one(
            "probe-dense", "cuBLAS over all rows as one expert's: the FFN's FLOPs without the grouping, no SiLU",
            [&](int) {
                gpu::dense_gemms(p.xp, p.rows, sh.hidden, sh.ffn, p.st.w1.data(), p.st.w2.data(), p.y, p.ws, p.wsb,
                                 p.s);
            },
            true);
}

}  // namespace

void bench_experts(ShapeState& st, const Options& opt, const Ceilings& c, const Emit& emit) {
    const Shape& sh = st.shape;
    const std::int64_t T = sh.tokens;
    const int E = sh.experts, k = sh.top_k, d = sh.hidden, F = sh.ffn;
    const std::int64_t max_rows = dispatch::max_rows(T, k, E, 1);
    StreamGuard sg;
    st.ensure_weights();
    gpu::DeviceBuffer<std::int32_t> ids;
    gpu::DeviceBuffer<float> w;
    make_routing(st, ids, w, sg.s);
    gpu::DeviceBuffer<bf16_t> x(T * d, "bench x"), xp(max_rows * d, "bench packed x"), y(max_rows * d, "bench y");
    gpu::DeviceBuffer<std::int32_t> counts(E), offsets(E + 1), row_token(max_rows), inv(T * k);
    gpu::make_x(st.seed, T, d, x.data(), sg.s);
    {
        const std::size_t wsb = gpu::dispatch_workspace_bytes(Strategy::Scan, T, k, E);
        gpu::DeviceBuffer<std::uint8_t> ws(wsb);
        gpu::dispatch(Strategy::Scan, x.data(), ids.data(), T, k, E, d, 1, counts.data(), offsets.data(),
                      row_token.data(), inv.data(), xp.data(), ws.data(), wsb, sg.s);
        gpu::synchronize(sg.s);
    }
    auto h_counts = counts.download(), h_offsets = offsets.download(), h_rt = row_token.download();
    const std::int64_t rows = h_offsets[E];
    const std::size_t wsb = gpu::experts_workspace_bytes(max_rows, E, F);
    gpu::DeviceBuffer<std::uint8_t> ws(wsb, "bench experts workspace");

    // Sampled rows for the check: a few rows of the first, middle and last non-empty experts.
    std::vector<int> nonempty;
    for (int e = 0; e < E; ++e)
        if (h_counts[e] > 0) nonempty.push_back(e);
    std::vector<int> sample;
    if (!nonempty.empty())
        for (int e : {nonempty.front(), nonempty[nonempty.size() / 2], nonempty.back()})
            if (std::find(sample.begin(), sample.end(), e) == sample.end()) sample.push_back(e);
    std::map<int, HostExpert> cache;
    std::map<int, std::vector<bf16_t>> want;  // expert → reference y of its first rows
    const int kRows = 4;
    if (opt.check)
        for (int e : sample) {
            const int n = std::min(kRows, h_counts[e]);
            std::vector<bf16_t> xr;
            for (int i = 0; i < n; ++i) {
                auto row = host_slice(st.seed, kStreamX, std::int64_t(h_rt[h_offsets[e] + i]) * d, d, x_scale());
                xr.insert(xr.end(), row.begin(), row.end());
            }
            want[e] = cpu_expert_rows(sh, host_expert(cache, sh, st.seed, e), xr, n);
        }

    // The roofline: every non-empty expert's weights read once at the read ceiling, or the FLOPs at the GEMM
    // ceiling, whichever is longer. bytes (for GB/s) adds the activations read and written.
    const double flops = 2.0 * double(rows) * 3.0 * F * d;
    const double weight_bytes = double(nonempty.size()) * 3.0 * F * d * 2;
    const double bytes = weight_bytes + 2.0 * double(rows) * d * 2;
    const double weight_ms = weight_bytes / (c.read_gbps * 1e9) * 1e3, math_ms = flops / (c.gemm_tflops * 1e12) * 1e3;
    const int sms = bench_sms();
    auto one = [&](const std::string& name) {
        std::optional<gpu::SmBudget> budget;  // only when asked: a caller's own budget stays in force otherwise
        if (sms > 0) budget.emplace(sms);
        const bool gather = name == "nopack";
        // decode-fN: the decode kernels with the weights' load flavor N (MOELAB_DECODE_FLAVOR, experts_decode.cu);
        // mid-tN: the mid kernels with N tokens per tile (MOELAB_MID_TILE, experts_mid.cu)
        const bool flavored = name.size() == 9 && name.rfind("decode-f", 0) == 0;
        // wgmma-tN[-nM][-f0][-e0|1]: the wgmma kernels with N tokens and M weight rows per tile, f0: in two
        // launches, e: output tiles stored from registers (0) or through shared memory (1) (MOELAB_WGMMA_TILE, _BN,
        // _FUSED, _EPI)
        const bool tiled = name.rfind("mid-t", 0) == 0, wg = name.rfind("wgmma-t", 0) == 0;
        FlavorEnv flavor("MOELAB_DECODE_FLAVOR", flavored ? name.substr(8) : "");
        FlavorEnv tile("MOELAB_MID_TILE", tiled ? name.substr(5) : "");
        FlavorEnv wg_tile("MOELAB_WGMMA_TILE", wg ? name_part(name, 't') : "");
        FlavorEnv wg_bn("MOELAB_WGMMA_BN", wg ? name_part(name, 'n') : "");
        FlavorEnv wg_fused("MOELAB_WGMMA_FUSED", wg ? name_part(name, 'f') : "");
        FlavorEnv wg_epi("MOELAB_WGMMA_EPI", wg ? name_part(name, 'e') : "");
        const gpu::ExpertsImpl impl = gather     ? gpu::ExpertsImpl::Auto
                                      : flavored ? gpu::ExpertsImpl::Decode
                                      : tiled    ? gpu::ExpertsImpl::Mid
                                      : wg       ? gpu::ExpertsImpl::Wgmma
                                                 : gpu::parse_experts_impl(name);
        gpu::ExpertsImpl ran = impl;
        auto body = [&](int) {
            // decode, mid and wgmma: the plan stays on the device, as in a graph-captured layer; nopack: auto's pick
            // for gathered rows, from the device plan too
            if (impl == gpu::ExpertsImpl::Decode || impl == gpu::ExpertsImpl::Mid || impl == gpu::ExpertsImpl::Wgmma ||
                gather)
                ran = gpu::experts_ffn_device(impl, gather ? nullptr : xp.data(), x.data(), row_token.data(),
                                              counts.data(), offsets.data(), max_rows, T * k, E, d, F, st.w1.data(),
                                              st.w2.data(), y.data(), ws.data(), wsb, sg.s);
            else
                ran = gpu::experts_ffn(impl, gather ? nullptr : xp.data(), x.data(), row_token.data(), counts.data(),
                                       offsets.data(), h_counts.data(), h_offsets.data(), E, d, F, st.w1.data(),
                                       st.w2.data(), y.data(), ws.data(), wsb, sg.s);
        };
        Row r = base_row(st, "experts", name);
        {
            // One untimed run (the check's, when checking) also says which implementation auto picks.
            if (opt.check) y.poison(sg.s);
            body(0);
            gpu::synchronize(sg.s);
            if (gather)
                r.note = std::string("gathered by ") + gpu::experts_impl_name(ran);
            else if (impl == gpu::ExpertsImpl::Auto)
                r.variant = std::string("auto:") + gpu::experts_impl_name(ran);
            else if (ran != impl)
                r.note = std::string("fell back to ") + gpu::experts_impl_name(ran);
        }
        if (sms > 0) r.note += std::string(r.note.empty() ? "" : "; ") + "on at most " + std::to_string(sms) + " SMs";
        if (opt.check) {
            r.wrong = 0;
            for (auto& [e, ref] : want) {
                std::vector<bf16_t> got(ref.size());
                gpu::copy_d2h(got.data(), y.data() + std::int64_t(h_offsets[e]) * d, got.size() * sizeof(bf16_t));
                r.wrong += count_outside(got, ref);
            }
            r.note += std::string(r.note.empty() ? "" : "; ") + "checked " + std::to_string(want.size()) +
                      " experts × ≤" + std::to_string(kRows) + " rows";
        }
        // Host-side shapes and pageable copies inside: timed as direct launches, not graphs. Repeats shrink for
        // the largest sizes so that one row times about half a second.
        // MOELAB_BENCH_GRAPH=1: the variants that keep the plan on the device (decode, mid, wgmma, nopack) are timed
        // as CUDA graph replays, as a captured layer runs them: the launches' own cost, not the kernels'.
        const bool device_plan = impl == gpu::ExpertsImpl::Decode || impl == gpu::ExpertsImpl::Mid ||
                                 impl == gpu::ExpertsImpl::Wgmma || gather;
        const bool graph = device_plan && env_on("MOELAB_BENCH_GRAPH");
        const Timing t = time_for_half_a_second(sg.s, opt, graph, body);
        r.flops = flops;
        r.bytes = bytes;
        r.tokens_per_expert = double(rows) / E;
        r.weight_ms = weight_ms, r.math_ms = math_ms;
        r.floor_ms = std::max(weight_ms, math_ms);
        r.bound = weight_ms >= math_ms ? "weights" : "math";
        finish_row(r, t, c);
        if (!gather && !flavored && !tiled && !wg && t.median_ms < st.best_experts_ms)
            st.best_experts_ms = t.median_ms, st.best_impl = name;
        if (gather) st.gather_experts_ms = t.median_ms;
        emit(r);
    };
    // A variant that fails at run time (out of GPU memory, a CUDA error) leaves a row saying so; the others still run
    for (const std::string& name : opt.experts_impls) {
        try {
            one(name);
        } catch (const Error& e) {
            if (!record_failure(base_row(st, "experts", name), e, emit)) throw;
        }
    }
    if (opt.probes || env_on("MOELAB_BENCH_STREAM"))
        probe_rows({st, opt, c, sg.s, nonempty.size(), rows, xp.data(), y.data(), ws.data(), wsb, flops, bytes,
                    weight_ms, math_ms},
                   emit);
    // probe-balanced (opt.balanced, math-bound sizes; all sizes with MOELAB_BENCH_STREAM=1): auto's FFN on the same
    // tokens routed round-robin, token t's j-th expert (t·k + j) mod E, so every expert gets T·k/E rows where E divides
    // T·k: the size without random routing's uneven counts, which leave about half the experts a last token tile of a
    // few tokens that streams its weights all the same (kernels/bench/RESULTS.md, twenty-first session). Not checked,
    // as no probe is; its note gives the counts it ran with. Last: it overwrites the plan and the packed rows.
    if ((opt.balanced && math_ms > weight_ms) || env_on("MOELAB_BENCH_STREAM")) {
        Row r = base_row(st, "experts", "probe-balanced");
        try {
            round_robin_ids(sh, ids);
            const std::size_t dwsb = gpu::dispatch_workspace_bytes(Strategy::Scan, T, k, E);
            gpu::DeviceBuffer<std::uint8_t> dws(dwsb);
            gpu::dispatch(Strategy::Scan, x.data(), ids.data(), T, k, E, d, 1, counts.data(), offsets.data(),
                          row_token.data(), inv.data(), xp.data(), dws.data(), dwsb, sg.s);
            gpu::synchronize(sg.s);
            const auto bc = counts.download(), bo = offsets.download();
            gpu::ExpertsImpl ran = gpu::ExpertsImpl::Auto;
            auto body = [&](int) {
                ran = gpu::experts_ffn(gpu::ExpertsImpl::Auto, xp.data(), x.data(), row_token.data(), counts.data(),
                                       offsets.data(), bc.data(), bo.data(), E, d, F, st.w1.data(), st.w2.data(),
                                       y.data(), ws.data(), wsb, sg.s);
            };
            body(0);
            gpu::synchronize(sg.s);
            const Timing t = time_for_half_a_second(sg.s, opt, false, body);
            const auto [lo, hi] = std::minmax_element(bc.begin(), bc.end());
            r.note = std::string("auto (") + gpu::experts_impl_name(ran) + ") routed round-robin: " +
                     (*lo == *hi ? "every expert " + std::to_string(*lo) + " rows"
                                 : std::to_string(*lo) + " to " + std::to_string(*hi) + " rows an expert");
            r.flops = flops, r.bytes = bytes, r.tokens_per_expert = double(rows) / E;
            r.weight_ms = weight_ms, r.math_ms = math_ms, r.floor_ms = std::max(weight_ms, math_ms);
            r.bound = weight_ms >= math_ms ? "weights" : "math";
            finish_row(r, t, c);
            emit(r);
        } catch (const Error& e) {
            if (!record_failure(r, e, emit)) throw;
        }
    }
}

void bench_layer(ShapeState& st, const Options& opt, const Ceilings& c, const Emit& emit) {
    const Shape& sh = st.shape;
    const std::int64_t T = sh.tokens;
    const int E = sh.experts, k = sh.top_k, d = sh.hidden, F = sh.ffn;
    const std::int64_t max_rows = dispatch::max_rows(T, k, E, 1);
    // The faster composition: the best packing dispatch and FFN, or nopack's plan and the FFN gathering x's rows
    // (auto's pick for them), by the two stages' times where this run measured all four; else the packing one (on the
    // H200 wgmma's gathered rows took 1.1-1.8x its packed time from 64 tokens per expert on, far more than the pack
    // saves: kernels/bench/RESULTS.md).
    const bool gathered = st.best_dispatch_ms < 1e29 && st.best_experts_ms < 1e29 && st.nopack_dispatch_ms < 1e29 &&
                          st.gather_experts_ms < 1e29 &&
                          st.nopack_dispatch_ms + st.gather_experts_ms < st.best_dispatch_ms + st.best_experts_ms;
    const Strategy stg = gathered ? Strategy::NoPack : dispatch::parse_strategy(st.best_strategy);
    const gpu::ExpertsImpl impl = gathered ? gpu::ExpertsImpl::Auto : gpu::parse_experts_impl(st.best_impl);
    const std::string variant = gathered ? "nopack+auto" : st.best_strategy + "+" + st.best_impl;
    StreamGuard sg;
    st.ensure_weights();
    if (!st.logp.size()) {
        st.logp = gpu::DeviceBuffer<float>(E, "bench logp");
        st.logp.upload(route::log_popularity(route::parse_skew(st.skew), E));
    }
    if (!st.wg.size()) {
        st.wg = gpu::DeviceBuffer<bf16_t>(std::size_t(E) * d, "bench gate");
        gpu::make_gate(st.seed, E, d, st.wg.data(), sg.s);
    }
    gpu::DeviceBuffer<bf16_t> x(T * d, "bench x"), xp(max_rows * d, "bench packed x"), y(max_rows * d, "bench y"),
        out(T * d, "bench out");
    gpu::DeviceBuffer<float> logits(T * E), w(T * k);
    gpu::DeviceBuffer<std::int32_t> ids(T * k), counts(E), offsets(E + 1), row_token(max_rows), inv(T * k);
    const std::size_t wsb =
        std::max(gpu::dispatch_workspace_bytes(stg, T, k, E), gpu::experts_workspace_bytes(max_rows, E, F));
    gpu::DeviceBuffer<std::uint8_t> ws(wsb, "bench layer workspace");
    gpu::make_x(st.seed, T, d, x.data(), sg.s);
    std::vector<std::int32_t> plan_host(2 * E + 1);
    auto body = [&](int) {
        gpu::gate_route(x.data(), st.wg.data(), st.logp.data(), T, d, E, k, true, logits.data(), ids.data(), w.data(),
                        sg.s);
        gpu::dispatch(stg, x.data(), ids.data(), T, k, E, d, 1, counts.data(), offsets.data(), row_token.data(),
                      inv.data(), gathered ? nullptr : xp.data(), ws.data(), wsb, sg.s);
        if (gathered) {  // from the device plan (a kernel that needs the GEMM shapes on the host copies them)
            gpu::experts_ffn_device(impl, nullptr, x.data(), row_token.data(), counts.data(), offsets.data(), max_rows,
                                    T * k, E, d, F, st.w1.data(), st.w2.data(), y.data(), ws.data(), wsb, sg.s);
            gpu::combine(y.data(), inv.data(), w.data(), T, k, d, out.data(), sg.s);
            return;
        }
        gpu::synchronize(sg.s);  // the GEMM shapes come back to the host, as in the engine
        gpu::copy_d2h(plan_host.data(), counts.data(), sizeof(std::int32_t) * E);
        gpu::copy_d2h(plan_host.data() + E, offsets.data(), sizeof(std::int32_t) * (E + 1));
        gpu::experts_ffn(impl, xp.data(), x.data(), row_token.data(), counts.data(), offsets.data(), plan_host.data(),
                         plan_host.data() + E, E, d, F, st.w1.data(), st.w2.data(), y.data(), ws.data(), wsb, sg.s);
        gpu::combine(y.data(), inv.data(), w.data(), T, k, d, out.data(), sg.s);
    };
    Row r = base_row(st, "layer", variant);
    r.skew = "gate";
    if (opt.check) {
        out.poison(sg.s);
        body(0);
        gpu::synchronize(sg.s);
        // Two sampled tokens through the CPU reference end to end: gate, top-k, k expert FFNs, combine.
        auto wg = host_slice(st.seed, kStreamGate, 0, std::int64_t(E) * d, gate_scale(d));
        auto logp = route::log_popularity(route::parse_skew(st.skew), E);
        std::map<int, HostExpert> cache;
        r.wrong = 0;
        int checked = 0;
        for (std::int64_t t : {std::int64_t(0), T - 1}) {
            auto xr = host_slice(st.seed, kStreamX, t * d, d, x_scale());
            std::vector<float> lg(E), wt(k);
            std::vector<std::int32_t> id(k), inv_t(k);
            route::gate_logits(xr.data(), wg.data(), logp.data(), 1, d, E, lg.data());
            route::softmax_topk(lg.data(), 1, E, k, true, id.data(), wt.data());
            std::vector<std::int32_t> gid(k);
            gpu::copy_d2h(gid.data(), ids.data() + t * k, sizeof(std::int32_t) * k);
            if (gid != id) continue;  // a near-tie picked differently: not comparable
            std::vector<bf16_t> yr;
            for (int j = 0; j < k; ++j) {
                auto yj = cpu_expert_rows(sh, host_expert(cache, sh, st.seed, id[j]), xr, 1);
                yr.insert(yr.end(), yj.begin(), yj.end());
                inv_t[j] = j;
            }
            std::vector<bf16_t> want(d), got(d);
            combine::gather(yr.data(), inv_t.data(), wt.data(), 1, k, d, want.data());
            gpu::copy_d2h(got.data(), out.data() + t * d, sizeof(bf16_t) * d);
            r.wrong += count_outside(got, want);
            ++checked;
        }
        r.note = "checked " + std::to_string(checked) + " tokens end to end";
    }
    Timing t = time_runs(sg.s, 1, std::min(opt.warmup, 3), opt.repeats, false, body);
    // Floor: each stage at its own floor (route and experts on the GEMM rate, dispatch and combine on copies).
    const double route_ms =
        std::max((double(T) * d * 2) / (c.copy_gbps * 1e9), 2.0 * T * E * d / (c.gemm_tflops * 1e12));
    const double move_ms =
        (double(T) * d * 2 * (1 + k) + double(T) * k * d * 2 + double(T) * d * 2) / (c.copy_gbps * 1e9);
    const double ffn_ms = 2.0 * double(T) * k * 3.0 * F * d / (c.gemm_tflops * 1e12);
    r.floor_ms = (route_ms + move_ms + ffn_ms) * 1e3;
    r.flops = 2.0 * T * E * d + 2.0 * double(T) * k * 3.0 * F * d;
    r.bytes = double(T) * d * 2 * (2 + 2 * k);
    finish_row(r, t, c);
    emit(r);
}

}  // namespace moe::bench::detail

namespace moe::bench {

bool is_tuning_variant(const std::string& s) {
    if (s == "decode-f1" || s == "decode-f3" || s == "mid-t32" || s == "mid-t64" || s == "mid-t128") return true;
    if (s.rfind("wgmma-", 0) != 0) return false;
    bool tile = false;
    for (std::size_t p = 5; p < s.size();) {  // at a '-'
        const std::size_t q = s.find('-', p + 1);
        const std::string part = s.substr(p + 1, q == std::string::npos ? std::string::npos : q - p - 1);
        if (part == "t64" || part == "t128")
            tile = true;
        else if (part != "n128" && part != "n256" && part != "f0" && part != "f1" && part != "e0" && part != "e1")
            return false;
        p = q == std::string::npos ? s.size() : q;
    }
    return tile;
}

}  // namespace moe::bench
