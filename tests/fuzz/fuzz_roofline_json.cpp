// A saved sweep for the roofline panel (`--roofline FILE`): any bytes give rooflines or a BadInput, never a crash.
// What parses is drawable: valid shapes and ceilings, lines, and only points that were timed.
#include "demos/roofline_saved.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    std::vector<demos::ExpertRoofline> set;
    try {
        set = demos::rooflines_from_sweep_json(fuzz_text(data, size), "fuzz.json");
    } catch (const moe::Error& e) {
        FUZZ_CHECK(e.kind() == moe::ErrorKind::BadInput, "a bad file is BadInput");
        return 0;
    }
    FUZZ_CHECK(!set.empty(), "a parsed file has a roofline");
    for (const demos::ExpertRoofline& rl : set) {
        FUZZ_CHECK(rl.shape.hidden >= 1 && rl.shape.ffn >= 1 && rl.shape.top_k >= 1, "a valid shape");
        FUZZ_CHECK(rl.shape.top_k <= rl.shape.experts, "top-k at most the experts");
        FUZZ_CHECK(rl.ceilings.read_gbps > 0 && rl.ceilings.gemm_tflops > 0, "positive ceilings");
        FUZZ_CHECK(!rl.lines.empty() && !rl.points.empty() && !rl.recorded.empty(), "lines, points, where");
        for (const demos::RooflinePoint& p : rl.points)
            FUZZ_CHECK(p.median_ms > 0 && p.p95_ms >= p.median_ms && p.tokens_per_expert > 0, "a timed point");
        FUZZ_CHECK(demos::find_roofline(set, rl.shape) != nullptr, "found by its shape");
    }
    return 0;
}
