// Lesson experiments: expert FFN times at a run's loads, the packing strategies and greedy hot-expert replication,
// and the dispatch to every experiment (the all-to-all and overlap ones are in experiment_a2a.cpp). Measured on the
// GPU; modelled from the repository's recorded measurements otherwise, and labelled so.
#include "demos/experiments.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>

#include "demos/engine.hpp"
#include "demos/experiment_common.hpp"
#include "demos/lesson_drift.hpp"
#include "demos/lesson_expr.hpp"
#include "kernels/api.hpp"
#include "kernels/common/error.hpp"
#if defined(MOELAB_HAVE_CUDA)
#include "kernels/cuda/launchers.hpp"
#endif

namespace demos {

using namespace experiment;  // the pieces experiment_a2a.cpp shares (demos/experiment_common.hpp)

namespace {

constexpr int kRepeats = 10, kWarmup = 2;

[[maybe_unused]] TimedFigure figure(const std::string& name, std::vector<double> ms, Source src) {
    const StageTime t = summarize(moe::StageSamples{name, std::move(ms)}, Provenance::MeasuredGpu);
    TimedFigure f;
    f.name = name;
    f.source = src;
    f.repeats = t.repeats;
    f.min_ms = t.min_ms, f.median_ms = t.median_ms, f.p95_ms = t.p95_ms;
    return f;
}

// One expert's SiLU-gated FFN on the recorded roofline: 6·d·F FLOPs per row, 6·d·F bytes of bf16 weights read once
// plus 4·d bytes of activations per row.
double roofline_ms(double rows, int d, int F, double tflops, double gbps) {
    if (rows <= 0) return 0;
    const double dF = double(d) * F;
    return std::max(6.0 * dF * rows / (tflops * 1e12), (6.0 * dF + 4.0 * d * rows) / (gbps * 1e9)) * 1e3;
}

// ---- GPU timing of expert FFNs ---------------------------------------------------------------------------------
#if defined(MOELAB_HAVE_CUDA)

// Device buffers for timing FFNs of up to `experts` experts and `rows` rows of width d, F; random weights and rows.
class FfnBench {
  public:
    FfnBench(int experts, std::int64_t rows, int d, int F)
        : E_(std::max(1, experts)), rows_(std::max<std::int64_t>(1, rows)), d_(d), F_(F),
          w1_(std::size_t(E_) * 2 * F * d, "experiment w1"), w2_(std::size_t(E_) * d * F, "experiment w2"),
          xp_(std::size_t(rows_) * d, "experiment rows"), y_(std::size_t(rows_) * d, "experiment outputs"),
          row_token_(std::size_t(rows_), "experiment row_token"), counts_(std::size_t(E_), "experiment counts"),
          offsets_(std::size_t(E_) + 1, "experiment offsets"),
          ws_bytes_(moe::gpu::experts_workspace_bytes(rows_, E_, F)), ws_(ws_bytes_, "experiment workspace") {
        stream_ = moe::gpu::create_stream();
        moe::gpu::make_w1(101, E_, F, d, w1_.data(), stream_);
        moe::gpu::make_w2(102, E_, d, F, w2_.data(), stream_);
        moe::gpu::make_x(103, rows_, d, xp_.data(), stream_);
        std::vector<std::int32_t> rt(static_cast<std::size_t>(rows_));
        std::iota(rt.begin(), rt.end(), 0);
        row_token_.upload(rt);
        moe::gpu::synchronize(stream_);
        e0_ = moe::gpu::create_event();
        e1_ = moe::gpu::create_event();
    }
    ~FfnBench() {
        moe::gpu::destroy_event(e0_);
        moe::gpu::destroy_event(e1_);
        moe::gpu::destroy_stream(stream_);
    }
    FfnBench(const FfnBench&) = delete;
    FfnBench& operator=(const FfnBench&) = delete;

