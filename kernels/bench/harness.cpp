// The benchmark harness's core: ceilings measured at the start, event timing with rotated inputs and graph
// replay, floors, and the loop over shapes and stages. The stages themselves are in stages_*.cpp.
#include "kernels/bench/harness.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "kernels/common/error.hpp"
#include "kernels/common/rng.hpp"

namespace moe::bench {

const std::vector<Shape>& standard_shapes() {
    static const std::vector<Shape> shapes = {
        {"classroom", 4096, 1024, 16, 2, 2816},
        {"S1", 16384, 4096, 64, 8, 1408},
        {"S2", 4096, 4096, 8, 2, 14336},
        {"S3", 16384, 7168, 256, 8, 2048},
    };
    return shapes;
}

const std::vector<int>& sweep_tokens_per_expert() {
    static const std::vector<int> tpe = {1, 8, 64, 512, 4096};
    return tpe;
}

std::vector<Shape> experts_sweep_shapes() {
    std::vector<Shape> out;
    for (const Shape& s : standard_shapes()) {
        if (s.name == "S2") continue;  // 8 experts of F=14336: not part of the sweep
        for (int tpe : sweep_tokens_per_expert()) {
            Shape t = s;
            t.tokens = std::int64_t(tpe) * s.experts / s.top_k;
            out.push_back(t);
        }
    }
    return out;
}

namespace {
// NVML's handle of the current device, found once, for the ceilings and every timed row.
ClockSampler& clock_sampler() {
    static ClockSampler clk;
    return clk;
}
}  // namespace

Ceilings measure_ceilings() {
    Ceilings c;
    auto devs = gpu::devices();
    if (devs.empty()) throw Error(ErrorKind::NoDevice, "moelab bench needs a GPU; " + gpu::unavailable_reason());
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) dev = 0;
    c.device = devs[std::min<int>(dev, int(devs.size()) - 1)].name;
    c.sms = devs[std::min<int>(dev, int(devs.size()) - 1)].sm_count;
    c.l2_mb = double(gpu::l2_bytes()) / 1e6;
    c.copy_gbps = gpu::measure_copy_gbps(std::size_t(1) << 30, 20);
    c.read_gbps = gpu::measure_read_gbps(std::size_t(2) << 30, 20);
    ClockWindow clk(clock_sampler());
    c.gemm_tflops = gpu::measure_gemm_tflops(8192, 20);
    const ClockStats cs = clk.stop();
    c.gemm_mhz = cs.mean_mhz;
    c.gemm_clocks = describe(cs);
    return c;
}

