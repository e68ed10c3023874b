// Saved sweeps as rooflines (demos/roofline_saved.hpp): a hand-written file read back point by point, the run of
// record carried in the binary, and bad files refused with messages that name what is wrong.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "demos/roofline_saved.hpp"
#include "kernels/common/error.hpp"
#include "tests/support/scratch.hpp"

namespace {

// Two sizes of one shape (auto, its probe, the balanced run), a row of another stage, a skewed row and a variant
// that is not auto's (all three ignored), then a second shape with one size.
const char* kSaved = R"({
  "ceilings": {"read_gbps": 4000, "gemm_tflops": 800, "copy_gbps": 3500},
  "date": "2026-12-01 04:29 UTC", "device": "NVIDIA H200",
  "rows": [
    {"stage": "experts", "skew": "uniform", "shape": "tiny", "hidden": 256, "ffn": 512, "experts": 16, "top_k": 2,
     "tokens_per_expert": 8, "variant": "auto:mid", "median_ms": 0.05, "p95_ms": 0.06, "floor_ms": 0.04,
     "wrong": 0, "clocks": "SM 1,980 MHz of 1,980", "torch_ms": 0.1, "torch_variant": "_grouped_mm"},
    {"stage": "experts", "skew": "uniform", "shape": "tiny", "hidden": 256, "ffn": 512, "experts": 16, "top_k": 2,
     "tokens_per_expert": 8, "variant": "probe-stream", "median_ms": 0.045, "p95_ms": 0.046, "floor_ms": 0.04,
     "wrong": -1},
    {"stage": "experts", "skew": "uniform", "shape": "tiny", "hidden": 256, "ffn": 512, "experts": 16, "top_k": 2,
     "tokens_per_expert": 8, "variant": "decode", "median_ms": 0.07, "p95_ms": 0.08, "floor_ms": 0.04, "wrong": 0},
    {"stage": "experts", "skew": "zipf:1", "shape": "tiny", "hidden": 256, "ffn": 512, "experts": 16, "top_k": 2,
     "tokens_per_expert": 8, "variant": "auto:wgmma", "median_ms": 9, "p95_ms": 9, "floor_ms": 0.04, "wrong": 0},
    {"stage": "combine", "skew": "uniform", "shape": "tiny", "hidden": 256, "ffn": 512, "experts": 16, "top_k": 2,
     "tokens_per_expert": 8, "variant": "auto", "median_ms": 9, "p95_ms": 9, "floor_ms": 0.04, "wrong": 0},
    {"stage": "experts", "skew": "uniform", "shape": "tiny", "hidden": 256, "ffn": 512, "experts": 16, "top_k": 2,
     "tokens_per_expert": 512, "variant": "auto:wgmma", "median_ms": 0.3, "p95_ms": 0.31, "floor_ms": 0.25,
     "wrong": 2},
    {"stage": "experts", "skew": "uniform", "shape": "tiny", "hidden": 256, "ffn": 512, "experts": 16, "top_k": 2,
     "tokens_per_expert": 512, "variant": "probe-dense", "median_ms": 0.27, "p95_ms": 0.28, "floor_ms": 0.25},
    {"stage": "experts", "skew": "uniform", "shape": "tiny", "hidden": 256, "ffn": 512, "experts": 16, "top_k": 2,
     "tokens_per_expert": 512, "variant": "probe-balanced", "median_ms": 0.28, "p95_ms": 0.29, "floor_ms": 0.25},
    {"stage": "experts", "skew": "uniform", "shape": "wide", "hidden": 4096, "ffn": 1408, "experts": 64, "top_k": 8,
     "tokens_per_expert": 64, "variant": "auto:wgmma", "median_ms": 0.55, "floor_ms": 0.49, "wrong": 0}
  ]
})";

std::string with_rows(const std::string& rows) {
    return R"({"ceilings": {"read_gbps": 4000, "gemm_tflops": 800}, "rows": [)" + rows + "]}";
}
const char* kRow = R"({"stage": "experts", "skew": "uniform", "hidden": 256, "ffn": 512, "experts": 16, "top_k": 2, )"
                   R"("tokens_per_expert": 8, "variant": "auto:mid", "median_ms": 0.05, "floor_ms": 0.04)";

// The BadInput message of parsing `text`, or "" when it parsed.
std::string refusal(const std::string& text) {
    try {
        demos::rooflines_from_sweep_json(text, "saved.json");
    } catch (const moe::Error& e) {
        EXPECT_EQ(e.kind(), moe::ErrorKind::BadInput) << e.what();
        return e.what();
    }
    return "";
}

}  // namespace

