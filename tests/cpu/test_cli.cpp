// The moelab CLI as a user meets it: the README's example commands, JSON fields, --dump files, scenario
// round trips, and bad input: each case expects the exact exit code and a message naming the flag.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "demos/scenario.hpp"
#include "kernels/api.hpp"
#include "tests/support/scratch.hpp"
#include "tests/support/test_support.hpp"

namespace {

using Cli = moelab_test::Shell;
Cli moelab(const std::string& args) { return moelab_test::shell(std::string(MOELAB_BIN) + " " + args); }

std::string tmpdir() {
    auto d = std::filesystem::temp_directory_path() / ("moelab_cli_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return moelab_test::scratch(d.string());
}

std::string write_file(const std::string& name, const std::string& text) {
    std::string path = tmpdir() + "/" + name;
    std::ofstream(path) << text;
    return path;
}

}  // namespace

TEST(Cli, ConceptPageDemoPrintsJson) {
    auto r = moelab("run routing --experts 16 --tokens 4096 --top-k 1 --skew hot:6.667 --seed 0 --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    auto j = nlohmann::json::parse(r.out);
    for (const char* key : {"expert_loads", "straggler_factor", "comm_bytes", "backend", "stages", "stage_ms"})
        EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j["expert_loads"].size(), 16u);
    std::int64_t sum = 0;
    for (auto& v : j["expert_loads"]) sum += v.get<std::int64_t>();
    EXPECT_EQ(sum, 4096);
    double share = j["expert_loads"][0].get<double>() / 4096;
    double p = 6.0 / (6.0 + 15 * 0.9);
    EXPECT_NEAR(share, p, 4 * std::sqrt(p * (1 - p) / 4096));
    EXPECT_DOUBLE_EQ(j["comm_bytes"].get<double>(), 2.0 * 4096 * 1 * 1024 * 2);
    EXPECT_EQ(j["loads_provenance"], "measured-cpu");
    EXPECT_TRUE(j["stage_ms"].contains("route"));
}

TEST(Cli, VersionHelpAndDevices) {
    auto v = moelab("--version");
    EXPECT_EQ(v.rc, 0);
    EXPECT_NE(v.out.find("moelab 0."), std::string::npos);
    auto h = moelab("--help");
    EXPECT_EQ(h.rc, 0);
    EXPECT_NE(h.out.find("run"), std::string::npos);
    auto rh = moelab("run --help");
    EXPECT_EQ(rh.rc, 0);
    EXPECT_NE(rh.out.find("--capacity-factor"), std::string::npos);
    auto d = moelab("devices");
    EXPECT_EQ(d.rc, 0);
    EXPECT_NE(d.out.find("CPU reference"), std::string::npos);
}

TEST(Cli, CsvAndTableOutputs) {
    auto c = moelab("run routing --tokens 512 --csv");
    ASSERT_EQ(c.rc, 0) << c.out;
    EXPECT_EQ(c.out.rfind("section,key,index,value,unit,provenance", 0), 0u);
    auto t = moelab("run dispatch --tokens 512 -q");
    ASSERT_EQ(t.rc, 0) << t.out;
    EXPECT_NE(t.out.find("straggler factor"), std::string::npos);
    EXPECT_NE(t.out.find("dispatch strategies"), std::string::npos);
    auto p = moelab("run pipeline -m 2 --ta-ms 1 --te-ms 1 --tc-ms 1 -q");
    ASSERT_EQ(p.rc, 0) << p.out;
    EXPECT_NE(p.out.find("NOT met"), std::string::npos);  // m=2 < 2(1+1/1)=4
}

TEST(Cli, LayerTableNamesThePackingThatRan) {
    // scan is the default packing (the fastest on the GPU, sort's row order); a flag changes it, and the CPU
    // reference says that it packs every strategy the same way.
    auto d = moelab("run layer --tokens 64 --experts 4 --top-k 2 --hidden 16 --ffn 8 -q");
    ASSERT_EQ(d.rc, 0) << d.out;
    EXPECT_NE(d.out.find("packing strategy: scan (on the CPU reference"), std::string::npos) << d.out;
    auto a = moelab("run layer --tokens 64 --experts 4 --top-k 2 --hidden 16 --ffn 8 -q --strategy atomic");
    ASSERT_EQ(a.rc, 0) << a.out;
    EXPECT_NE(a.out.find("packing strategy: atomic"), std::string::npos) << a.out;
}

TEST(Cli, DumpWritesNpyFiles) {
    std::string dir = tmpdir() + "/dump";
    auto r = moelab("run layer --tokens 64 --experts 4 --top-k 2 --hidden 16 --ffn 8 -q --dump " + dir);
    ASSERT_EQ(r.rc, 0) << r.out;
    for (const char* f : {"x.npy", "logits.npy", "topk_ids.npy", "topk_weights.npy", "counts.npy", "offsets.npy",
                          "packed_order.npy", "inverse_map.npy", "expert_outputs.npy", "combine_output.npy"}) {
        std::ifstream in(dir + "/" + f, std::ios::binary);
        ASSERT_TRUE(in) << f;
        char magic[6];
        in.read(magic, 6);
        EXPECT_EQ(std::string(magic + 1, 5), "NUMPY") << f;
    }
    auto sz = std::filesystem::file_size(dir + "/x.npy");
    EXPECT_EQ(sz, 128u + 64 * 16 * 4);  // header padded to 128 bytes, float32 data
}

TEST(Cli, ScenarioFileRoundTripsAndFlagsOverride) {
    std::string path = tmpdir() + "/s.toml";
    auto r = moelab("run routing --tokens 300 --experts 8 --skew zipf:1.5 --seed 9 -q --json --save-scenario " + path);
    ASSERT_EQ(r.rc, 0) << r.out;
    auto s = demos::Scenario::load(path);
    EXPECT_EQ(s.tokens, 300);
    EXPECT_EQ(s.skew, "zipf:1.5");
    auto again = moelab("run routing --scenario " + path + " --json");
    ASSERT_EQ(again.rc, 0);
    EXPECT_EQ(nlohmann::json::parse(again.out)["expert_loads"], nlohmann::json::parse(r.out)["expert_loads"]);
    auto over = moelab("run routing --scenario " + path + " --tokens 100 --json");
    EXPECT_EQ(nlohmann::json::parse(over.out)["scenario"]["tokens"], 100);
}

struct BadCase {
    const char* args;
    int rc;
    const char* must_contain;
};

class CliBadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(CliBadInput, ExitsWithCodeAndNamesTheFlag) {
    const auto& c = GetParam();
    std::string args = c.args;
    auto pos = args.find("@MALFORMED");
    if (pos != std::string::npos)
        args.replace(pos, 10, write_file("malformed.toml", "tokens = 4096\nexperts = [1,\n"));
    pos = args.find("@UNKNOWNKEY");
    if (pos != std::string::npos)
        args.replace(pos, 11, write_file("unknown.toml", "tokens = 64\n\nexprets = 8\n"));
    pos = args.find("@WRONGTYPE");
    if (pos != std::string::npos) args.replace(pos, 10, write_file("wrongtype.toml", "tokens = \"many\"\n"));
    auto r = moelab(args);
    EXPECT_EQ(r.rc, c.rc) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.must_contain), std::string::npos) << args << "\n" << r.out;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CliBadInput,
    ::testing::Values(
        BadCase{"run routing --experts 4 --top-k 8", 2, "top-k must be at least 1 and at most the number of experts"},
        BadCase{"run routing --top-k 0", 2, "--top-k 0"},
        BadCase{"run routing --tokens 0", 2, "--tokens 0"},
        BadCase{"run routing --experts 0", 2, "--experts 0"},
        BadCase{"run routing --capacity-factor -0.5", 2, "--capacity-factor -0.5"},
        BadCase{"run routing --skew gauss:2", 2, "--skew 'gauss:2': unknown skew family"},
        BadCase{"run routing --skew zipf:-1", 2, "--skew 'zipf:-1'"},
        BadCase{"run routing --hidden 0", 2, "--hidden 0"},
        BadCase{"run routing --hidden -5", 2, "--hidden -5"},
        BadCase{"run routing --ffn 0", 2, "--ffn 0"},
        BadCase{"run routing --scenario @MALFORMED", 2, "malformed.toml:2"},
        BadCase{"run routing --scenario /nonexistent/s.toml", 2, "cannot open"},
        BadCase{"run routing --scenario @UNKNOWNKEY", 2, "unknown.toml:3: unknown key 'exprets'"},
        BadCase{"run routing --scenario @WRONGTYPE", 2, "key 'tokens': expected an integer"},
        BadCase{"run layer --tokens 1000000 --hidden 32768 --ffn 65536 --experts 64", 2, "needs about"},
        BadCase{"run routing --drop-policy random", 2, "--drop-policy 'random'"},
        BadCase{"run routing --strategy bogus", 2, "--strategy 'bogus'"},
        BadCase{"run routing --ranks 3", 2, "--ranks 3"},
        BadCase{"run routing --backend tpu", 2, "--backend 'tpu'"},
        BadCase{"run routing --tokens abc", 2, "--tokens"},
        BadCase{"run nosuchdemo", 2, "nosuchdemo"},
        BadCase{"run routing --dtype int4", 2, "--dtype 'int4'"},
        BadCase{"run routing --micro-batches 0", 2, "--micro-batches 0"},
        BadCase{"run routing --align 0", 2, "--align 0"},
        BadCase{"run routing --frobnicate", 2, "--frobnicate"},
        BadCase{"run routing --json --csv", 2, "--json"},
        BadCase{"run routing --layers 100000", 2, "--layers 100000"}));