namespace detail {

Timing time_runs(Stream s, int sets, int warmup, int repeats, bool graph, const std::function<void(int)>& body) {
    cudaStream_t st = static_cast<cudaStream_t>(s);
    std::vector<cudaGraphExec_t> execs;
    if (graph) {
        for (int i = 0; i < sets; ++i) body(i);  // lazy set-up (handles, attributes) stays out of the capture
        gpu::synchronize(s);
        for (int i = 0; i < sets && graph; ++i) {
            cudaGraph_t g = nullptr;
            cudaGraphExec_t exec = nullptr;
            bool ok = cudaStreamBeginCapture(st, cudaStreamCaptureModeRelaxed) == cudaSuccess;
            try {
                if (ok) body(i);
            } catch (const Error&) {
                ok = false;
            }
            ok = cudaStreamEndCapture(st, &g) == cudaSuccess && ok;
            ok = ok && cudaGraphInstantiate(&exec, g, 0) == cudaSuccess;
            if (g) cudaGraphDestroy(g);
            if (ok) {
                execs.push_back(exec);
            } else {
                (void)cudaGetLastError();
                graph = false;
            }
        }
        if (!graph) {
            for (auto e : execs) cudaGraphExecDestroy(e);
            execs.clear();
        }
    }
    auto launch = [&](int i) {
        if (graph) {
            if (cudaGraphLaunch(execs[i % sets], st) != cudaSuccess)
                throw Error(ErrorKind::Runtime, "cudaGraphLaunch failed in the benchmark");
        } else {
            body(i % sets);
        }
    };
    for (int i = 0; i < warmup; ++i) launch(i);
    ClockWindow clk(clock_sampler());
    std::vector<gpu::Event> ev(repeats + 1);
    for (auto& e : ev) e = gpu::create_event();
    gpu::record_event(ev[0], s);
    for (int i = 0; i < repeats; ++i) {
        launch(warmup + i);
        gpu::record_event(ev[i + 1], s);
    }
    std::vector<double> ms(repeats);
    for (int i = 0; i < repeats; ++i) ms[i] = gpu::elapsed_ms(ev[i], ev[i + 1]);
    const ClockStats clocks = clk.stop();  // the last run is done: elapsed_ms waited for its event
    for (auto e : ev) gpu::destroy_event(e);
    for (auto e : execs) cudaGraphExecDestroy(e);
    std::sort(ms.begin(), ms.end());
    Timing t;
    t.repeats = repeats;
    t.graph = graph;
    t.median_ms = ms[ms.size() / 2];
    t.p95_ms = ms[std::min<std::size_t>(ms.size() - 1, std::size_t(std::ceil(0.95 * ms.size())) - 1)];
    t.min_ms = ms.front();
    t.clocks = clocks;
    return t;
}

int rotation_sets(double bytes, double l2_bytes, double budget_bytes) {
    int sets = int(std::ceil(3.0 * l2_bytes / std::max(bytes, 1.0)));
    sets = std::max(2, std::min(sets, 32));
    while (sets > 1 && sets * bytes > budget_bytes) --sets;
    return sets;
}

void finish_row(Row& r, const Timing& t, const Ceilings& c) {
    r.median_ms = t.median_ms, r.p95_ms = t.p95_ms, r.min_ms = t.min_ms, r.repeats = t.repeats;
    const double mem_ms = r.bytes / (c.copy_gbps * 1e9) * 1e3;
    const double math_ms = r.flops / (c.gemm_tflops * 1e12) * 1e3;
    if (r.floor_ms <= 0) r.floor_ms = std::max(mem_ms, math_ms);
    r.gbps = r.bytes / (t.median_ms * 1e-3) / 1e9;
    r.tflops = r.flops / (t.median_ms * 1e-3) / 1e12;
    r.pct_floor = 100.0 * r.floor_ms / t.median_ms;
    if (t.graph) r.note += r.note.empty() ? "graph replay" : "; graph replay";
    r.sm_mhz = t.clocks.mean_mhz, r.power_w = t.clocks.power_w, r.clocks = describe(t.clocks);
    if (!r.clocks.empty()) r.note += (r.note.empty() ? "" : "; ") + r.clocks;
}

std::vector<bf16_t> host_slice(std::uint64_t seed, std::uint64_t stream, std::int64_t base, std::int64_t n,
                               float scale) {
    std::vector<bf16_t> v(n);
    unsigned nt = std::max(1u, std::thread::hardware_concurrency());
    std::int64_t step = (n + nt - 1) / nt;
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < nt; ++t) {
        std::int64_t b = t * step, e = std::min(n, b + step);
        if (b >= e) break;
        pool.emplace_back([&, b, e] {
            for (std::int64_t i = b; i < e; ++i) v[i] = rng_bf16(seed, stream, std::uint64_t(base + i), scale);
        });
    }
    for (auto& t : pool) t.join();
    return v;
}

void ShapeState::ensure_weights() {
    const Shape& s = shape;
    if (!w1.size()) {
        w1 = gpu::DeviceBuffer<bf16_t>(std::size_t(s.experts) * 2 * s.ffn * s.hidden, "bench w1");
        w2 = gpu::DeviceBuffer<bf16_t>(std::size_t(s.experts) * s.hidden * s.ffn, "bench w2");
        gpu::make_w1(seed, s.experts, s.ffn, s.hidden, w1.data(), nullptr);
        gpu::make_w2(seed, s.experts, s.hidden, s.ffn, w2.data(), nullptr);
    }
}

