// Greedy copies and placement of hot experts (demos/placement.hpp).
#include "demos/placement.hpp"

#include <algorithm>
#include <map>

#include "kernels/api.hpp"
#include "kernels/common/error.hpp"

namespace demos {

std::vector<std::vector<PlacedCopy>> contiguous_placement(const std::vector<std::int64_t>& loads, int gpus) {
    std::vector<std::vector<PlacedCopy>> out(std::size_t(std::max(1, gpus)));
    const int E = int(loads.size());
    for (int e = 0; e < E; ++e)
        out[std::size_t(moe::comm::rank_of_expert(e, E, int(out.size())))].push_back({e, loads[std::size_t(e)]});
    return out;
}

std::vector<std::vector<PlacedCopy>> greedy_placement(const std::vector<std::int64_t>& loads, int gpus, int copies) {
    const int E = int(loads.size());
    const int G = std::max(1, gpus);
    std::vector<int> n(std::size_t(E), 1);
    // Copies go, one at a time, to the expert whose per-copy load is the highest (ties to the lower id). An expert
    // never gets more copies than there are GPUs, since two copies on one GPU would share its time.
    for (int c = 0; c < copies; ++c) {
        int best = -1;
        double best_load = -1;
        for (int e = 0; e < E; ++e) {
            double per = double(loads[std::size_t(e)]) / n[std::size_t(e)];
            if (n[std::size_t(e)] < G && per > best_load) best = e, best_load = per;
        }
        if (best < 0) break;
        n[std::size_t(best)] += 1;
    }
    std::vector<PlacedCopy> all;
    for (int e = 0; e < E; ++e) {
        const std::int64_t L = loads[std::size_t(e)];
        for (int i = 0; i < n[std::size_t(e)]; ++i)
            all.push_back({e, L / n[std::size_t(e)] + (i < L % n[std::size_t(e)] ? 1 : 0)});
    }
    std::stable_sort(all.begin(), all.end(), [](const PlacedCopy& a, const PlacedCopy& b) { return a.rows > b.rows; });
    std::vector<std::vector<PlacedCopy>> out(static_cast<std::size_t>(G));
    std::vector<std::int64_t> load(static_cast<std::size_t>(G), 0);
    for (const PlacedCopy& c : all) {
        int pick = -1;
        for (int g = 0; g < G; ++g) {
            bool holds = std::any_of(out[std::size_t(g)].begin(), out[std::size_t(g)].end(),
                                     [&](const PlacedCopy& o) { return o.expert == c.expert; });
            if (holds) continue;
            if (pick < 0 || load[std::size_t(g)] < load[std::size_t(pick)]) pick = g;
        }
        if (pick < 0) pick = int(std::min_element(load.begin(), load.end()) - load.begin());
        out[std::size_t(pick)].push_back(c);
        load[std::size_t(pick)] += c.rows;
    }
    return out;
}

std::vector<std::vector<PlacedCopy>> apply_placement(const std::vector<std::vector<PlacedCopy>>& plan,
                                                     const std::vector<std::int64_t>& loads) {
    std::map<int, int> copies, seen;
    for (auto& gpu : plan)
        for (auto& c : gpu) copies[c.expert] += 1;
    auto out = plan;
    for (auto& gpu : out)
        for (auto& c : gpu) {
            MOE_ASSERT(c.expert >= 0 && std::size_t(c.expert) < loads.size(), "apply_placement: expert out of range");
            const std::int64_t L = loads[std::size_t(c.expert)], n = copies[c.expert];
            const int i = seen[c.expert]++;
            c.rows = L / n + (i < L % n ? 1 : 0);
        }
    return out;
}

std::int64_t busiest_gpu_rows(const std::vector<std::vector<PlacedCopy>>& placement) {
    std::int64_t worst = 0;
    for (auto& gpu : placement) {
        std::int64_t s = 0;
        for (auto& c : gpu) s += c.rows;
        worst = std::max(worst, s);
    }
    return worst;
}

std::vector<moe::bf16_t> replicated_ffn_cpu(const std::vector<moe::bf16_t>& xp, const std::vector<std::int32_t>& counts,
                                       const std::vector<std::vector<PlacedCopy>>& placement, int hidden, int ffn,
                                       const std::vector<moe::bf16_t>& w1, const std::vector<moe::bf16_t>& w2) {
    const int E = int(counts.size());
    std::vector<std::int64_t> start(std::size_t(E) + 1, 0);
    for (int e = 0; e < E; ++e) start[std::size_t(e) + 1] = start[std::size_t(e)] + counts[std::size_t(e)];
    std::vector<moe::bf16_t> y(std::size_t(start.back()) * hidden);
    std::vector<std::int64_t> next(start.begin(), start.end() - 1);  // the next unassigned row of each expert
    const std::size_t w1_size = std::size_t(2) * ffn * hidden, w2_size = std::size_t(hidden) * ffn;
    for (auto& gpu : placement)
        for (const PlacedCopy& c : gpu) {
            if (c.rows <= 0) continue;
            const std::int64_t row0 = next[std::size_t(c.expert)];
            next[std::size_t(c.expert)] += c.rows;
            MOE_ASSERT(next[std::size_t(c.expert)] <= start[std::size_t(c.expert) + 1], "copies take more rows than "
                                                                                        "their expert has");
            // The copy is an expert of its own: one segment of c.rows rows, the original expert's weights.
            std::vector<std::int32_t> cnt{std::int32_t(c.rows)}, off{0, std::int32_t(c.rows)};
            std::vector<moe::bf16_t> out(std::size_t(c.rows) * hidden);
            moe::experts::ffn(xp.data() + row0 * hidden, nullptr, nullptr, cnt.data(), off.data(), 1, hidden, ffn,
                              w1.data() + std::size_t(c.expert) * w1_size, w2.data() + std::size_t(c.expert) * w2_size,
                              out.data(), 1);
            std::copy(out.begin(), out.end(), y.begin() + row0 * hidden);
        }
    return y;
}

}  // namespace demos
