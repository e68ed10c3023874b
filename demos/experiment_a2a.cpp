// The all-to-all experiments: the all-to-all time of a run's per-rank traffic and the link utilisation over message
// sizes (NCCL over real GPUs where two or more exist, else the alpha-beta link model), and the all-to-all overlapped
// with the expert GEMMs in chunks.
#include <algorithm>
#include <cmath>
#include <mutex>

#include "demos/experiment_common.hpp"
#include "demos/lesson_expr.hpp"
#include "kernels/api.hpp"
#include "kernels/common/error.hpp"
#include "kernels/nccl/nccl_api.hpp"

namespace demos {

using namespace experiment;

namespace {

// An alpha-beta fit of the 2x H200 NCCL all-to-all in kernels/nccl/README.md (12 µs per exchange, 280 GB/s bus
// bandwidth at large sizes): the link when fewer than two GPUs are present.
constexpr double kLinkAlphaMs = 0.012, kLinkGbps = 280;

// Measured NCCL all-to-all points (two or more GPUs), cached by size for the process.
bool a2a_measured(const std::vector<double>& sizes, std::map<double, moe::nccl::A2aPoint>* out, int* gpus) {
    if (!moe::nccl::built() || moe::nccl::usable_gpus() < 2) return false;
    static std::mutex mu;
    static std::map<double, moe::nccl::A2aPoint> cache;
    std::lock_guard<std::mutex> lock(mu);
    *gpus = std::min(moe::nccl::usable_gpus(), 8);
    std::vector<std::size_t> missing;
    for (double s : sizes)
        if (s > 0 && !cache.count(s)) missing.push_back(std::size_t(s));
    if (!missing.empty()) {
        auto pts = moe::nccl::bench_alltoall(*gpus, missing, 20, moe::nccl::timeout_s(), 5);
        for (std::size_t i = 0; i < pts.size() && i < missing.size(); ++i) cache[double(missing[i])] = pts[i];
    }
    for (double s : sizes)
        if (cache.count(s)) (*out)[s] = cache[s];
    return true;
}

struct A2aTimes {
    std::map<double, TimedFigure> at;  // by bytes a rank sends to the others
    double peak_gbps = kLinkGbps;
    Source src = Source::Modeled;
    int gpus = 0;
};

// Times for every size in `send_bytes` (bytes one rank sends to the other ranks) and the peak.
A2aTimes a2a_times(const Result& r, std::vector<double> send_bytes) {
    A2aTimes out;
    const double top = double(std::size_t(256) << 20);
    std::map<double, moe::nccl::A2aPoint> pts;
    int gpus = 0;
    std::vector<double> per_rank;  // the benchmark's bytes_per_rank: 1/G of it stays home
    bool measured = false;
    if (on_gpu(r)) {
        int g = moe::nccl::built() ? std::min(moe::nccl::usable_gpus(), 8) : 0;
        if (g >= 2) {
            for (double s : send_bytes) per_rank.push_back(std::round(s * g / (g - 1)));
            per_rank.push_back(top);
            try {
                measured = a2a_measured(per_rank, &pts, &gpus);
            } catch (const moe::Error&) {
                measured = false;
            }
        }
    }
    if (measured) {
        out.src = Source::MeasuredGpu;
        out.gpus = gpus;
        if (pts.count(top)) out.peak_gbps = pts[top].busbw;
        for (std::size_t i = 0; i < send_bytes.size(); ++i) {
            const auto& p = pts[per_rank[i]];
            TimedFigure f;
            f.name = "a2a";
            f.min_ms = p.min_ms;
            f.median_ms = p.time_ms_median;
            f.p95_ms = p.p95;
            f.repeats = p.iters;
            f.source = Source::MeasuredGpu;
            out.at[send_bytes[i]] = f;
        }
    } else {
        for (double s : send_bytes) out.at[s] = modeled("a2a", s > 0 ? kLinkAlphaMs + s / (kLinkGbps * 1e9) * 1e3 : 0);
    }
    return out;
}

std::vector<double> curve_sizes() {
    std::vector<double> v;
    for (double s = 4096; s <= double(std::size_t(256) << 20); s *= 4) v.push_back(s);
    return v;
}

void a2a_notes(const A2aTimes& t, ExperimentResult& x) {
    if (t.src == Source::MeasuredGpu)
        x.notes.push_back("All-to-all measured with NCCL over " + std::to_string(t.gpus) +
                          " GPUs of this machine (20 iterations after 5 warm-up); the peak is the bus bandwidth at "
                          "256 MiB per rank: " +
                          lesson::format_number(t.peak_gbps) + " GB/s.");
    else
        x.notes.push_back("Fewer than two GPUs here: the all-to-all is modelled as 12 µs + bytes / 280 GB/s, a fit of "
                          "the 2x H200 NCCL measurements in kernels/nccl/README.md.");
}

}  // namespace

namespace experiment {

void run_a2a(const Result& r, ExperimentResult& x) {
    const double send = lesson::max_rank_send_bytes(r);
    std::vector<double> sizes = curve_sizes();
    sizes.push_back(send);
    A2aTimes t = a2a_times(r, sizes);
    const TimedFigure& f = t.at[send];
    put_timed(x, "a2a", f, t.src);
    const double gbps = f.median_ms > 0 ? send / (f.median_ms * 1e-3) / 1e9 : 0;
    put(x, "a2a_gbps", gbps, t.src);
    put(x, "link_peak_gbps", t.peak_gbps, t.src);
    put(x, "a2a_util", t.peak_gbps > 0 ? gbps / t.peak_gbps : 0, t.src);
    for (double s : curve_sizes()) {
        CurvePoint p;
        p.x = s;
        p.time = t.at[s];
        double g = p.time.median_ms > 0 ? s / (p.time.median_ms * 1e-3) / 1e9 : 0;
        p.y = t.peak_gbps > 0 ? g / t.peak_gbps : 0;
        double model = kLinkAlphaMs + s / (kLinkGbps * 1e9) * 1e3;
        p.roof = s / (model * 1e-3) / 1e9 / kLinkGbps;
        x.curve.push_back(p);
    }
    x.curve_x = "bytes per rank";
    x.curve_y = "Util";
    a2a_notes(t, x);
}

// ---- chunked overlap -------------------------------------------------------------------------------------------

void run_overlap(const Result& r, ExperimentResult& x) {
    ExpertTimes et = expert_times(r, true);
    const double send = lesson::max_rank_send_bytes(r);
    const int chunks[] = {1, 2, 4, 8, 16, 32, 64};
    std::vector<double> sizes;
    for (int c : chunks) sizes.push_back(send / c);
    A2aTimes at = a2a_times(r, sizes);
    // The expert GEMMs of the busiest GPU (contiguous placement), chunk by chunk: each chunk takes 1/c of every
    // expert's rows, so small chunks re-read the weights and fall down the roofline (the sweep's measured curve).
    const int G = std::max(1, r.ranks), E = int(r.expert_loads.size());
    auto te = [&](int c) {
        double worst = 0;
        for (int g = 0; g < G; ++g) {
            double sum = 0;
            for (int e = 0; e < E; ++e)
                if (moe::comm::rank_of_expert(e, E, G) == g && r.expert_loads[std::size_t(e)] > 0)
                    sum += sweep_ms(et.sweep, double(r.expert_loads[std::size_t(e)]) / c);
            worst = std::max(worst, sum);
        }
        return worst;
    };
    const Source src = lesson::combine(et.src == Source::MeasuredGpu ? Source::Emulated : Source::Modeled,
                                       at.src == Source::MeasuredGpu ? Source::Emulated : Source::Modeled);
    // The composition is a schedule on paper: its pieces are measured where a GPU allows, the sum is modelled.
    const Source sched = Source::Modeled;
    double best = 0;
    int best_c = 1;
    for (int i = 0; i < int(std::size(chunks)); ++i) {
        int c = chunks[i];
        double tc = at.at[sizes[std::size_t(i)]].median_ms, tex = te(c);
        double total = c == 1 ? tc + tex : chunked_ms(tc, tex * c, c);
        put(x, "overlap_ms_" + std::to_string(c), total, sched);
        if (c == 2 || c == 4) {
            // What chunking costs before anything overlaps: the pieces summed over the chunks.
            put(x, "gemm_ms_" + std::to_string(c), tex * c, lesson::combine(src, et.src));
            put(x, "link_ms_" + std::to_string(c), tc * c, lesson::combine(src, at.src));
        }
        if (i == 0 || total < best) best = total, best_c = c;
        if (c == 1) {
            put(x, "ovl_tc_ms", tc, lesson::combine(src, at.src));
            put(x, "ovl_te_ms", tex, lesson::combine(src, et.src));
        }
    }
    put(x, "serial_ms", x.scalars["overlap_ms_1"].value, sched);
    put(x, "best_chunks", best_c, sched);
    put(x, "best_overlap_ms", best, sched);
    a2a_notes(at, x);
    x.notes.push_back(et.src == Source::MeasuredGpu
                          ? "Expert chunk times come from this GPU's measured FFN sweep over tokens per expert."
                          : "Expert chunk times come from the recorded H100 roofline (no GPU here).");
    x.notes.push_back("The overlapped schedule itself is modelled: first transfer, then c - 1 steps of the slower "
                      "of transfer and GEMM chunk, then the last GEMM chunk.");
}

}  // namespace experiment

double modeled_a2a_ms(double bytes_per_rank, int ranks) {
    if (ranks < 2 || bytes_per_rank <= 0) return 0;
    return kLinkAlphaMs + bytes_per_rank * double(ranks - 1) / ranks / (kLinkGbps * 1e9) * 1e3;
}

double chunked_ms(double tc_chunk_ms, double te_ms, int chunks) {
    if (chunks <= 1) return tc_chunk_ms + te_ms;
    const double te_chunk = te_ms / chunks;
    return tc_chunk_ms + double(chunks - 1) * std::max(tc_chunk_ms, te_chunk) + te_chunk;
}

}  // namespace demos
