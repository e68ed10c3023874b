// The loads view's per-expert times: the "expert-ffn" experiment run on one expert at a time, so that each expert
// gets its own min, median and p95 (the experiment reports them for the busiest expert of the run it is given).
#include "app/gui/expert_times.hpp"

#include <algorithm>
#include <map>

#include "kernels/common/error.hpp"

namespace moelab_gui {

double ExpertTimes::mean_ms() const {
    if (per_expert.empty()) return 0;
    double s = 0;
    for (const auto& f : per_expert) s += f.median_ms;
    return s / double(per_expert.size());
}

double ExpertTimes::time_ratio() const {
    const double m = mean_ms();
    if (m <= 0 || hottest < 0 || hottest >= int(per_expert.size())) return 0;
    return per_expert[std::size_t(hottest)].median_ms / m;
}

ExpertTimes time_experts(const demos::Result& r, const std::function<bool()>& stop,
                         const std::function<void(float, const std::string&)>& progress) {
    ExpertTimes out;
    out.scenario = r.scenario;
    out.backend = r.backend;
    out.device = r.device;
    out.loads = r.expert_loads;
    out.hottest = r.hottest_expert;
    const std::size_t E = r.expert_loads.size();
    std::map<std::int64_t, demos::TimedFigure> seen;  // equal loads share one timing
    for (std::size_t e = 0; e < E; ++e) {
        if (stop && stop()) throw moe::Error(moe::ErrorKind::Runtime, "cancelled");
        const std::int64_t n = r.expert_loads[e];
        if (progress)
            progress(float(e) / float(E), "expert " + std::to_string(e) + " of " + std::to_string(E) + " (" +
                                              std::to_string(n) + " tokens)");
        auto it = seen.find(n);
        if (it == seen.end()) {
            // The run as the experiment sees it, with this expert alone: its "hot_expert" figure is this expert's.
            demos::Result one;
            one.scenario = r.scenario;
            one.backend = r.backend;
            one.device = r.device;
            one.expert_loads = {n};
            one.hottest_expert = 0;
            demos::ExperimentResult x = demos::run_experiment("expert-ffn", one, {});
            demos::TimedFigure f;
            for (const auto& t : x.timings)
                if (t.name == "hot_expert_ms") f = t;
            auto src = x.scalars.find("hot_expert_ms");
            if (src == x.scalars.end())
                throw moe::Error(moe::ErrorKind::Runtime,
                                 "the expert-ffn experiment gave no time for expert " + std::to_string(e));
            f.source = src->second.source;
            out.source = f.source;
            if (out.notes.empty()) out.notes = x.notes;
            it = seen.emplace(n, f).first;
        }
        out.per_expert.push_back(it->second);
    }
    if (progress) progress(1.0f, "done");
    return out;
}

}  // namespace moelab_gui