    // The experts stage of `counts` (rows per expert, in order), timed with CUDA events: ms of each repeat.
    std::vector<double> time(const std::vector<std::int64_t>& counts) {
        const int E = int(counts.size());
        MOE_ASSERT(E <= E_, "FfnBench: more experts than allocated");
        std::vector<std::int32_t> c(counts.begin(), counts.end()), off(std::size_t(E) + 1, 0);
        for (int e = 0; e < E; ++e) off[std::size_t(e) + 1] = off[std::size_t(e)] + c[std::size_t(e)];
        MOE_ASSERT(off.back() <= rows_, "FfnBench: more rows than allocated");
        if (off.back() == 0) return std::vector<double>(kRepeats, 0.0);
        moe::gpu::copy_h2d(counts_.data(), c.data(), c.size() * sizeof(std::int32_t));
        moe::gpu::copy_h2d(offsets_.data(), off.data(), off.size() * sizeof(std::int32_t));
        auto once = [&] {
            moe::gpu::experts_ffn(moe::gpu::ExpertsImpl::Auto, xp_.data(), nullptr, row_token_.data(), counts_.data(),
                                  offsets_.data(), c.data(), off.data(), E, d_, F_, w1_.data(), w2_.data(), y_.data(),
                                  ws_.data(), ws_bytes_, stream_);
        };
        for (int i = 0; i < kWarmup; ++i) once();
        std::vector<double> ms;
        for (int i = 0; i < kRepeats; ++i) {
            moe::gpu::record_event(e0_, stream_);
            once();
            moe::gpu::record_event(e1_, stream_);
            ms.push_back(double(moe::gpu::elapsed_ms(e0_, e1_)));
        }
        return ms;
    }

