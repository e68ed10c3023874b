// Registers every scenario flag with its help text and merges it over a --scenario file.
// Flags the user did not type leave the file's (or the default's) value alone.
#include "app/cli/scenario_flags.hpp"

#include "kernels/common/error.hpp"

namespace moelab_cli {

namespace {
// Default values live in the Scenario; flags write into a scratch copy and are applied only when given.
demos::Scenario& scratch(ScenarioFlags& f) { return f.s; }
}  // namespace

void add_scenario_flags(CLI::App* app, ScenarioFlags& f) {
    f.app = app;
    auto& s = scratch(f);
    const char* g = "Scenario";
    app->add_option("--scenario", f.scenario_file, "Load a scenario TOML file; flags given beside it override it")
        ->group(g);
    app->add_option("--tokens,-T", s.tokens, "Tokens in the batch, T (1..1048576)")->group(g);
    app->add_option("--experts,-E", s.experts, "Experts, E (1..1024)")->group(g);
    app->add_option("--top-k,-k", s.top_k, "Experts per token, k (1..E)")->group(g);
    app->add_option("--hidden,-d", s.hidden, "Hidden size d (1..32768)")->group(g);
    app->add_option("--ffn,-F", s.ffn, "Expert FFN width F (1..65536)")->group(g);
    app->add_option("--dtype", s.dtype, "Bytes per element b in the traffic: bf16, fp16, fp8, fp32 (kernels compute bf16)")
        ->group(g);
    app->add_option("--skew", s.skew, "Routing skew: uniform, zipf:S, hot:R (one expert R× as popular)")->group(g);
    app->add_option("--router", s.router, "Logits: popularity (log p + Gumbel) or gate (x·Wg + log p)")->group(g);
    app->add_flag("--no-renormalize", f.no_renormalize, "Keep the raw softmax weights of the top-k")->group(g);
    app->add_option("--capacity-factor,--cf", s.capacity_factor, "Capacity C = ceil(cf·T·k/E); 0 = dropless (0..64)")
        ->group(g);
    app->add_option("--drop-policy", s.drop_policy, "Who is dropped past capacity: token (order) or probability")
        ->group(g);
    app->add_option("--align", s.align, "Pad each expert's rows to a multiple of this (1..1024)")->group(g);
    app->add_option("--strategy", s.strategy, "Dispatch strategy: sort, atomic, scan, nopack")->group(g);
    app->add_option("--ranks,-G", s.ranks, "Expert-parallel ranks G, E/G experts each (1..64; divides E)")->group(g);
    app->add_option("--micro-batches,-m", s.micro_batches, "Ping-pong micro-batches m (1..64)")->group(g);
    app->add_option("--layers,-L", s.layers, "MoE layers L in the pipeline model (1..512)")->group(g);
    app->add_option("--attention-replicas", s.attention_replicas, "Attention replicas n_a (1..256)")->group(g);
    app->add_option("--link-gbps", s.link_gbps, "Per-GPU link bandwidth for modelled transfers, GB/s")->group(g);
    app->add_flag("--pace-link", s.pace_link,
                  "Measured pipeline: pace the A2E/E2A copies at --link-gbps to emulate a slower link")
        ->group(g);
    app->add_option("--context", s.context, "Attention context length s, KV positions per sequence (1..1048576)")
        ->group(g);
    app->add_option("--q-heads", s.q_heads, "Attention query heads (1..256), head dim 128")->group(g);
    app->add_option("--kv-groups", s.kv_groups, "KV heads / GQA groups (1..256; divides --q-heads)")->group(g);
    app->add_option("--attention-sms", s.attention_sms,
                    "SMs of the attention pool on one GPU (0 = half; the experts get the rest)")
        ->group(g);
    app->add_option("--k1", s.k1, "Ta = k1·ba + k2 (µs per token)")->group(g);
    app->add_option("--k2", s.k2, "Ta = k1·ba + k2 (µs)")->group(g);
    app->add_option("--k3", s.k3, "Te = k3·be + k4 (µs per token)")->group(g);
    app->add_option("--k4", s.k4, "Te = k3·be + k4 (µs)")->group(g);
    app->add_option("--ta-ms", s.ta_ms, "Attention time per micro-batch, ms (overrides k1, k2)")->group(g);
    app->add_option("--te-ms", s.te_ms, "Expert time per micro-batch, ms (overrides k3, k4)")->group(g);
    app->add_option("--tc-ms", s.tc_ms, "One-way transfer time per micro-batch, ms (overrides --link-gbps)")->group(g);
    app->add_option("--seed", s.seed, "Seed of every generated input")->group(g);
    app->add_option("--backend", s.backend, "cpu, cuda or auto (the GPU when there is one)")->group(g);
    app->add_option("--repeats", s.repeats, "Timed repeats per stage (1..1000)")->group(g);
}

demos::Scenario resolve_scenario(const ScenarioFlags& f) {
    demos::Scenario out;
    if (!f.scenario_file.empty()) out = demos::Scenario::load(f.scenario_file);
    const demos::Scenario& s = f.s;
    auto given = [&](const char* name) { return f.app->get_option(name)->count() > 0; };
    if (given("--tokens")) out.tokens = s.tokens;
    if (given("--experts")) out.experts = s.experts;
    if (given("--top-k")) out.top_k = s.top_k;
    if (given("--hidden")) out.hidden = s.hidden;
    if (given("--ffn")) out.ffn = s.ffn;
    if (given("--dtype")) out.dtype = s.dtype;
    if (given("--skew")) out.skew = s.skew;
    if (given("--router")) out.router = s.router;
    if (f.no_renormalize) out.renormalize = false;
    if (given("--capacity-factor")) out.capacity_factor = s.capacity_factor;
    if (given("--drop-policy")) out.drop_policy = s.drop_policy;
    if (given("--align")) out.align = s.align;
    if (given("--strategy")) out.strategy = s.strategy;
    if (given("--ranks")) out.ranks = s.ranks;
    if (given("--micro-batches")) out.micro_batches = s.micro_batches;
    if (given("--layers")) out.layers = s.layers;
    if (given("--attention-replicas")) out.attention_replicas = s.attention_replicas;
    if (given("--link-gbps")) out.link_gbps = s.link_gbps;
    if (given("--pace-link")) out.pace_link = s.pace_link;
    if (given("--context")) out.context = s.context;
    if (given("--q-heads")) out.q_heads = s.q_heads;
    if (given("--kv-groups")) out.kv_groups = s.kv_groups;
    if (given("--attention-sms")) out.attention_sms = s.attention_sms;
    if (given("--k1")) out.k1 = s.k1;
    if (given("--k2")) out.k2 = s.k2;
    if (given("--k3")) out.k3 = s.k3;
    if (given("--k4")) out.k4 = s.k4;
    if (given("--ta-ms")) out.ta_ms = s.ta_ms;
    if (given("--te-ms")) out.te_ms = s.te_ms;
    if (given("--tc-ms")) out.tc_ms = s.tc_ms;
    if (given("--seed")) out.seed = s.seed;
    if (given("--backend")) out.backend = s.backend;
    if (given("--repeats")) out.repeats = s.repeats;
    out.check();
    return out;
}

}  // namespace moelab_cli
