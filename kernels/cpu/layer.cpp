// The CPU reference run of one MoE layer: route → capacity → dispatch → experts → combine, each stage
// timed with a steady clock over the repeats. Inputs are generated once, outside the timed stages.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "kernels/api.hpp"
#include "kernels/common/error.hpp"

namespace moe {

std::size_t layer_bytes(const LayerSpec& s, bool with_experts) {
    std::size_t T = s.tokens, E = s.experts, k = s.top_k, d = s.hidden, F = s.ffn;
    std::size_t rows = T * k + E * (s.align - 1);
    std::size_t b = T * d * 2 + T * E * 4 + T * k * 12 + rows * 4 + E * d * 2;  // x, logits, ids/w/inv, plan, gate
    if (s.strategy != Strategy::NoPack || !with_experts) b += rows * d * 2;       // packed x
    if (with_experts) b += E * 3 * F * d * 2 + rows * d * 2 + T * d * 2;         // w1, w2, y, out
    return b;
}

namespace cpu {

std::string device_name() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("model name", 0) == 0) {
            auto p = line.find(':');
            if (p != std::string::npos) return line.substr(p + 2);
        }
    }
    return "CPU";
}

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}
void check_cancel(const LayerRunOptions& opt) {
    if (opt.cancel && opt.cancel->load()) throw Error(ErrorKind::Runtime, "run cancelled");
}
}  // namespace

void run_layer(const LayerSpec& s, const LayerRunOptions& opt, LayerRun& run) {
    const std::int64_t T = s.tokens;
    const int E = s.experts, k = s.top_k, d = s.hidden, F = s.ffn;
    run.backend = "cpu";
    run.device = device_name();
    run.experts_impl = opt.run_experts ? "reference" : "";
    auto progress = [&](float f, const char* what) {
        if (opt.progress) opt.progress(f, what);
        check_cancel(opt);
    };

    progress(0.0f, "generating inputs");
    std::vector<bf16_t> x(std::size_t(T) * d), wg, w1, w2;
    route::make_x(s.seed, T, d, x.data());
    if (s.router == Router::Gate) {
        wg.resize(std::size_t(E) * d);
        route::make_gate(s.seed, E, d, wg.data());
    }
    if (opt.run_experts) {
        w1.resize(std::size_t(E) * 2 * F * d);
        w2.resize(std::size_t(E) * d * F);
        experts::make_w1(s.seed, E, F, d, w1.data());
        experts::make_w2(s.seed, E, d, F, w2.data());
    }
    auto logp = route::log_popularity(s.skew, E);

    std::vector<float> logits(std::size_t(T) * E), w(std::size_t(T) * k);
    std::vector<std::int32_t> ids(std::size_t(T) * k), counts(E), offsets(E + 1), inv(std::size_t(T) * k);
    std::int64_t max_rows = dispatch::max_rows(T, k, E, s.align);
    std::vector<std::int32_t> row_token(max_rows);
    std::vector<bf16_t> xp, y, out;
    const bool pack = s.strategy != Strategy::NoPack;
    if (pack) xp.resize(std::size_t(max_rows) * d);
    if (opt.run_experts) {
        y.resize(std::size_t(max_rows) * d);
        out.resize(std::size_t(T) * d);
    }

    std::vector<std::string> names = {"route", "capacity", "dispatch"};
    if (opt.run_experts) names.insert(names.end(), {"experts", "combine"});
    run.stages.clear();
    for (auto& n : names) run.stages.push_back({n, {}});

    const int total = opt.warmup + std::max(1, opt.repeats);
    for (int rep = 0; rep < total; ++rep) {
        const bool timed = rep >= opt.warmup;
        const float base = float(rep) / total, step = 1.0f / total / names.size();
        std::size_t si = 0;
        auto stage = [&](auto&& body) {
            progress(base + step * si, names[si].c_str());
            auto t0 = Clock::now();
            body();
            double ms = ms_since(t0);
            if (timed) run.stages[si].ms.push_back(ms);
            ++si;
        };
        stage([&] {
            if (s.router == Router::Gate)
                route::gate_logits(x.data(), wg.data(), logp.data(), T, d, E, logits.data());
            else
                route::popularity_logits(s.seed, logp.data(), T, E, logits.data());
            route::softmax_topk(logits.data(), T, E, k, s.renormalize, ids.data(), w.data());
        });
        std::vector<std::int32_t> routed;
        if (rep == total - 1) routed = ids;  // demand is what routing asked for, before drops
        stage([&] {
            run.capacity = route::capacity(s.capacity_factor, T, k, E);
            run.dropped = route::apply_capacity(ids.data(), w.data(), T, k, E, run.capacity, s.drop_policy);
        });
        stage([&] {
            run.rows = dispatch::plan(ids.data(), T, k, E, s.align, counts.data(), offsets.data(), row_token.data(),
                                      inv.data());
            if (pack) dispatch::pack(x.data(), row_token.data(), run.rows, d, xp.data());
        });
        if (opt.run_experts) {
            stage([&] {
                experts::ffn(pack ? xp.data() : nullptr, x.data(), row_token.data(), counts.data(), offsets.data(), E,
                             d, F, w1.data(), w2.data(), y.data(), opt.threads);
            });
            stage([&] { combine::gather(y.data(), inv.data(), w.data(), T, k, d, out.data()); });
        }
        if (rep == total - 1) {
            run.demand.assign(E, 0);
            for (auto e : routed) run.demand[e]++;
        }
    }
    run.counts.assign(counts.begin(), counts.end());
    progress(1.0f, "done");

    if (opt.keep_tensors) {
        auto& t = run.tensors;
        t.x = std::move(x);
        t.logits = std::move(logits);
        t.topk_ids = std::move(ids);
        t.topk_w = std::move(w);
        t.counts = std::move(counts);
        t.offsets = std::move(offsets);
        row_token.resize(run.rows);
        t.row_token = std::move(row_token);
        t.inv = std::move(inv);
        if (opt.run_experts) {
            y.resize(std::size_t(run.rows) * d);
            t.y_packed = std::move(y);
            t.out = std::move(out);
        }
    } else if (opt.keep_routing) {
        run.tensors.topk_ids = std::move(ids);
        run.tensors.topk_w = std::move(w);
    }
}

}  // namespace cpu
}  // namespace moe