TEST(RooflineSaved, ReadsEveryPointWithItsProbePeerAndProvenance) {
    const auto set = demos::rooflines_from_sweep_json(kSaved, "saved.json");
    ASSERT_EQ(set.size(), 2u);
    const demos::ExpertRoofline& a = set[0];
    EXPECT_EQ(a.shape, (demos::RooflineShape{256, 512, 16, 2}));
    EXPECT_EQ(a.shape_name, "tiny");
    EXPECT_EQ(a.recorded, "NVIDIA H200, 2026-12-01 04:29 UTC");
    EXPECT_EQ(a.source, demos::lesson::Source::MeasuredGpu);
    EXPECT_DOUBLE_EQ(a.ceilings.read_gbps, 4000);
    EXPECT_DOUBLE_EQ(a.ceilings.gemm_tflops, 800);
    EXPECT_EQ(a.ceilings.device, "NVIDIA H200");
    ASSERT_FALSE(a.lines.empty());
    EXPECT_DOUBLE_EQ(a.lines.front().tokens_per_expert, 1);
    EXPECT_DOUBLE_EQ(a.lines.back().tokens_per_expert, 4096);
    ASSERT_EQ(a.points.size(), 2u);  // the skewed row, the combine row and the decode row are not auto's points
    const demos::RooflinePoint& p8 = a.points[0];
    EXPECT_DOUBLE_EQ(p8.tokens_per_expert, 8);
    EXPECT_EQ(p8.impl, "mid");
    EXPECT_DOUBLE_EQ(p8.median_ms, 0.05);
    EXPECT_DOUBLE_EQ(p8.p95_ms, 0.06);
    EXPECT_DOUBLE_EQ(p8.floor_ms, 0.04);
    EXPECT_EQ(p8.wrong, 0);
    EXPECT_EQ(p8.clocks, "SM 1,980 MHz of 1,980");
    EXPECT_EQ(p8.probe, "stream");
    EXPECT_DOUBLE_EQ(p8.probe_ms, 0.045);
    EXPECT_DOUBLE_EQ(p8.balanced_ms, 0);
    EXPECT_EQ(p8.peer, "torch._grouped_mm");
    EXPECT_DOUBLE_EQ(p8.peer_ms, 0.1);
    EXPECT_EQ(p8.source, demos::lesson::Source::MeasuredGpu);
    EXPECT_NEAR(p8.pct_of_roofline(), 80.0, 1e-9);
    const demos::RooflinePoint& p512 = a.points[1];
    EXPECT_EQ(p512.impl, "wgmma");
    EXPECT_EQ(p512.wrong, 2);
    EXPECT_EQ(p512.probe, "dense");
    EXPECT_DOUBLE_EQ(p512.probe_ms, 0.27);
    EXPECT_DOUBLE_EQ(p512.balanced_ms, 0.28);
    EXPECT_DOUBLE_EQ(p512.peer_ms, 0);  // no torch_ms in that row
    EXPECT_TRUE(p512.peer.empty());
    const demos::ExpertRoofline& b = set[1];
    EXPECT_EQ(b.shape_name, "wide");
    ASSERT_EQ(b.points.size(), 1u);
    EXPECT_DOUBLE_EQ(b.points[0].p95_ms, 0.55);  // no p95: the median
    EXPECT_EQ(b.points[0].wrong, 0);
    EXPECT_EQ(demos::find_roofline(set, {4096, 1408, 64, 8}), &set[1]);
    EXPECT_EQ(demos::find_roofline(set, {4096, 1408, 64, 4}), nullptr);
    EXPECT_EQ(demos::describe_shapes(set),
              "tiny (--hidden 256 --ffn 512 --experts 16 --top-k 2), wide (--hidden 4096 --ffn 1408 --experts 64 "
              "--top-k 8)");
}

TEST(RooflineSaved, TheRunOfRecordCarriesTheSweptShapes) {
    // kernels/bench/runs/*.json, embedded: the classroom shape, S1 and S3 at the sweep's five sizes, each timed
    // point checked right, with its probe and the PyTorch peer.
    const auto& set = demos::recorded_rooflines();
    for (const demos::RooflineShape& s :
         {demos::RooflineShape{1024, 2816, 16, 2}, demos::RooflineShape{4096, 1408, 64, 8},
          demos::RooflineShape{7168, 2048, 256, 8}}) {
        const demos::ExpertRoofline* rl = demos::find_roofline(set, s);
        ASSERT_NE(rl, nullptr) << s.hidden;
        EXPECT_FALSE(rl->recorded.empty());
        EXPECT_EQ(rl->source, demos::lesson::Source::MeasuredGpu);
        for (double tpe : {1.0, 8.0, 64.0, 512.0, 4096.0}) {
            const auto p = std::find_if(rl->points.begin(), rl->points.end(),
                                        [&](const demos::RooflinePoint& q) { return q.tokens_per_expert == tpe; });
            ASSERT_NE(p, rl->points.end()) << rl->shape_name << " " << tpe;
            EXPECT_FALSE(p->impl.empty());
            EXPECT_EQ(p->wrong, 0) << rl->shape_name << " " << tpe;
            EXPECT_GT(p->probe_ms, 0) << rl->shape_name << " " << tpe;
            EXPECT_GT(p->peer_ms, 0) << rl->shape_name << " " << tpe;
            // Timed, so under the roofline's time at most by the board's spread over the run's ceilings.
            EXPECT_GT(p->pct_of_roofline(), 20) << rl->shape_name << " " << tpe;
            EXPECT_LT(p->pct_of_roofline(), 110) << rl->shape_name << " " << tpe;
        }
    }
}

