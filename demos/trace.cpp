// Chrome trace JSON (the Trace Event Format): metadata events name each process and track; spans are
// complete events (ph "X") with ts and dur in microseconds.
#include "demos/trace.hpp"

#include <map>
#include <vector>

#include "demos/atomic_file.hpp"
#include "kernels/common/error.hpp"

namespace demos {

namespace {

// Tracks in the order the timeline view draws them; stage names of a measured layer and ranks come after.
int lane_order(const std::string& lane) {
    static const char* order[] = {"attention", "a2e", "experts", "e2a"};
    for (int i = 0; i < 4; ++i)
        if (lane == order[i]) return i;
    return 4;
}

void add_process(nlohmann::json& events, int pid, const std::string& name, const std::vector<Span>& spans,
                 const Result& r) {
    if (spans.empty()) return;
    events.push_back({{"ph", "M"}, {"pid", pid}, {"name", "process_name"}, {"args", {{"name", name}}}});
    events.push_back({{"ph", "M"}, {"pid", pid}, {"name", "process_sort_index"}, {"args", {{"sort_index", pid}}}});
    std::map<std::string, int> tids;
    for (auto& s : spans)
        if (!tids.count(s.lane)) tids[s.lane] = 0;
    std::vector<std::string> lanes;
    for (auto& [lane, _] : tids) lanes.push_back(lane);
    std::stable_sort(lanes.begin(), lanes.end(),
                     [](const std::string& a, const std::string& b) { return lane_order(a) < lane_order(b); });
    for (std::size_t i = 0; i < lanes.size(); ++i) {
        tids[lanes[i]] = int(i) + 1;
        events.push_back(
            {{"ph", "M"}, {"pid", pid}, {"tid", int(i) + 1}, {"name", "thread_name"}, {"args", {{"name", lanes[i]}}}});
        events.push_back({{"ph", "M"},
                          {"pid", pid},
                          {"tid", int(i) + 1},
                          {"name", "thread_sort_index"},
                          {"args", {{"sort_index", int(i)}}}});
    }
    for (auto& s : spans) {
        events.push_back({{"name", s.label.empty() ? s.lane : s.label},
                          {"cat", s.lane},
                          {"ph", "X"},
                          {"pid", pid},
                          {"tid", tids[s.lane]},
                          {"ts", s.start_ms * 1e3},
                          {"dur", std::max(0.0, s.end_ms - s.start_ms) * 1e3},
                          {"args",
                           {{"provenance", provenance_name(s.provenance)},
                            {"layer", s.layer},
                            {"micro_batch", s.micro_batch},
                            {"rank", s.rank},
                            {"device", r.device}}}});
    }
}

}  // namespace

nlohmann::json chrome_trace(const Result& r) {
    nlohmann::json events = nlohmann::json::array();
    const bool measured_pipeline = r.measured_pipeline.present;
    add_process(events, 1,
                measured_pipeline ? "measured pipeline (" + r.device + ")"
                                  : "measured " + std::string(demo_name(r.demo)) + " (" + r.device + ")",
                r.timeline, r);
    add_process(events, 2, measured_pipeline ? "model, calibrated on this GPU [modeled]" : "pipeline model [modeled]",
                r.model_timeline, r);
    nlohmann::json j;
    j["traceEvents"] = events;
    j["displayTimeUnit"] = "ms";
    j["otherData"] = {{"tool", "moelab"},
                      {"demo", demo_name(r.demo)},
                      {"backend", r.backend},
                      {"device", r.device},
                      {"scenario", r.scenario.to_toml()}};
    return j;
}

void write_chrome_trace(const Result& r, const std::string& path) {
    std::string err;
    if (!write_file_atomic(path, chrome_trace(r).dump(1) + "\n", &err))
        MOE_BAD_INPUT("--trace " << path << ": " << err);
}

}  // namespace demos
