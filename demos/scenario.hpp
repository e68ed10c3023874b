// Scenario: every parameter of one experiment and its seed. It validates itself and saves/loads as TOML,
// so a scenario file reproduces a run exactly. The one input contract of the engine.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/api.hpp"

namespace demos {

enum class Demo { Routing, Dispatch, Layer, Pipeline };
enum class BackendChoice { Auto, Cpu, Cuda };

Demo parse_demo(const std::string& s);  // throws BadInput
const char* demo_name(Demo d);
BackendChoice parse_backend(const std::string& s);
const char* backend_name(BackendChoice b);

struct Scenario {
    // The layer.
    std::int64_t tokens = 4096;
    int experts = 16;
    int top_k = 2;
    int hidden = 1024;
    int ffn = 2816;
    std::string dtype = "bf16";  // bf16 | fp16 | fp8 | fp32: bytes per element b in the traffic (kernels compute bf16)
    std::string skew = "uniform";
    std::string router = "popularity";  // popularity | gate
    bool renormalize = true;
    double capacity_factor = 0.0;
    std::string drop_policy = "token";  // token | probability
    int align = 1;
    // sort | atomic | scan | nopack. scan by default: on the H200 the fastest packing at S1 and S3 (1.6x sort), within
    // 4 us of atomic at the small shapes, and its rows keep sort's order where atomic's follow the GPU's scheduling
    // (kernels/bench/RESULTS.md, forty-second and forty-third sessions).
    std::string strategy = "scan";
    // Parallelism and pipeline.
    int ranks = 1;
    int micro_batches = 4;
    int layers = 1;
    int attention_replicas = 1;  // n_a in MegaScale-Infer
    double link_gbps = 400.0;    // per-GPU link bandwidth for the modelled A2E/E2A transfer, GB/s
    bool pace_link = false;      // measured pipeline: pace the A2E/E2A copies at link_gbps (spans become emulated)
    // Decode attention of the measured pipeline (MegaScale-Infer's attention pool): one query per sequence over a
    // bf16 KV cache of `context` positions, q_heads query heads sharing kv_groups KV heads (GQA), head dim 128.
    int context = 512;      // s: KV positions per sequence
    int q_heads = 16;       // query heads
    int kv_groups = 4;      // KV heads (GQA groups); divides q_heads
    int attention_sms = 0;  // SMs of the attention pool on one GPU (green contexts); 0 = half the device
    // Linear cost model of MegaScale-Infer, in microseconds: Ta = k1·ba + k2, Te = k3·be + k4.
    double k1 = 0.05, k2 = 120.0, k3 = 0.08, k4 = 90.0;
    // Direct stage times per micro-batch in ms; < 0 means derive from the linear model.
    double ta_ms = -1, te_ms = -1, tc_ms = -1;
    // Run.
    std::uint64_t seed = 0;
    std::string backend = "auto";  // auto | cpu | cuda
    int repeats = 1;

    // Messages naming each bad parameter and its allowed range; empty when valid.
    std::vector<std::string> validate() const;
    // Throws BadInput with every message joined, when invalid.
    void check() const;

    moe::LayerSpec layer_spec() const;
    int bytes_per_elem() const;

    // Every parameter, one `key = value` line each (see demos/params.hpp). A seed of 2^63 or more is written as a
    // decimal string (seed = "18446744073709551615") because TOML integers are signed 64-bit; smaller seeds are
    // plain integers. Strings are escaped, so any scenario that validates loads back equal.
    std::string to_toml() const;
    // Parses a scenario over `base` (keys not in the text keep base's values); unknown keys, wrong types and
    // files nested or sized past the limits are BadInput naming the file, key and line. Does not validate.
    static Scenario from_toml(const std::string& text, const std::string& source_name, const Scenario& base);
    static Scenario from_toml(const std::string& text, const std::string& source_name);
    // Reads a regular file of at most 1 MiB; anything else (a folder, a FIFO, /dev/zero) is BadInput.
    static Scenario load(const std::string& path);
    // Writes through a temporary file and a rename; follows a symlink to its target; /dev/stdout works.
    void save(const std::string& path) const;

    bool operator==(const Scenario& o) const { return to_toml() == o.to_toml(); }
};

// Named starting points: the classroom default and published model shapes.
struct Preset {
    std::string name;
    std::string description;
    Scenario scenario;
};
const std::vector<Preset>& presets();

}  // namespace demos