void make_routing(ShapeState& st, gpu::DeviceBuffer<std::int32_t>& ids, gpu::DeviceBuffer<float>& w, Stream s) {
    const Shape& sh = st.shape;
    if (!st.logp.size()) {
        st.logp = gpu::DeviceBuffer<float>(sh.experts, "bench logp");
        st.logp.upload(route::log_popularity(route::parse_skew(st.skew), sh.experts));
    }
    gpu::DeviceBuffer<float> logits(std::size_t(sh.tokens) * sh.experts, "bench logits");
    ids = gpu::DeviceBuffer<std::int32_t>(std::size_t(sh.tokens) * sh.top_k, "bench ids");
    w = gpu::DeviceBuffer<float>(std::size_t(sh.tokens) * sh.top_k, "bench weights");
    route::gpu::popularity_logits(st.seed, st.logp.data(), sh.tokens, sh.experts, logits.data(), s);
    route::gpu::softmax_topk(logits.data(), sh.tokens, sh.experts, sh.top_k, true, ids.data(), w.data(), s);
    gpu::synchronize(s);
    if (env_on("MOELAB_BENCH_BALANCED")) round_robin_ids(sh, ids);
}

void round_robin_ids(const Shape& sh, gpu::DeviceBuffer<std::int32_t>& ids) {
    std::vector<std::int32_t> rr(std::size_t(sh.tokens) * sh.top_k);
    for (std::size_t i = 0; i < rr.size(); ++i) rr[i] = std::int32_t(i % std::size_t(sh.experts));
    ids.upload(rr);
    gpu::synchronize(nullptr);  // the copy from pageable memory may still be landing when cudaMemcpy returns
}

bool env_on(const char* name) {
    const char* v = std::getenv(name);
    return v && std::string(v) == "1";
}

Row base_row(const ShapeState& st, const char* stage, const std::string& variant) {
    Row r;
    r.stage = stage;
    r.shape = st.shape.name;
    r.variant = variant;
    r.skew = st.skew;
    r.tokens = st.shape.tokens;
    r.group = st.group;
    r.hidden = st.shape.hidden, r.experts = st.shape.experts, r.top_k = st.shape.top_k, r.ffn = st.shape.ffn;
    return r;
}

bool record_failure(Row r, const Error& e, const Emit& emit) {
    if (e.kind() == ErrorKind::BadInput || e.kind() == ErrorKind::NoDevice || !gpu::device_usable()) return false;
    r.error = e.what();
    r.note = "failed";
    emit(r);
    return true;
}

}  // namespace detail