  private:
    int E_;
    std::int64_t rows_;
    int d_, F_;
    moe::gpu::DeviceBuffer<moe::bf16_t> w1_, w2_, xp_, y_;
    moe::gpu::DeviceBuffer<std::int32_t> row_token_, counts_, offsets_;
    std::size_t ws_bytes_;
    moe::gpu::DeviceBuffer<std::uint8_t> ws_;
    moe::Stream stream_ = nullptr;
    moe::gpu::Event e0_ = nullptr, e1_ = nullptr;
};

// This GPU's own ceilings, measured once per process: device-to-device copy (read + write) and a bf16 GEMM.
void gpu_ceilings(double* tflops, double* gbps) {
    static std::mutex mu;
    static double t = 0, g = 0;
    std::lock_guard<std::mutex> lock(mu);
    if (t == 0) {
        g = moe::gpu::measure_copy_gbps(std::size_t(256) << 20, 20);
        t = moe::gpu::measure_gemm_tflops(8192, 5);
    }
    *tflops = t;
    *gbps = g;
}
#endif

}  // namespace

// ---- shared with experiment_a2a.cpp -------------------------------------------------------------------------------

namespace experiment {

TimedFigure modeled(const std::string& name, double ms) {
    TimedFigure f;
    f.name = name;
    f.min_ms = f.median_ms = f.p95_ms = ms;
    f.repeats = 0;
    f.source = Source::Modeled;
    return f;
}

void put(ExperimentResult& x, const std::string& name, double v, Source s) { x.scalars[name] = Number{v, s}; }
void put_timed(ExperimentResult& x, const std::string& base, const TimedFigure& f, Source s) {
    put(x, base + "_ms", f.median_ms, s);
    put(x, base + "_min_ms", f.min_ms, s);
    put(x, base + "_p95_ms", f.p95_ms, s);
    TimedFigure g = f;
    g.name = base + "_ms";
    x.timings.push_back(g);
}

bool on_gpu(const Result& r) {
#if defined(MOELAB_HAVE_CUDA)
    return r.backend == "cuda" || r.backend == "nccl";
#else
    (void)r;
    return false;
#endif
}

// ---- per-expert times: measured on the GPU, or the recorded roofline ---------------------------------------------

ExpertTimes expert_times(const Result& r, bool with_sweep) {
    ExpertTimes out;
    const int d = r.scenario.hidden, F = r.scenario.ffn;
    const auto& loads = r.expert_loads;
    std::vector<std::int64_t> sweep_n;
    if (with_sweep)
        for (std::int64_t n = 1; n <= 8192; n *= 2) sweep_n.push_back(n);
    if (on_gpu(r)) {
#if defined(MOELAB_HAVE_CUDA)
        out.src = Source::MeasuredGpu;
        gpu_ceilings(&out.tflops, &out.gbps);
        std::int64_t total = std::accumulate(loads.begin(), loads.end(), std::int64_t(0));
        std::int64_t biggest = std::max<std::int64_t>(sweep_n.empty() ? 1 : sweep_n.back(),
                                                      loads.empty() ? 1 : *std::max_element(loads.begin(), loads.end()));
        FfnBench bench(std::max<int>(1, int(loads.size())), std::max(total, biggest), d, F);
        out.stage = figure("ffn", bench.time(loads), Source::MeasuredGpu);
        std::map<std::int64_t, TimedFigure> seen;  // equal loads share one timing
        for (std::size_t e = 0; e < loads.size(); ++e) {
            auto it = seen.find(loads[e]);
            if (it == seen.end())
                it = seen.emplace(loads[e], figure("expert", bench.time({loads[e]}), Source::MeasuredGpu)).first;
            out.per_expert.push_back(it->second);
        }
        for (std::int64_t n : sweep_n) {
            CurvePoint p;
            p.x = double(n);
            p.time = figure("ffn_one_expert", bench.time({n}), Source::MeasuredGpu);
            out.sweep.push_back(p);
        }
#endif
    } else {
        double sum = 0;
        for (std::int64_t n : loads) {
            double ms = roofline_ms(double(n), d, F, out.tflops, out.gbps);
            out.per_expert.push_back(modeled("expert", ms));
            sum += ms;
        }
        out.stage = modeled("ffn", sum);  // one device runs its experts one after another
        for (std::int64_t n : sweep_n) {
            CurvePoint p;
            p.x = double(n);
            p.time = modeled("ffn_one_expert", roofline_ms(double(n), d, F, out.tflops, out.gbps));
            out.sweep.push_back(p);
        }
    }
    const double dF = double(d) * F;
    for (auto& p : out.sweep) {
        p.y = p.time.median_ms > 0 ? 6.0 * dF * p.x / (p.time.median_ms * 1e-3) / 1e12 : 0;
        double intensity = 6.0 * dF * p.x / (6.0 * dF + 4.0 * d * p.x);
        p.roof = std::min(out.tflops, intensity * out.gbps / 1e3);
    }
    return out;
}

double sweep_ms(const std::vector<CurvePoint>& sweep, double n) {
    if (n <= 0 || sweep.empty()) return 0;
    if (n <= sweep.front().x) return sweep.front().time.median_ms;
    for (std::size_t i = 1; i < sweep.size(); ++i)
        if (n <= sweep[i].x) {
            const CurvePoint &a = sweep[i - 1], &b = sweep[i];
            double f = std::log(n / a.x) / std::log(b.x / a.x);
            double ta = std::max(a.time.median_ms, 1e-9), tb = std::max(b.time.median_ms, 1e-9);
            return std::exp(std::log(ta) + f * (std::log(tb) - std::log(ta)));
        }
    return sweep.back().time.median_ms * n / sweep.back().x;
}

}  // namespace experiment

namespace {

void run_expert_ffn(const Result& r, ExperimentResult& x) {
    ExpertTimes t = expert_times(r, true);
    const Source src = t.src;
    // One expert per GPU: the layer waits for the slowest expert. On one device that is emulated from the
    // experts' own measured times.
    const Source ep = src == Source::MeasuredGpu ? Source::Emulated : Source::Modeled;
    put_timed(x, "ffn", t.stage, src);
    std::vector<double> per;
    double mean = 0;
    std::size_t hot = 0;
    for (std::size_t e = 0; e < t.per_expert.size(); ++e) {
        per.push_back(t.per_expert[e].median_ms);
        mean += t.per_expert[e].median_ms;
        if (r.expert_loads[e] > r.expert_loads[hot]) hot = e;
    }
    mean = per.empty() ? 0 : mean / double(per.size());
    if (!t.per_expert.empty()) put_timed(x, "hot_expert", t.per_expert[hot], src);
    put(x, "mean_expert_ms", mean, src);
    put(x, "expert_time_ratio", mean > 0 ? per[hot] / mean : 0, src);
    put(x, "ep_layer_ms", per.empty() ? 0 : *std::max_element(per.begin(), per.end()), ep);
    put(x, "peak_tflops_meas", t.tflops, src);
    put(x, "mem_gbps_meas", t.gbps, src);
    put(x, "ridge_meas", t.tflops * 1e3 / t.gbps, src);
    x.vectors["expert_ms"] = per;
    x.curve = t.sweep;
    x.curve_x = "tokens per expert";
    x.curve_y = "TFLOP/s";
    if (src == Source::MeasuredGpu)
        x.notes.push_back("Expert FFNs timed on this GPU (CUDA events, " + std::to_string(kRepeats) +
                          " repeats after " + std::to_string(kWarmup) + " warm-up), each expert alone at its load; " +
                          "ceilings measured on this GPU: " + lesson::format_number(t.tflops) + " TFLOP/s bf16 GEMM, " +
                          lesson::format_number(t.gbps) + " GB/s copy. One expert per GPU is emulated: the slowest " +
                          "expert's measured time.");
    else
        x.notes.push_back("No GPU: expert times are modelled on a roofline with the ceilings measured on an H100 in "
                          "kernels/bench/RESULTS.md (" +
                          lesson::format_number(kRecordedTflops) + " TFLOP/s, " +
                          lesson::format_number(kRecordedGbps) + " GB/s).");
}

// ---- packing strategies ----------------------------------------------------------------------------------------

// Bytes of the plan each strategy reads and writes per token-expert assignment, beside the rows it moves: sort
// radix-sorts (expert, assignment) pairs of 4-byte keys and values in one 8-bit pass for up to 256 experts (read +
// write both, and the ids read), atomic and scan read the ids, write the inverse map and touch one counter each, and
// no-pack writes only the plan.
double plan_bytes_per_assignment(const std::string& strategy, int experts) {
    if (strategy == "sort") return 4.0 + 16.0 * std::max(1.0, std::ceil(std::log2(std::max(2, experts)) / 8.0));
    return 12.0;
}

void run_packing(const Result& r, ExperimentResult& x) {
    if (r.strategies.empty())
        MOE_BAD_INPUT("experiment 'packing' reads the packing strategies' times: the lesson's [reveal] demo must be "
                      "\"dispatch\"");
    // On a GPU the dispatch demo timed each strategy's own kernels. On the CPU reference every strategy runs the same
    // plain plan and pack, so the times differ only by noise: the model times the bytes each strategy moves at the
    // recorded copy bandwidth instead, and says so.
    const bool gpu = r.strategies.front().time.provenance == Provenance::MeasuredGpu;
    const double assignments = double(r.scenario.tokens) * r.scenario.top_k;
    for (auto& st : r.strategies) {
        const double bytes = st.bytes + assignments * plan_bytes_per_assignment(st.strategy, r.scenario.experts);
        TimedFigure f = modeled("packing_" + st.strategy, bytes / (kRecordedGbps * 1e9) * 1e3);
        if (gpu) {
            f.min_ms = st.time.min_ms;
            f.median_ms = st.time.median_ms;
            f.p95_ms = st.time.p95_ms;
            f.repeats = st.time.repeats;
            f.source = Source::MeasuredGpu;
        }
        put_timed(x, "packing_" + st.strategy, f, f.source);
        put(x, "packing_" + st.strategy + "_bytes", bytes, lesson::source_of(r.loads_provenance));
    }
    x.notes.push_back(gpu ? "Packing times are the dispatch demo's, measured on this GPU (each strategy's own "
                            "kernels, min / median / p95 of the repeats)."
                          : "No GPU: every strategy ran the same plain CPU code, so its measured times differ only by "
                            "noise. The graded times are modelled: the bytes each strategy moves (rows read and "
                            "written, plus its plan) at the copy bandwidth measured on an H100 (" +
                                lesson::format_number(kRecordedGbps) +
                                " GB/s, kernels/bench/RESULTS.md). The model counts bytes only: contention on one "
                                "counter is what a GPU measures.");
}

// ---- greedy replication ----------------------------------------------------------------------------------------

void run_replicate(const Result& r, ExperimentResult& x, const std::map<std::string, double>& params) {
    auto it = params.find("copies");
    const int copies = it == params.end() ? 0 : int(std::lround(it->second));
    if (copies < 0 || copies > 4096) MOE_BAD_INPUT("replicate: copies = " << copies << " must be from 0 to 4096");
    const int G = std::max(1, r.ranks);
    auto before = contiguous_placement(r.expert_loads, G);
    auto after = greedy_placement(r.expert_loads, G, copies);
    const Source counted = lesson::source_of(r.loads_provenance);
    const double kept = double(std::accumulate(r.expert_loads.begin(), r.expert_loads.end(), std::int64_t(0)));
    put(x, "gpu_rows_before", double(busiest_gpu_rows(before)), counted);
    put(x, "gpu_rows_after", double(busiest_gpu_rows(after)), counted);
    put(x, "gpu_rows_mean", kept / G, counted);
    put(x, "balance_gain", busiest_gpu_rows(after) > 0 ? double(busiest_gpu_rows(before)) / busiest_gpu_rows(after) : 0,
        counted);
    std::map<int, int> copies_of;
    for (auto& gpu : after)
        for (auto& c : gpu) copies_of[c.expert] += 1;
    int copied = 0;
    for (auto& [e, n] : copies_of) copied += n > 1;
    put(x, "copied_experts", copied, counted);
    put(x, "hot_copies", copies_of[r.hottest_expert], counted);
    std::vector<double> rows_after;
    for (auto& gpu : after) {
        double s = 0;
        for (auto& c : gpu) s += double(c.rows);
        rows_after.push_back(s);
    }
    x.vectors["gpu_rows"] = rows_after;

    const Source timed = on_gpu(r) ? Source::Emulated : Source::Modeled;
    put_timed(x, "gpu_before", busiest_gpu_time(r, before, "gpu_before"), timed);
    put_timed(x, "gpu_after", busiest_gpu_time(r, after, "gpu_after"), timed);
    put(x, "time_gain", x.scalars["gpu_after_ms"].value > 0
                            ? x.scalars["gpu_before_ms"].value / x.scalars["gpu_after_ms"].value
                            : 0,
        timed);
    x.notes.push_back(on_gpu(r) ? "Each GPU's experts and copies were timed on this GPU, one GPU's share at a time; "
                                  "the layer time is the busiest share (the GPUs themselves are emulated)."
                                : "No GPU: each GPU's share is timed on the recorded H100 roofline (modelled).");
}

}  // namespace

ExperimentResult run_experiment(const std::string& name, const Result& r, const std::map<std::string, double>& params) {
    ExperimentResult x;
    x.name = name;
    if (name == "expert-ffn")
        run_expert_ffn(r, x);
    else if (name == "a2a")
        run_a2a(r, x);
    else if (name == "overlap")
        run_overlap(r, x);
    else if (name == "replicate")
        run_replicate(r, x, params);
    else if (name == "packing")
        run_packing(r, x);
    else if (name == "load-drift")
        run_load_drift(r, x, params);
    else
        MOE_BAD_INPUT("experiment '" << name << "': allowed: expert-ffn, a2a, overlap, replicate, packing, load-drift");
    return x;
}

// ---- the pieces ------------------------------------------------------------------------------------------------

TimedFigure busiest_gpu_time(const Result& r, const std::vector<std::vector<PlacedCopy>>& placement,
                             const std::string& name) {
    // Every copy is an expert of its own (its own weights) with its rows; each GPU's share is timed on its own.
    const int d = r.scenario.hidden, F = r.scenario.ffn;
    std::vector<TimedFigure> per_gpu;
    if (on_gpu(r)) {
#if defined(MOELAB_HAVE_CUDA)
        std::size_t most = 1;
        std::int64_t rows = 1;
        for (auto& gpu : placement) {
            most = std::max(most, gpu.size());
            std::int64_t sum = 0;
            for (auto& c : gpu) sum += c.rows;
            rows = std::max(rows, sum);
        }
        FfnBench bench(int(most), rows, d, F);
        for (auto& gpu : placement) {
            std::vector<std::int64_t> counts;
            for (auto& c : gpu) counts.push_back(c.rows);
            per_gpu.push_back(figure(name, bench.time(counts), Source::MeasuredGpu));
        }
#endif
    } else {
        for (auto& gpu : placement) {
            double ms = 0;
            for (auto& c : gpu) ms += roofline_ms(double(c.rows), d, F, kRecordedTflops, kRecordedGbps);
            per_gpu.push_back(modeled(name, ms));
        }
    }
    if (per_gpu.empty()) return modeled(name, 0);
    // The layer waits for the busiest GPU.
    return *std::max_element(per_gpu.begin(), per_gpu.end(),
                             [](const TimedFigure& a, const TimedFigure& b) { return a.median_ms < b.median_ms; });
}

}  // namespace demos
