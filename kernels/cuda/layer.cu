// The cuda backend's whole-layer run: route → capacity → dispatch → experts → combine on one GPU, each stage
// timed with CUDA events. Checks that the layer fits in free memory before allocating anything large.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "kernels/api.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/counting.cuh"
#include "kernels/cuda/launchers.hpp"

namespace moe::gpu {

namespace {

std::string gib(double b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024.0 * 1024.0));
    return buf;
}

struct StreamGuard {
    Stream s = create_stream();
    ~StreamGuard() { destroy_stream(s); }
};

struct Events {
    std::vector<Event> ev;
    explicit Events(int n) {
        for (int i = 0; i < n; ++i) ev.push_back(create_event());
    }
    ~Events() {
        for (Event e : ev) destroy_event(e);
    }
};

void check_spec(const LayerSpec& s) {
    if (s.tokens < 1) MOE_BAD_INPUT("tokens " << s.tokens << " must be >= 1");
    if (s.experts < 1 || s.experts > counting::kMaxExperts)
        MOE_BAD_INPUT("experts " << s.experts << " must be in [1, " << counting::kMaxExperts << "] on the cuda backend");
    if (s.top_k < 1 || s.top_k > s.experts) MOE_BAD_INPUT("top-k " << s.top_k << " must be in [1, " << s.experts << "]");
    if (s.hidden < 1 || s.ffn < 1) MOE_BAD_INPUT("hidden and ffn must be >= 1");
    if (s.align < 1) MOE_BAD_INPUT("align " << s.align << " must be >= 1");
    if (dispatch::max_rows(s.tokens, s.top_k, s.experts, s.align) >= (std::int64_t(1) << 31))
        MOE_BAD_INPUT("tokens·top-k + experts·(align−1) must stay below 2^31 on the cuda backend");
}

}  // namespace