TEST(RooflineSaved, BadFilesAreRefusedWithWhatIsWrong) {
    EXPECT_NE(refusal("").find("not JSON"), std::string::npos);
    EXPECT_NE(refusal("{\"rows\": [").find("not JSON"), std::string::npos);
    EXPECT_NE(refusal("[1, 2]").find("no 'ceilings' and 'rows'"), std::string::npos);
    EXPECT_NE(refusal(R"({"ceilings": {}, "rows": []})").find("ceilings: no 'read_gbps'"), std::string::npos);
    EXPECT_NE(refusal(R"({"ceilings": {"read_gbps": 0, "gemm_tflops": 1}, "rows": []})").find("must be > 0"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"ceilings": {"read_gbps": "fast", "gemm_tflops": 1}, "rows": []})").find("not a number"),
              std::string::npos);
    EXPECT_NE(refusal(with_rows("")).find("no expert FFN rows"), std::string::npos);
    EXPECT_NE(refusal(with_rows("7")).find("row 1: not an object"), std::string::npos);
    EXPECT_EQ(refusal(with_rows(std::string(kRow) + "}")), "");
    const std::string row = kRow;
    EXPECT_NE(refusal(with_rows(row + R"(, "median_ms": -1})")).find("'median_ms' is -1"), std::string::npos);
    std::string bad_k = row + "}";
    bad_k.replace(bad_k.find("\"top_k\": 2"), 10, "\"top_k\": 17");
    EXPECT_NE(refusal(with_rows(bad_k)).find("top_k is more than the experts"), std::string::npos);
    std::string half = row + "}";
    half.replace(half.find("\"hidden\": 256"), 13, "\"hidden\": 2.5");
    EXPECT_NE(refusal(with_rows(half)).find("'hidden' is 2.5; allowed: a whole number"), std::string::npos);
    std::string zero = row + "}";
    zero.replace(zero.find("\"tokens_per_expert\": 8"), 22, "\"tokens_per_expert\": 0");
    EXPECT_NE(refusal(with_rows(zero)).find("tokens_per_expert must be > 0"), std::string::npos);
    // A count of wrong elements past int64 is still a wrong point, not undefined behaviour.
    std::string huge = row + R"(, "wrong": 1e300})";
    const auto h = demos::rooflines_from_sweep_json(with_rows(huge), "saved.json");
    EXPECT_EQ(h[0].points[0].wrong, std::int64_t(1) << 62);
    // The source names the file in every message.
    EXPECT_NE(refusal("[]").find("saved.json"), std::string::npos);
}

TEST(RooflineSaved, LoadingAFileChecksTheShapeAndNamesTheChoices) {
    const std::string dir = moelab_test::scratch(
        (std::filesystem::temp_directory_path() / ("moelab_roofline_saved_" + std::to_string(::getpid()))).string());
    std::filesystem::create_directories(dir);
    const std::string path = dir + "/sweep.json";
    std::ofstream(path) << kSaved;
    EXPECT_EQ(demos::load_rooflines(path).size(), 2u);
    EXPECT_EQ(demos::load_rooflines_for(path, {256, 512, 16, 2}).size(), 2u);
    try {
        demos::load_rooflines_for(path, {1024, 2816, 16, 2});
        ADD_FAILURE() << "a shape the file does not have";
    } catch (const moe::Error& e) {
        EXPECT_EQ(e.kind(), moe::ErrorKind::BadInput);
        const std::string m = e.what();
        EXPECT_NE(m.find("--roofline " + path + ": no sweep of this scenario's shape (--hidden 1024 --ffn 2816"),
                  std::string::npos)
            << m;
        EXPECT_NE(m.find("it has tiny (--hidden 256 --ffn 512 --experts 16 --top-k 2)"), std::string::npos) << m;
    }
    for (const std::string& p : {dir + "/missing.json", dir}) {
        try {
            demos::load_rooflines(p);
            ADD_FAILURE() << p;
        } catch (const moe::Error& e) {
            EXPECT_EQ(e.kind(), moe::ErrorKind::BadInput);
            EXPECT_NE(std::string(e.what()).find("--roofline " + p), std::string::npos) << e.what();
        }
    }
    std::filesystem::remove_all(dir);
}