std::vector<Row> run(const Options& opt, const Ceilings& ceil, const std::function<void(const Row&)>& on_row) {
    using namespace detail;
    std::vector<Row> rows;
    Emit emit = [&](Row r) {
        rows.push_back(r);
        if (on_row) on_row(rows.back());
    };
    auto log = [&](const std::string& m) {
        if (opt.log) opt.log(m);
    };
    auto wants = [&](const char* s) { return std::find(opt.stages.begin(), opt.stages.end(), s) != opt.stages.end(); };
    // A stage that fails at run time leaves a row saying so (record_failure), and the run goes on with the next.
    using Stage = void (*)(ShapeState&, const Options&, const Ceilings&, const Emit&);
    auto stage = [&](ShapeState& st, const char* name, Stage fn, const Options& o, const std::string& what) {
        log(what);
        try {
            fn(st, o, ceil, emit);
        } catch (const Error& e) {
            if (!record_failure(base_row(st, name, "-"), e, emit)) throw;
            log(what + " failed: " + e.what());
        }
    };
    for (const Shape& shape : opt.shapes) {
        ShapeState st;
        st.shape = shape;
        st.seed = opt.seed;
        st.skew = opt.skew;
        for (auto [name, fn] : {std::pair<const char*, Stage>{"route", bench_route},
                                {"dispatch", bench_dispatch},
                                {"experts", bench_experts},
                                {"combine", bench_combine},
                                {"layer", bench_layer}})
            if (wants(name)) stage(st, name, fn, opt, std::string(name) + " " + shape.name);
    }
    if (opt.sweep && wants("experts")) {
        Options o = opt;
        std::unique_ptr<ShapeState> st;  // one per shape: its weights serve every size
        for (const Shape& shape : experts_sweep_shapes()) {
            const int tpe = int(shape.tokens * shape.top_k / shape.experts);
            // decode re-reads an expert's weights once per 64 tokens: past that it is timed only where it is cheap
            o.experts_impls = {"auto"};
            o.probes = o.balanced = true;
            if (tpe <= 64) o.experts_impls.push_back("decode");
            if (tpe <= 8)  // decode's two weight-load flavors side by side (kernels/cuda/experts_decode.cu)
                for (const char* f : {"decode-f1", "decode-f3"}) o.experts_impls.push_back(f);
            if (tpe <= 64)  // mid, with each token tile side by side (kernels/cuda/experts_mid.cu)
                for (const char* m : {"mid-t32", "mid-t64", "mid-t128"}) o.experts_impls.push_back(m);
            if (tpe >= 8)  // wgmma with both token tiles and both weight tiles (kernels/cuda/experts_wgmma.cu)
                for (const char* w :
                     {"wgmma-t64", "wgmma-t128", "wgmma-t64-n128", "wgmma-t128-n128", "wgmma-t64-e0", "wgmma-t128-e0"})
                    o.experts_impls.push_back(w);
            o.experts_impls.insert(o.experts_impls.end(), {"batched", "grouped", "streams"});
            if (tpe >= 512) o.experts_impls.push_back("serial");
            if (!st || st->shape.name != shape.name) {
                st.reset();
                st = std::make_unique<ShapeState>();
                st->seed = opt.seed;
                st->skew = "uniform";
                st->group = "experts sweep";
            }
            st->shape = shape;
            stage(*st, "experts", bench_experts, o,
                  "experts sweep " + shape.name + " tokens/expert=" + std::to_string(tpe));
        }
    }
    if (opt.sweep && wants("dispatch")) {
        for (std::int64_t T : {256, 4096, 16384})
            for (const char* skew : {"uniform", "zipf:1.2", "hot:20"}) {
                ShapeState st;
                st.shape = {"sweep", T, 4096, 64, 8, 1408};
                st.seed = opt.seed;
                st.skew = skew;
                st.group = "dispatch sweep";
                stage(st, "dispatch", bench_dispatch, opt, "dispatch sweep T=" + std::to_string(T) + " " + skew);
            }
    }
    return rows;
}

}  // namespace moe::bench

namespace moe::bench {

Roofline experts_roofline(const Shape& shape, const std::vector<int>& tokens_per_expert, int repeats) {
    Roofline rl;
    rl.ceilings = measure_ceilings();
    rl.shape = shape;
    Options o;
    o.experts_impls = {"auto"};
    o.probes = o.balanced = true;
    o.warmup = 2;
    o.repeats = std::max(1, repeats);
    o.check = true;
    detail::ShapeState st;
    st.shape = shape;
    st.seed = 1;
    st.skew = "uniform";
    st.group = "roofline";
    for (int tpe : tokens_per_expert) {
        if (tpe < 1) MOE_BAD_INPUT("roofline: tokens per expert " << tpe << " must be >= 1");
        st.shape.tokens = std::max<std::int64_t>(1, std::int64_t(tpe) * shape.experts / shape.top_k);
        detail::bench_experts(st, o, rl.ceilings, [&](Row r) {
            if (r.variant.rfind("probe-", 0) == 0) {  // after the FFN's row at the same x: its probes
                const std::string kind = r.bound == "weights" ? "probe-stream" : "probe-dense";
                if (rl.points.empty() || !r.error.empty()) return;
                if (r.variant == kind) rl.points.back().probe = kind.substr(6), rl.points.back().probe_ms = r.median_ms;
                if (r.variant == "probe-balanced") rl.points.back().balanced_ms = r.median_ms;
                return;
            }
            if (!r.error.empty()) throw Error(ErrorKind::Runtime, "roofline: " + r.error);
            RooflinePoint p;
            p.tokens_per_expert = r.tokens_per_expert;
            p.impl = r.variant.rfind("auto:", 0) == 0 ? r.variant.substr(5) : r.variant;
            p.median_ms = r.median_ms, p.p95_ms = r.p95_ms;
            p.weight_ms = r.weight_ms, p.math_ms = r.math_ms, p.floor_ms = r.floor_ms;
            p.wrong = r.wrong;
            p.clocks = r.clocks;
            rl.points.push_back(p);
        });
    }
    return rl;
}

}  // namespace moe::bench