void run_layer(const LayerSpec& s, const LayerRunOptions& opt, LayerRun& run) {
    auto devs = devices();
    if (devs.empty()) throw Error(ErrorKind::NoDevice, "the cuda backend needs a GPU; " + unavailable_reason());
    check_spec(s);
    int dev = 0;
    MOE_CUDA_CHECK(cudaGetDevice(&dev));
    const std::int64_t T = s.tokens;
    const int E = s.experts, k = s.top_k, d = s.hidden, F = s.ffn;
    const bool pack = s.strategy != Strategy::NoPack;
    const std::int64_t max_rows = dispatch::max_rows(T, k, E, s.align);
    run.backend = "cuda";
    run.device = devs[std::min<int>(dev, int(devs.size()) - 1)].name;

    // Fit first: the layer's tensors plus the largest stage workspace, with headroom for cuBLAS.
    std::size_t ws_bytes = std::max(capacity_workspace_bytes(T, k, E), dispatch_workspace_bytes(s.strategy, T, k, E));
    if (opt.run_experts) ws_bytes = std::max(ws_bytes, experts_workspace_bytes(max_rows, E, F));
    const std::size_t need = layer_bytes(s, opt.run_experts) + ws_bytes + (std::size_t(256) << 20);
    const std::size_t free_b = free_memory_bytes(dev);
    if (need > free_b) {
        std::ostringstream os;
        os << "the layer needs about " << need << " bytes (" << gib(double(need)) << ") on " << run.device << " but "
           << free_b << " bytes (" << gib(double(free_b)) << ") are free; lower --tokens, --hidden, --ffn or --experts";
        throw Error(ErrorKind::OutOfMemory, os.str());
    }

    auto progress = [&](float f, const char* what) {
        if (opt.progress) opt.progress(f, what);
        if (opt.cancel && opt.cancel->load()) throw Error(ErrorKind::Runtime, "run cancelled");
    };
    progress(0.0f, "generating inputs");
    StreamGuard sg;
    const Stream st = sg.s;
    DeviceBuffer<bf16_t> x(T * d, "x"), wg, w1, w2, xp, y, out;
    DeviceBuffer<float> logp(E, "log popularity"), logits(T * E, "logits"), w(T * k, "top-k weights");
    DeviceBuffer<std::int32_t> ids(T * k, "top-k ids"), demand(E, "demand"), counts(E, "counts"),
        offsets(E + 1, "offsets"), row_token(max_rows, "row_token"), inv(T * k, "inverse map");
    DeviceBuffer<std::uint8_t> ws(ws_bytes, "stage workspace");
    if (s.router == Router::Gate) wg = DeviceBuffer<bf16_t>(std::size_t(E) * d, "gate weights");
    if (pack) xp = DeviceBuffer<bf16_t>(max_rows * d, "packed x");
    if (opt.run_experts) {
        w1 = DeviceBuffer<bf16_t>(std::size_t(E) * 2 * F * d, "expert w1");
        w2 = DeviceBuffer<bf16_t>(std::size_t(E) * d * F, "expert w2");
        y = DeviceBuffer<bf16_t>(max_rows * d, "expert outputs");
        out = DeviceBuffer<bf16_t>(T * d, "combine output");
    }
    make_x(s.seed, T, d, x.data(), st);
    if (s.router == Router::Gate) make_gate(s.seed, E, d, wg.data(), st);
    if (opt.run_experts) {
        make_w1(s.seed, E, F, d, w1.data(), st);
        make_w2(s.seed, E, d, F, w2.data(), st);
    }
    const std::vector<float> logp_host = route::log_popularity(s.skew, E);
    MOE_CUDA_CHECK(cudaMemcpyAsync(logp.data(), logp_host.data(), sizeof(float) * E, cudaMemcpyHostToDevice,
                                   to_cuda(st)));
    const std::int64_t cap = route::capacity(s.capacity_factor, T, k, E);
    // The plan stays on the device, so auto cannot read the busiest expert's count: under the popularity router the
    // scenario's skew gives its expected count (mid's 32-token tile splits a busier expert, and wgmma then runs
    // 20-25% faster at 8 tokens per expert under hot:20; kernels/bench/RESULTS.md). The gate router's popularity comes
    // from its weights: unknown.
    const std::int64_t busiest = s.router == Router::Gate ? -1 : route::busiest_estimate(s.skew, E, k, T, cap);

    std::vector<std::string> names = {"route", "capacity", "dispatch"};
    if (opt.run_experts) names.insert(names.end(), {"experts", "combine"});
    run.stages.clear();
    for (auto& n : names) run.stages.push_back({n, {}});
    Events events(int(names.size()) + 1);

    const int total = opt.warmup + std::max(1, opt.repeats);
    for (int rep = 0; rep < total; ++rep) {
        const float base = float(rep) / total, step = 1.0f / total / names.size();
        std::size_t si = 0;
        auto stage = [&](auto&& body) {
            progress(base + step * si, names[si].c_str());
            record_event(events.ev[si], st);
            body();
            ++si;
        };
        stage([&] {
            if (s.router == Router::Gate) {
                gate_route(x.data(), wg.data(), logp.data(), T, d, E, k, s.renormalize, logits.data(), ids.data(),
                           w.data(), st);
            } else {
                route::gpu::popularity_logits(s.seed, logp.data(), T, E, logits.data(), st);
                route::gpu::softmax_topk(logits.data(), T, E, k, s.renormalize, ids.data(), w.data(), st);
            }
        });
        stage([&] {
            capacity(ids.data(), w.data(), T, k, E, cap, s.drop_policy, demand.data(), ws.data(), ws.bytes(), st);
        });
        stage([&] {
            dispatch(s.strategy, x.data(), ids.data(), T, k, E, d, s.align, counts.data(), offsets.data(),
                     row_token.data(), inv.data(), pack ? xp.data() : nullptr, ws.data(), ws.bytes(), st);
        });
        if (opt.run_experts) {
            stage([&] {
                // decode reads the plan on the device; the cuBLAS variants copy the GEMM shapes back and wait
                // inside experts_ffn_device, and that copy and wait are part of the stage's cost.
                const ExpertsImpl ran =
                    experts_ffn_device(ExpertsImpl::Auto, pack ? xp.data() : nullptr, x.data(), row_token.data(),
                                       counts.data(), offsets.data(), max_rows, T * k, E, d, F, w1.data(), w2.data(),
                                       y.data(), ws.data(), ws.bytes(), st, busiest);
                run.experts_impl = experts_impl_name(ran);
            });
            stage([&] { combine(y.data(), inv.data(), w.data(), T, k, d, out.data(), st); });
        }
        record_event(events.ev[si], st);
        if (rep >= opt.warmup)
            for (std::size_t i = 0; i < names.size(); ++i)
                run.stages[i].ms.push_back(elapsed_ms(events.ev[i], events.ev[i + 1]));
        else
            synchronize(st);
    }
    synchronize(st);
    progress(1.0f, "done");

    auto dem = demand.download(E), cnt = counts.download(E), off = offsets.download(E + 1);
    run.capacity = cap;
    run.rows = off[E];
    run.demand.assign(dem.begin(), dem.end());
    run.counts.assign(cnt.begin(), cnt.end());
    run.dropped = std::accumulate(run.demand.begin(), run.demand.end(), std::int64_t(0)) -
                  std::accumulate(run.counts.begin(), run.counts.end(), std::int64_t(0));

    if (opt.keep_tensors) {
        auto& t = run.tensors;
        t.x = x.download();
        t.logits = logits.download();
        t.topk_ids = ids.download();
        t.topk_w = w.download();
        t.counts = cnt;
        t.offsets = off;
        t.row_token = row_token.download(std::size_t(run.rows));
        t.inv = inv.download();
        if (opt.run_experts) {
            t.y_packed = y.download(std::size_t(run.rows) * d);
            t.out = out.download();
        }
    } else if (opt.keep_routing) {
        run.tensors.topk_ids = ids.download();
        run.tensors.topk_w = w.download();
    }
}

}  // namespace moe::gpu
