// The lesson experiments' names and the numbers each one adds (demos/experiments.hpp): what `lessons check`
// validates a lesson's expressions against, and what the players print beside each number.
#include <algorithm>

#include "demos/experiments.hpp"
#include "demos/lesson_drift.hpp"

namespace demos {

const std::vector<std::string>& experiment_names() {
    static const std::vector<std::string> n = {"expert-ffn", "a2a", "overlap", "replicate", "packing", "load-drift"};
    return n;
}

bool is_experiment(const std::string& name) {
    const auto& n = experiment_names();
    return std::find(n.begin(), n.end(), name) != n.end();
}

const std::vector<ExperimentMetric>& experiment_metrics() {
    static const std::vector<ExperimentMetric> list = [] {
        std::vector<ExperimentMetric> v = {
        {{"ffn_ms", "ms", "every expert's FFN at this run's loads, one device, median"}, "expert-ffn"},
        {{"ffn_min_ms", "ms", "the same, fastest repeat"}, "expert-ffn"},
        {{"ffn_p95_ms", "ms", "the same, 95th percentile"}, "expert-ffn"},
        {{"hot_expert_ms", "ms", "the busiest expert's FFN alone, median"}, "expert-ffn"},
        {{"hot_expert_min_ms", "ms", "the same, fastest repeat"}, "expert-ffn"},
        {{"hot_expert_p95_ms", "ms", "the same, 95th percentile"}, "expert-ffn"},
        {{"mean_expert_ms", "ms", "mean over experts of each one's FFN alone"}, "expert-ffn"},
        {{"expert_time_ratio", "×", "hot_expert_ms / mean_expert_ms: the straggler factor in time"}, "expert-ffn"},
        {{"ep_layer_ms", "ms", "one expert per GPU: the slowest expert's time"}, "expert-ffn"},
        {{"peak_tflops_meas", "TFLOP/s", "this GPU's measured bf16 GEMM rate (recorded H100 without a GPU)"},
         "expert-ffn"},
        {{"mem_gbps_meas", "GB/s", "this GPU's measured copy bandwidth (recorded H100 without a GPU)"}, "expert-ffn"},
        {{"ridge_meas", "FLOP/byte", "peak_tflops_meas / mem_gbps_meas: the roofline's ridge"}, "expert-ffn"},
        {{"expert_ms", "ms", "each expert's FFN time alone", true}, "expert-ffn"},
        {{"a2a_ms", "ms", "all-to-all of the busiest rank's dispatch bytes, median"}, "a2a"},
        {{"a2a_min_ms", "ms", "the same, fastest repeat"}, "a2a"},
        {{"a2a_p95_ms", "ms", "the same, 95th percentile"}, "a2a"},
        {{"a2a_gbps", "GB/s", "bytes sent over a2a_ms"}, "a2a"},
        {{"link_peak_gbps", "GB/s", "the link's bus bandwidth at 256 MiB per rank"}, "a2a"},
        {{"a2a_util", "", "Util(msg): a2a_gbps / link_peak_gbps"}, "a2a"},
        {{"serial_ms", "ms", "all-to-all, then the busiest GPU's expert GEMMs, no overlap"}, "overlap"},
        {{"ovl_tc_ms", "ms", "the whole all-to-all of the busiest rank"}, "overlap"},
        {{"ovl_te_ms", "ms", "the busiest GPU's expert GEMMs"}, "overlap"},
        {{"overlap_ms_1", "ms", "c = 1: serial_ms"}, "overlap"},
        {{"overlap_ms_2", "ms", "transfer and GEMMs overlapped in 2 chunks"}, "overlap"},
        {{"overlap_ms_4", "ms", "in 4 chunks"}, "overlap"},
        {{"overlap_ms_8", "ms", "in 8 chunks"}, "overlap"},
        {{"overlap_ms_16", "ms", "in 16 chunks"}, "overlap"},
        {{"overlap_ms_32", "ms", "in 32 chunks"}, "overlap"},
        {{"overlap_ms_64", "ms", "in 64 chunks"}, "overlap"},
        {{"gemm_ms_2", "ms", "the busiest GPU's expert GEMMs run as 2 chunks, summed"}, "overlap"},
        {{"gemm_ms_4", "ms", "the same in 4 chunks"}, "overlap"},
        {{"link_ms_2", "ms", "the all-to-all sent as 2 messages, summed"}, "overlap"},
        {{"link_ms_4", "ms", "the same as 4 messages"}, "overlap"},
        {{"best_chunks", "", "the chunk count with the shortest time"}, "overlap"},
        {{"best_overlap_ms", "ms", "its time"}, "overlap"},
        {{"gpu_rows_before", "rows", "busiest GPU's rows, experts placed E/G per GPU, no copies"}, "replicate"},
        {{"gpu_rows_after", "rows", "busiest GPU's rows after greedy copies and placement"}, "replicate"},
        {{"gpu_rows_mean", "rows", "kept rows / G: a perfect balance"}, "replicate"},
        {{"balance_gain", "×", "gpu_rows_before / gpu_rows_after"}, "replicate"},
        {{"copied_experts", "experts", "experts that got at least one extra copy"}, "replicate"},
        {{"hot_copies", "", "copies of the busiest expert (1 = no extra copy)"}, "replicate"},
        {{"gpu_rows", "rows", "rows per GPU after greedy placement", true}, "replicate"},
        {{"gpu_before_ms", "ms", "busiest GPU's expert time before, median"}, "replicate"},
        {{"gpu_before_min_ms", "ms", "the same, fastest repeat"}, "replicate"},
        {{"gpu_before_p95_ms", "ms", "the same, 95th percentile"}, "replicate"},
        {{"gpu_after_ms", "ms", "busiest GPU's expert time after, median"}, "replicate"},
        {{"gpu_after_min_ms", "ms", "the same, fastest repeat"}, "replicate"},
        {{"gpu_after_p95_ms", "ms", "the same, 95th percentile"}, "replicate"},
        {{"time_gain", "×", "gpu_before_ms / gpu_after_ms"}, "replicate"},
        {{"packing_sort_ms", "ms", "sort's packing: measured on a GPU, else its bytes at the recorded bandwidth"},
         "packing"},
        {{"packing_sort_min_ms", "ms", "the same, fastest repeat"}, "packing"},
        {{"packing_sort_p95_ms", "ms", "the same, 95th percentile"}, "packing"},
        {{"packing_sort_bytes", "bytes", "bytes sort moves: rows read and written, keys sorted"}, "packing"},
        {{"packing_atomic_ms", "ms", "atomic's packing, the same way"}, "packing"},
        {{"packing_atomic_min_ms", "ms", "the same, fastest repeat"}, "packing"},
        {{"packing_atomic_p95_ms", "ms", "the same, 95th percentile"}, "packing"},
        {{"packing_atomic_bytes", "bytes", "bytes atomic moves: rows, ids, inverse map"}, "packing"},
        {{"packing_scan_ms", "ms", "scan's packing, the same way"}, "packing"},
        {{"packing_scan_min_ms", "ms", "the same, fastest repeat"}, "packing"},
        {{"packing_scan_p95_ms", "ms", "the same, 95th percentile"}, "packing"},
        {{"packing_scan_bytes", "bytes", "bytes scan moves: rows, ids, inverse map"}, "packing"},
        {{"packing_nopack_ms", "ms", "no-pack: the plan only, the same way"}, "packing"},
        {{"packing_nopack_min_ms", "ms", "the same, fastest repeat"}, "packing"},
        {{"packing_nopack_p95_ms", "ms", "the same, 95th percentile"}, "packing"},
        {{"packing_nopack_bytes", "bytes", "bytes of no-pack's plan"}, "packing"},
        };
        for (auto& m : load_drift_metrics()) v.push_back(m);
        return v;
    }();
    return list;
}

}  // namespace demos
