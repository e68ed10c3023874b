// Benchmarks of the memory-bound stages: route (gate GEMM + fused softmax/top-k), dispatch (each strategy) and
// combine. Each is checked against the CPU reference on the same inputs before it is timed.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/bench/harness.hpp"
#include "kernels/common/rng.hpp"

namespace moe::bench::detail {

namespace {

struct StreamGuard {
    Stream s = gpu::create_stream();
    ~StreamGuard() { gpu::destroy_stream(s); }
};

double budget_bytes() { return 0.4 * double(gpu::free_memory_bytes(0)); }

void ensure_logp(ShapeState& st) {
    if (!st.logp.size()) {
        st.logp = gpu::DeviceBuffer<float>(st.shape.experts, "bench logp");
        st.logp.upload(route::log_popularity(route::parse_skew(st.skew), st.shape.experts));
    }
}

template <class T>
void copy_set(gpu::DeviceBuffer<T>& dst, const gpu::DeviceBuffer<T>& src, Stream s) {
    gpu::copy_d2d(dst.data(), src.data(), src.bytes(), s);
}

}  // namespace

void bench_route(ShapeState& st, const Options& opt, const Ceilings& c, const Emit& emit) {
    const Shape& sh = st.shape;
    const std::int64_t T = sh.tokens;
    const int E = sh.experts, k = sh.top_k, d = sh.hidden;
    StreamGuard sg;
    ensure_logp(st);
    if (!st.wg.size()) {
        st.wg = gpu::DeviceBuffer<bf16_t>(std::size_t(E) * d, "bench gate");
        gpu::make_gate(st.seed, E, d, st.wg.data(), sg.s);
    }
    const double set_bytes = double(T) * d * 2 + double(T) * E * 4 + double(T) * k * 8;
    const int sets = rotation_sets(set_bytes, c.l2_mb * 1e6, budget_bytes());
    std::vector<gpu::DeviceBuffer<bf16_t>> x(sets);
    std::vector<gpu::DeviceBuffer<float>> logits(sets), w(sets);
    std::vector<gpu::DeviceBuffer<std::int32_t>> ids(sets);
    for (int i = 0; i < sets; ++i) {
        x[i] = gpu::DeviceBuffer<bf16_t>(T * d, "bench x");
        logits[i] = gpu::DeviceBuffer<float>(T * E, "bench logits");
        w[i] = gpu::DeviceBuffer<float>(T * k, "bench weights");
        ids[i] = gpu::DeviceBuffer<std::int32_t>(T * k, "bench ids");
        if (i == 0)
            gpu::make_x(st.seed, T, d, x[0].data(), sg.s);
        else
            copy_set(x[i], x[0], sg.s);
    }
    auto body = [&](int i) {
        gpu::gate_route(x[i].data(), st.wg.data(), st.logp.data(), T, d, E, k, true, logits[i].data(), ids[i].data(),
                        w[i].data(), sg.s);
    };
    Row r = base_row(st, "route", "cublas+topk");
    r.skew = st.skew;
    if (opt.check) {
        logits[0].poison(sg.s), ids[0].poison(sg.s), w[0].poison(sg.s);
        body(0);
        gpu::synchronize(sg.s);
        auto gl = logits[0].download(), gw = w[0].download();
        auto gi = ids[0].download();
        // Gate logits of sampled tokens against the CPU's fp32 dot products.
        auto wg = host_slice(st.seed, kStreamGate, 0, std::int64_t(E) * d, gate_scale(d));
        auto logp = route::log_popularity(route::parse_skew(st.skew), E);
        r.wrong = 0;
        const std::int64_t step = std::max<std::int64_t>(1, T / 64);
        std::vector<float> ref(E);
        for (std::int64_t t = 0; t < T; t += step) {
            auto xr = host_slice(st.seed, kStreamX, t * d, d, x_scale());
            route::gate_logits(xr.data(), wg.data(), logp.data(), 1, d, E, ref.data());
            for (int e = 0; e < E; ++e)
                if (!(std::fabs(gl[t * E + e] - ref[e]) <= 1e-4f + 1e-4f * std::fabs(ref[e]))) ++r.wrong;
        }
        // Top-k of the GPU's logits: the reference's picks exactly, its weights to fp32 rounding.
        std::vector<std::int32_t> rid(gi.size());
        std::vector<float> rw(gi.size());
        route::softmax_topk(gl.data(), T, E, k, true, rid.data(), rw.data());
        for (std::size_t i = 0; i < rid.size(); ++i)
            if (gi[i] != rid[i] || !(std::fabs(gw[i] - rw[i]) <= 1e-7f + 1e-5f * std::fabs(rw[i]))) ++r.wrong;
    }
    Timing t = time_runs(sg.s, sets, opt.warmup, opt.repeats, true, body);
    r.bytes = double(T) * d * 2 + double(E) * d * 2 + double(T) * E * 4 + double(T) * k * 8;
    r.flops = 2.0 * T * E * d;
    finish_row(r, t, c);
    emit(r);
}

namespace {

// Wrong elements of a GPU plan and pack against the CPU's: exact for the stable strategies, sets per expert for
// atomic; packed rows against x of their row_token.
std::int64_t check_dispatch(Strategy stg, std::int64_t T, int k, int E, int d, const std::vector<std::int32_t>& ids,
                            const std::vector<bf16_t>& hx, const std::vector<std::int32_t>& counts,
                            const std::vector<std::int32_t>& offsets, const std::vector<std::int32_t>& row_token,
                            const std::vector<std::int32_t>& inv, std::int64_t rows,
                            const std::vector<std::int32_t>& g_counts, const std::vector<std::int32_t>& g_offsets,
                            const std::vector<std::int32_t>& g_rt, const std::vector<std::int32_t>& g_inv,
                            const std::vector<bf16_t>& g_xp) {
    std::int64_t wrong = 0;
    for (int e = 0; e < E; ++e) wrong += g_counts[e] != counts[e];
    for (int e = 0; e <= E; ++e) wrong += g_offsets[e] != offsets[e];
    if (wrong) return wrong;
    if (stg == Strategy::Atomic) {
        for (int e = 0; e < E; ++e) {
            std::vector<std::int32_t> a(g_rt.begin() + offsets[e], g_rt.begin() + offsets[e] + counts[e]);
            std::sort(a.begin(), a.end());
            for (int i = 0; i < counts[e]; ++i) wrong += a[i] != row_token[offsets[e] + i];
        }
        for (std::size_t a = 0; a < ids.size(); ++a)
            if (ids[a] >= 0 ? (g_inv[a] < 0 || g_rt[g_inv[a]] != std::int32_t(a / k)) : g_inv[a] != -1) ++wrong;
    } else {
        for (std::int64_t r = 0; r < rows; ++r) wrong += g_rt[r] != row_token[r];
        for (std::size_t a = 0; a < inv.size(); ++a) wrong += g_inv[a] != inv[a];
    }
    if (stg == Strategy::NoPack || wrong) return wrong;
    std::vector<bf16_t> zero(d, 0);
    for (std::int64_t r = 0; r < rows; ++r) {
        const bf16_t* src = g_rt[r] < 0 ? zero.data() : hx.data() + std::int64_t(g_rt[r]) * d;
        if (std::memcmp(g_xp.data() + r * d, src, sizeof(bf16_t) * d) != 0) ++wrong;
    }
    return wrong;
}

}  // namespace

void bench_dispatch(ShapeState& st, const Options& opt, const Ceilings& c, const Emit& emit) {
    const Shape& sh = st.shape;
    const std::int64_t T = sh.tokens;
    const int E = sh.experts, k = sh.top_k, d = sh.hidden, align = 1;
    const std::int64_t max_rows = dispatch::max_rows(T, k, E, align);
    StreamGuard sg;
    gpu::DeviceBuffer<std::int32_t> ids;
    gpu::DeviceBuffer<float> w;
    make_routing(st, ids, w, sg.s);
    const double set_bytes = double(T) * d * 2 * (1 + k);
    const int sets = rotation_sets(set_bytes, c.l2_mb * 1e6, budget_bytes());
    std::vector<gpu::DeviceBuffer<bf16_t>> x(sets), xp(sets);
    for (int i = 0; i < sets; ++i) {
        x[i] = gpu::DeviceBuffer<bf16_t>(T * d, "bench x");
        xp[i] = gpu::DeviceBuffer<bf16_t>(max_rows * d, "bench packed x");
        if (i == 0)
            gpu::make_x(st.seed, T, d, x[0].data(), sg.s);
        else
            copy_set(x[i], x[0], sg.s);
    }
    gpu::DeviceBuffer<std::int32_t> counts(E), offsets(E + 1), row_token(max_rows), inv(T * k);

    // The reference plan of these ids, and x on the host, for the checks.
    std::vector<std::int32_t> h_ids, h_counts(E), h_offsets(E + 1), h_rt(max_rows, -1), h_inv(T * k);
    std::vector<bf16_t> hx;
    std::int64_t rows = 0;
    if (opt.check) {
        h_ids = ids.download();
        rows = dispatch::plan(h_ids.data(), T, k, E, align, h_counts.data(), h_offsets.data(), h_rt.data(),
                              h_inv.data());
        hx.resize(std::size_t(T) * d);
        route::make_x(st.seed, T, d, hx.data());
    }
    for (Strategy stg : opt.strategies) {
        const bool pack = stg != Strategy::NoPack;
        const std::size_t wsb = gpu::dispatch_workspace_bytes(stg, T, k, E);
        gpu::DeviceBuffer<std::uint8_t> ws(wsb, "bench dispatch workspace");
        auto body = [&](int i) {
            gpu::dispatch(stg, x[i].data(), ids.data(), T, k, E, d, align, counts.data(), offsets.data(),
                          row_token.data(), inv.data(), pack ? xp[i].data() : nullptr, ws.data(), wsb, sg.s);
        };
        Row r = base_row(st, "dispatch", dispatch::strategy_name(stg));
        if (opt.check) {
            counts.poison(sg.s), offsets.poison(sg.s), row_token.poison(sg.s), inv.poison(sg.s);
            if (pack) xp[0].poison(sg.s);
            body(0);
            gpu::synchronize(sg.s);
            r.wrong = check_dispatch(stg, T, k, E, d, h_ids, hx, h_counts, h_offsets, h_rt, h_inv, rows,
                                     counts.download(), offsets.download(), row_token.download(), inv.download(),
                                     pack ? xp[0].download(std::size_t(rows) * d) : std::vector<bf16_t>{});
        }
        Timing t = time_runs(sg.s, sets, opt.warmup, opt.repeats, true, body);
        if (pack) {
            r.bytes = double(T) * d * 2 * (1 + k);  // read each token once, write k rows
        } else {
            r.bytes = double(T) * k * 8 + double(max_rows) * 4;  // ids in, inv and row_token out: the plan only
            r.note = "plan only; the expert GEMM gathers";
        }
        finish_row(r, t, c);
        if (pack && t.median_ms < st.best_dispatch_ms) st.best_dispatch_ms = t.median_ms, st.best_strategy = r.variant;
        if (!pack) st.nopack_dispatch_ms = t.median_ms;
        emit(r);
    }
}

void bench_combine(ShapeState& st, const Options& opt, const Ceilings& c, const Emit& emit) {
    const Shape& sh = st.shape;
    const std::int64_t T = sh.tokens;
    const int E = sh.experts, k = sh.top_k, d = sh.hidden;
    const std::int64_t max_rows = dispatch::max_rows(T, k, E, 1);
    StreamGuard sg;
    gpu::DeviceBuffer<std::int32_t> ids;
    gpu::DeviceBuffer<float> w;
    make_routing(st, ids, w, sg.s);
    gpu::DeviceBuffer<std::int32_t> counts(E), offsets(E + 1), row_token(max_rows), inv(T * k);
    {
        const std::size_t wsb = gpu::dispatch_workspace_bytes(Strategy::NoPack, T, k, E);
        gpu::DeviceBuffer<std::uint8_t> ws(wsb);
        gpu::dispatch(Strategy::NoPack, nullptr, ids.data(), T, k, E, d, 1, counts.data(), offsets.data(),
                      row_token.data(), inv.data(), nullptr, ws.data(), wsb, sg.s);
    }
    const std::int64_t rows = offsets.download()[E];
    const double set_bytes = double(rows) * d * 2 + double(T) * d * 2;
    const int sets = rotation_sets(set_bytes, c.l2_mb * 1e6, budget_bytes());
    std::vector<gpu::DeviceBuffer<bf16_t>> y(sets), out(sets);
    for (int i = 0; i < sets; ++i) {
        y[i] = gpu::DeviceBuffer<bf16_t>(rows * d, "bench expert outputs");
        out[i] = gpu::DeviceBuffer<bf16_t>(T * d, "bench combine output");
        gpu::make_bf16(st.seed + i, 77, rows * d, 2.0f, y[i].data(), sg.s);  // fresh random rows, never zeros
    }
    auto body = [&](int i) { gpu::combine(y[i].data(), inv.data(), w.data(), T, k, d, out[i].data(), sg.s); };
    Row r = base_row(st, "combine", "gather");
    if (opt.check) {
        out[0].poison(sg.s);
        body(0);
        gpu::synchronize(sg.s);
        auto hy = y[0].download();
        auto hinv = inv.download();
        auto hw = w.download();
        std::vector<bf16_t> want(std::size_t(T) * d);
        combine::gather(hy.data(), hinv.data(), hw.data(), T, k, d, want.data());
        auto got = out[0].download();
        r.wrong = 0;
        for (std::size_t i = 0; i < want.size(); ++i) r.wrong += got[i] != want[i];  // bit-equal by design
    }
    Timing t = time_runs(sg.s, sets, opt.warmup, opt.repeats, true, body);
    r.bytes = double(T) * k * d * 2 + double(T) * d * 2;  // read T·k rows, write T
    finish_row(r, t, c);
    emit(r);
}

}  // namespace moe::bench::detail