TEST(Cli, CudaBackendWithoutGpuIsAClearRuntimeError) {
    if (!moe::gpu::devices().empty()) GTEST_SKIP() << "a GPU is present; this case is for machines without one";
    auto r = moelab("run routing --backend cuda");
    EXPECT_EQ(r.rc, 1) << r.out;
    EXPECT_NE(r.out.find("--backend cuda: no usable GPU"), std::string::npos) << r.out;
    auto a = moelab("run routing --backend auto --json");
    ASSERT_EQ(a.rc, 0);
    EXPECT_EQ(nlohmann::json::parse(a.out)["backend"], "cpu");
}

// A saved expert FFN sweep read on any machine: the run of record the repository carries, every shape and size, and
// the line against the targets; a file that is not a sweep, or --from with another stage, is bad input naming --from.
TEST(Cli, BenchExpertsSummarisesASavedSweep) {
    auto r = moelab(std::string("bench experts --from ") + MOELAB_SOURCE_DIR +
                    "/kernels/bench/runs/experts-sweep-h200.json");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("measured on NVIDIA H200"), std::string::npos) << r.out;
    for (const char* shape : {"classroom", "S1", "S3"})
        EXPECT_NE(r.out.find(std::string("\n  ") + shape + " "), std::string::npos) << shape << "\n" << r.out;
    EXPECT_NE(r.out.find("of 15 sizes at >= 80% of the roofline"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("of 15 at >= 1.2x PyTorch"), std::string::npos) << r.out;
    auto bad = moelab("bench experts --from " + write_file("not-a-sweep.json", R"({"rows": []})"));
    EXPECT_EQ(bad.rc, 2) << bad.out;
    EXPECT_NE(bad.out.find("--from"), std::string::npos) << bad.out;
    auto other = moelab("bench route --from " + write_file("sweep.json", "{}"));
    EXPECT_EQ(other.rc, 2) << other.out;
    EXPECT_NE(other.out.find("allowed only with 'bench experts'"), std::string::npos) << other.out;
}

TEST(Cli, PlanFindsTheBalancedReplicaCount) {
    auto r = moelab("plan --tokens 65536 --experts 16 --top-k 2 --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["plans"].size(), 128u);
    int na = j["best"]["attention_replicas"];
    // The best plan balances Ta and Te within one replica of the rule n_a ≈ k1·E/(k3·K) = 5.
    EXPECT_NEAR(na, j["balanced_replicas"].get<double>(), 1.5);
    auto bad = moelab("plan --attention-replicas 0");
    EXPECT_EQ(bad.rc, 2);
}
