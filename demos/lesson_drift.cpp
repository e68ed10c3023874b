// Decode loads are stable, prefill loads move: consecutive batches routed by the engine's router under a modelled
// workload of topics, and a rebalancing plan made on one batch applied to the next.
#include "demos/lesson_drift.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>

#include "demos/lesson_expr.hpp"
#include "kernels/api.hpp"
#include "kernels/common/error.hpp"
#include "kernels/common/rng.hpp"

namespace demos {

namespace {

using lesson::Number;
using lesson::Source;

// Streams of the workload's own draws, apart from the engine's (kernels/common/rng.hpp uses 1..5).
enum : std::uint64_t { kFavourite = 101, kTopic, kOffset, kDecodeSeq, kPrefillSeq, kNoise };

// The experts topic `t` favours: max(1, E/8) distinct experts drawn from the seed.
std::vector<int> favourites(std::uint64_t seed, int topic, int experts) {
    const int want = std::max(1, experts / 8);
    std::vector<int> out;
    for (std::uint64_t j = 0; int(out.size()) < want && j < 64u * std::uint64_t(experts); ++j) {
        int e = int(moe::rng_hash(seed, kFavourite, std::uint64_t(topic) * 1000003u + j) % std::uint64_t(experts));
        if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
    }
    return out;
}

int topic_of(std::uint64_t seed, std::uint64_t sequence, int topics) {
    return int(moe::rng_hash(seed, kTopic, sequence) % std::uint64_t(std::max(1, topics)));
}

// Routes `groups` (a topic and a token count each) through the engine's router: popularity logits with Gumbel noise
// (the scenario's skew plus the topic's bias), then softmax and top-k. Returns the tokens per expert.
std::vector<std::int64_t> route_groups(const Scenario& s, const DriftWorkload& w,
                                       const std::vector<std::pair<int, std::int64_t>>& groups, std::uint64_t batch) {
    const int E = s.experts, k = s.top_k;
    const std::vector<float> base = moe::route::log_popularity(moe::route::parse_skew(s.skew), E);
    std::int64_t T = 0;
    for (auto& g : groups) T += g.second;
    std::vector<float> logits(std::size_t(T) * E);
    std::int64_t at = 0;
    for (std::size_t i = 0; i < groups.size(); ++i) {
        const auto& [topic, n] = groups[i];
        if (n <= 0) continue;
        std::vector<float> logp = base;
        for (int e : favourites(s.seed, topic, E)) logp[std::size_t(e)] += float(std::log(w.bias));
        moe::route::popularity_logits(moe::rng_hash(s.seed, kNoise, batch * 65536u + i), logp.data(), n, E,
                                      logits.data() + at * E);
        at += n;
    }
    std::vector<std::int32_t> ids(std::size_t(T) * k);
    std::vector<float> weights(std::size_t(T) * k);
    moe::route::softmax_topk(logits.data(), T, E, k, s.renormalize, ids.data(), weights.data());
    std::vector<std::int64_t> loads(std::size_t(E), 0);
    for (std::int32_t e : ids)
        if (e >= 0) loads[std::size_t(e)] += 1;
    return loads;
}

int hottest(const std::vector<std::int64_t>& v) { return int(std::max_element(v.begin(), v.end()) - v.begin()); }

struct KindStats {
    double shift = 0, hot_moves = 0, none = 0, stale = 0, fresh = 0, kept = 1;
    int typical = 1;  // the batch whose stale / fresh rows are nearest the mean ratio: the one timed
    std::vector<std::vector<PlacedCopy>> typical_none, typical_stale, typical_fresh;
};

// Each batch after the first against the one before: how far the shares moved, and the busiest GPU's rows with
// no plan (E/G experts per GPU), the last batch's plan, and a plan made on this batch's own loads.
KindStats compare(const std::vector<std::vector<std::int64_t>>& batches, int gpus, int copies) {
    KindStats k;
    const int n = int(batches.size()) - 1;
    if (n < 1) return k;
    std::vector<double> ratio;
    for (int t = 1; t <= n; ++t) {
        const auto& prev = batches[std::size_t(t) - 1];
        const auto& now = batches[std::size_t(t)];
        k.shift += load_shift(prev, now);
        k.hot_moves += hottest(prev) != hottest(now);
        const double none = double(busiest_gpu_rows(contiguous_placement(now, gpus)));
        const double fresh = double(busiest_gpu_rows(greedy_placement(now, gpus, copies)));
        const double stale = double(busiest_gpu_rows(apply_placement(greedy_placement(prev, gpus, copies), now)));
        k.none += none, k.fresh += fresh, k.stale += stale;
        ratio.push_back(fresh > 0 ? stale / fresh : 1);
    }
    // The share of the rows a fresh plan takes off the busiest GPU that last batch's plan takes off too (sums over
    // the batches, so one batch with nothing to gain cannot divide by zero); 1 when no plan gains anything.
    if (k.none - k.fresh > 0) k.kept = (k.none - k.stale) / (k.none - k.fresh);
    k.shift /= n;
    k.none /= n, k.stale /= n, k.fresh /= n;
    const double mean = std::accumulate(ratio.begin(), ratio.end(), 0.0) / n;
    for (int t = 1; t <= n; ++t)
        if (std::fabs(ratio[std::size_t(t) - 1] - mean) < std::fabs(ratio[std::size_t(k.typical) - 1] - mean))
            k.typical = t;
    const auto& prev = batches[std::size_t(k.typical) - 1];
    const auto& now = batches[std::size_t(k.typical)];
    k.typical_none = contiguous_placement(now, gpus);
    k.typical_fresh = greedy_placement(now, gpus, copies);
    k.typical_stale = apply_placement(greedy_placement(prev, gpus, copies), now);
    return k;
}

void put(ExperimentResult& x, const std::string& name, double v, Source s) { x.scalars[name] = Number{v, s}; }

void put_timed(ExperimentResult& x, const std::string& base, TimedFigure f) {
    put(x, base + "_ms", f.median_ms, f.source);
    put(x, base + "_min_ms", f.min_ms, f.source);
    put(x, base + "_p95_ms", f.p95_ms, f.source);
    f.name = base + "_ms";
    x.timings.push_back(f);
}

int param(const std::map<std::string, double>& p, const char* name, int fallback, int lo, int hi) {
    auto it = p.find(name);
    if (it == p.end()) return fallback;
    const double v = it->second;
    if (!(v >= lo && v <= hi && v == std::floor(v)))
        MOE_BAD_INPUT("load-drift: " << name << " = " << v << " must be a whole number from " << lo << " to " << hi);
    return int(v);
}

}  // namespace

double load_shift(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b) {
    MOE_ASSERT(a.size() == b.size(), "load_shift: vectors of different lengths");
    const double ta = double(std::accumulate(a.begin(), a.end(), std::int64_t(0)));
    const double tb = double(std::accumulate(b.begin(), b.end(), std::int64_t(0)));
    if (ta <= 0 || tb <= 0) return 0;
    double d = 0;
    for (std::size_t i = 0; i < a.size(); ++i) d += std::fabs(double(a[i]) / ta - double(b[i]) / tb);
    return d / 2;
}

std::vector<std::vector<std::int64_t>> drift_loads(const Scenario& s, const DriftWorkload& w, bool prefill) {
    std::vector<std::vector<std::int64_t>> out;
    const std::int64_t T = s.tokens;
    for (int step = 0; step < w.steps; ++step) {
        std::vector<std::pair<int, std::int64_t>> groups;
        if (prefill) {
            // A fresh set of prompts every batch, T / prompts tokens each (the remainder to the first ones).
            for (int p = 0; p < w.prompts; ++p) {
                std::uint64_t seq = moe::rng_hash(s.seed, kPrefillSeq, std::uint64_t(step) * 1000003u + p);
                groups.push_back({topic_of(s.seed, seq, w.topics), T / w.prompts + (p < T % w.prompts ? 1 : 0)});
            }
        } else {
            // One token from each of T running sequences; slot i's sequence ends every decode_length steps (at its
            // own offset) and a new one takes the slot. Tokens are grouped by topic for the router.
            std::vector<std::int64_t> per_topic(std::size_t(std::max(1, w.topics)), 0);
            const std::uint64_t L = std::uint64_t(std::max(1, w.decode_length));
            for (std::int64_t i = 0; i < T; ++i) {
                const std::uint64_t off = moe::rng_hash(s.seed, kOffset, std::uint64_t(i)) % L;
                const std::uint64_t gen = (std::uint64_t(step) + off) / L;
                const std::uint64_t seq = moe::rng_hash(s.seed, kDecodeSeq, std::uint64_t(i) * 1000003u + gen);
                per_topic[std::size_t(topic_of(s.seed, seq, w.topics))] += 1;
            }
            for (int t = 0; t < int(per_topic.size()); ++t) groups.push_back({t, per_topic[std::size_t(t)]});
        }
        out.push_back(route_groups(s, w, groups, std::uint64_t(step) * 2 + (prefill ? 1 : 0)));
    }
    return out;
}

void run_load_drift(const Result& r, ExperimentResult& x, const std::map<std::string, double>& params) {
    DriftWorkload w;
    w.steps = param(params, "steps", w.steps, 2, 64);
    w.prompts = param(params, "prompts", w.prompts, 1, int(std::min<std::int64_t>(r.scenario.tokens, 4096)));
    const int G = std::max(1, r.ranks);
    const int copies = param(params, "copies", G, 0, 4096);
    const Source counted = Source::MeasuredCpu;  // routed here, on the CPU, whatever the run's backend
    const bool gpu = r.backend == "cuda" || r.backend == "nccl";
    const Source timed = gpu ? Source::Emulated : Source::Modeled;
    for (bool prefill : {false, true}) {
        const std::string kind = prefill ? "prefill" : "decode";
        KindStats k = compare(drift_loads(r.scenario, w, prefill), G, copies);
        put(x, kind + "_shift", k.shift, counted);
        put(x, kind + "_hot_moves", k.hot_moves, counted);
        put(x, kind + "_none_rows", k.none, counted);
        put(x, kind + "_stale_rows", k.stale, counted);
        put(x, kind + "_fresh_rows", k.fresh, counted);
        put(x, kind + "_kept", k.kept, counted);
        // A typical batch, timed: the busiest GPU's experts and copies under each placement.
        TimedFigure none = busiest_gpu_time(r, k.typical_none, kind + "_none");
        TimedFigure stale = busiest_gpu_time(r, k.typical_stale, kind + "_stale");
        TimedFigure fresh = busiest_gpu_time(r, k.typical_fresh, kind + "_fresh");
        for (TimedFigure* f : {&none, &stale, &fresh}) f->source = gpu ? Source::Emulated : f->source;
        put_timed(x, kind + "_none", none);
        put_timed(x, kind + "_stale", stale);
        put_timed(x, kind + "_fresh", fresh);
        put(x, kind + "_stale_cost", fresh.median_ms > 0 ? stale.median_ms / fresh.median_ms : 0, timed);
    }
    x.notes.push_back("Loads counted from the engine's router (popularity logits, Gumbel noise, softmax, top-" +
                      std::to_string(r.scenario.top_k) + ") over " + std::to_string(w.steps) +
                      " consecutive batches of each kind. The workload is modelled: each sequence has one of " +
                      std::to_string(w.topics) + " topics, and a topic makes its favourite experts " +
                      lesson::format_number(w.bias) + "× as likely on top of the scenario's skew; a decode " +
                      "sequence keeps its slot for " + std::to_string(w.decode_length) + " steps.");
    x.notes.push_back(std::string("The batch timed is a typical one: its stale / fresh rows on the busiest GPU are "
                                  "nearest the mean over the batches. ") +
                      (gpu ? "Each GPU's share of that batch (its experts and copies) was timed on this GPU, one "
                            "share at a time; the busiest share is the layer's time (the GPUs are emulated)."
                           : "No GPU: each GPU's share is timed on the recorded H100 roofline (modelled)."));
}

const std::vector<ExperimentMetric>& load_drift_metrics() {
    static const std::vector<ExperimentMetric> list = [] {
        std::vector<ExperimentMetric> v;
        // The names must outlive the table: they are static strings built once.
        static std::vector<std::string> names, helps;
        struct Row {
            const char *suffix, *unit, *help;
        };
        const Row rows[] = {
            {"_shift", "", "half the L1 distance between consecutive batches' load shares, mean (0 = the same)"},
            {"_hot_moves", "batches", "times the hottest expert changed from one batch to the next"},
            {"_none_rows", "rows", "busiest GPU's rows, experts placed E/G per GPU, no copies (mean over batches)"},
            {"_stale_rows", "rows", "busiest GPU's rows with the copies planned on the batch before (mean)"},
            {"_fresh_rows", "rows", "busiest GPU's rows with copies planned on the batch's own loads (mean)"},
            {"_kept", "", "share of a fresh plan's gain that the batch before's plan keeps (1 = all of it)"},
            {"_none_ms", "ms", "a typical batch: busiest GPU's expert time with no copies, median"},
            {"_none_min_ms", "ms", "the same, fastest repeat"},
            {"_none_p95_ms", "ms", "the same, 95th percentile"},
            {"_stale_ms", "ms", "a typical batch: busiest GPU's time with the batch before's plan, median"},
            {"_stale_min_ms", "ms", "the same, fastest repeat"},
            {"_stale_p95_ms", "ms", "the same, 95th percentile"},
            {"_fresh_ms", "ms", "a typical batch: busiest GPU's time with its own plan, median"},
            {"_fresh_min_ms", "ms", "the same, fastest repeat"},
            {"_fresh_p95_ms", "ms", "the same, 95th percentile"},
            {"_stale_cost", "×", "stale_ms / fresh_ms: what keeping the old plan costs"},
        };
        names.reserve(2 * std::size(rows));
        helps.reserve(2 * std::size(rows));
        for (const char* kind : {"decode", "prefill"})
            for (const Row& row : rows) {
                names.push_back(std::string(kind) + row.suffix);
                helps.push_back(std::string(kind) + ": " + row.help);
                v.push_back({{names.back().c_str(), row.unit, helps.back().c_str()}, "load-drift"});
            }
        return v;
    }();
    return list;
}

}  // namespace demos
