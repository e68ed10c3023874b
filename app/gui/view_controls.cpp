// Controls: every parameter of the scenario, with a "(?)" saying what it means in an MoE layer, model presets,
// and each validation message drawn under the control that caused it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "app/gui/app_state.hpp"

namespace moelab_gui {
namespace {

const std::int64_t kTokensMin = 1, kTokensMax = std::int64_t{1} << 20;

struct Ctx {
    const Session& ses;
    ViewState& vs;
    bool changed = false;
};

void after(Ctx& c, const char* param, const char* help) {
    help_marker(help);
    error_under(param, c.ses.invalid());
    if (c.ses.error().present && c.ses.error().param == param) {
        error_under(param, {c.ses.error().message});
    }
}

// A combo over fixed strings; its items are anchored as "combo:KEY/ITEM" while it is open.
bool combo(const char* key, const char* label, std::string* value, const char* const* items, int n) {
    int cur = 0;
    for (int i = 0; i < n; ++i)
        if (*value == items[i]) cur = i;
    bool ch = false;
    if (ImGui::BeginCombo(label, value->c_str())) {
        for (int i = 0; i < n; ++i) {
            if (ImGui::Selectable(items[i], i == cur)) {
                *value = items[i];
                ch = true;
            }
            anchor(std::string("combo:") + key + "/" + items[i]);
        }
        ImGui::EndCombo();
    }
    return ch;
}

void section(const char* title) {
    ImGui::Spacing();
    ImGui::PushFont(skin().fonts.bold);
    ImGui::TextUnformatted(title);
    ImGui::PopFont();
    ImGui::Separator();
}

// skew = "uniform" | "zipf:S" | "hot:R"
void split_skew(const std::string& skew, std::string* family, float* strength) {
    auto colon = skew.find(':');
    *family = skew.substr(0, colon);
    *strength = colon == std::string::npos ? 0.0f : static_cast<float>(std::atof(skew.c_str() + colon + 1));
}

std::string join_skew(const std::string& family, float strength) {
    if (family == "uniform") return "uniform";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s:%.4g", family.c_str(), strength);
    return buf;
}

}  // namespace

static void draw_controls(const Session& ses, ViewState& vs, Commands& cmd) {
    demos::Scenario edit = ses.scenario();
    std::string preset = ses.preset();
    demos::Scenario* s = &edit;
    std::string* preset_applied = &preset;
    Ctx c{ses, vs};
    const float w = ImGui::GetFontSize() * 9.5f;
    ImGui::PushItemWidth(w);

    // Messages that name no control shown here go at the top.
    {
        static const char* kParams[] = {"--skew",
                                        "--router",
                                        "--top-k",
                                        "--experts",
                                        "--tokens",
                                        "--hidden",
                                        "--ffn",
                                        "--dtype",
                                        "--capacity-factor",
                                        "--drop-policy",
                                        "--align",
                                        "--strategy",
                                        "--ranks",
                                        "--micro-batches",
                                        "--layers",
                                        "--attention-replicas",
                                        "--link-gbps",
                                        "--k1",
                                        "--k2",
                                        "--k3",
                                        "--k4",
                                        "--ta-ms",
                                        "--te-ms",
                                        "--tc-ms",
                                        "--seed",
                                        "--backend",
                                        "--repeats"};
        std::vector<std::string> other;
        for (const std::string& m : ses.invalid()) {
            bool known = false;
            for (const char* p : kParams) {
                std::size_t n = std::char_traits<char>::length(p);
                if (m.compare(0, n, p) == 0 && m.size() > n && (m[n] == ':' || m[n] == ' ')) known = true;
            }
            if (!known) other.push_back(m);
        }
        if (ses.error().present && ses.error().param.empty()) other.push_back(ses.error().message);
        if (!other.empty()) {
            ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(skin().pal.bad));
            for (const auto& m : other) ImGui::TextWrapped("%s", m.c_str());
            ImGui::PopStyleColor();
            testing::probe().errors["general"] = other.front();
        }
    }

    // Presets.
    const auto& presets = demos::presets();
    const char* cur = preset_applied->empty() ? "(custom)" : preset_applied->c_str();
    if (ImGui::BeginCombo("model preset", cur)) {
        for (const demos::Preset& p : presets) {
            if (ImGui::Selectable(p.name.c_str(), p.name == *preset_applied)) {
                std::string backend = s->backend;
                *s = p.scenario;
                s->backend = backend;  // a preset describes a model, not this machine
                *preset_applied = p.name;
                c.changed = true;
            }
            if (ImGui::IsItemHovered() && !p.description.empty()) wrapped_tooltip(p.description.c_str());
        }
        ImGui::EndCombo();
    }
    anchor("preset");
    after(c, "preset",
          "Published model shapes (experts, top-k, hidden and FFN widths) and the classroom default. Tokens are "
          "scaled to what this machine can run; the backend stays as you set it.");

    section("Routing");
    std::string family;
    float strength = 0;
    split_skew(s->skew, &family, &strength);
    static const char* kFamilies[] = {"uniform", "zipf", "hot"};
    if (combo("skew_family", "skew family", &family, kFamilies, 3)) {
        if (family == "zipf" && strength <= 0) strength = 1.0f;
        if (family == "hot" && strength <= 0) strength = 4.0f;
        s->skew = join_skew(family, strength);
        c.changed = true;
    }
    anchor("skew_family");
    after(c, "--skew",
          "How popular each expert is with the router. uniform: every expert equally likely. zipf:s: expert i has "
          "popularity ∝ 1/(i+1)^s. hot:r: one expert is r times as popular as each of the others. Real routers are "
          "skewed, and the busiest expert sets the layer's time.");
    if (family != "uniform") {
        float lo = family == "zipf" ? 0.0f : 1.0f, hi = family == "zipf" ? 3.0f : 32.0f;
        if (ImGui::SliderFloat("skew strength", &strength, lo, hi, family == "zipf" ? "s = %.2f" : "r = %.2f",
                               family == "hot" ? ImGuiSliderFlags_Logarithmic : 0)) {
            s->skew = join_skew(family, strength);
            c.changed = true;
        }
        anchor("skew_strength");
        help_marker(family == "zipf" ? "Zipf exponent s: 0 is uniform; 1 is typical text-like skew; 2 is very skewed."
                                     : "Hot ratio r: the hot expert gets r times the traffic of any other one. "
                                       "The concept page's example is 6.0/0.9 ≈ 6.67 with E=16, top-1.");
    }
    static const char* kRouters[] = {"popularity", "gate"};
    if (combo("router", "router", &s->router, kRouters, 2)) c.changed = true;
    anchor("router");
    after(c, "--router",
          "popularity: logits are log p + Gumbel noise, which samples k distinct experts exactly in proportion to the "
          "skew. gate: a real gate x·Wg (plus log p), as in a trained model's router.");
    int kmax = std::max(1, std::min(s->experts, 16));
    if (ImGui::SliderInt("top-k", &s->top_k, 1, kmax)) c.changed = true;
    anchor("top_k");
    after(c, "--top-k",
          "Experts per token. Each token's activation is sent to k experts and their outputs are summed, so compute "
          "and dispatch traffic (2·T·k·d·b) both grow linearly with k.");
    if (ImGui::Checkbox("renormalize", &s->renormalize)) c.changed = true;
    anchor("renormalize");
    after(c, "--no-renormalize",
          "Rescale the k gate weights of each token to sum to 1 (Mixtral, Qwen3) or keep the "
          "softmax probabilities as they are.");

    section("Layer shape");
    if (ImGui::SliderInt("experts", &s->experts, 1, 512, "%d", ImGuiSliderFlags_Logarithmic)) c.changed = true;
    anchor("experts");
    after(c, "--experts",
          "E: expert FFNs in the layer. More experts means fewer tokens per expert (smaller GEMMs) and, spread over "
          "GPUs, more destinations for the all-to-all.");
    if (ImGui::SliderScalar("tokens", ImGuiDataType_S64, &s->tokens, &kTokensMin, &kTokensMax, "%lld",
                            ImGuiSliderFlags_Logarithmic))
        c.changed = true;
    anchor("tokens");
    after(c, "--tokens",
          "T: tokens in the micro-batch (prefill: prompt tokens; decode: one per sequence). The mean load per expert "
          "is T·k/E.");
    if (ImGui::SliderInt("hidden d", &s->hidden, 64, 16384, "%d", ImGuiSliderFlags_Logarithmic)) c.changed = true;
    anchor("hidden");
    after(c, "--hidden",
          "d: width of each token's activation vector, the row that dispatch copies and the all-to-all "
          "sends. Bytes per row = d·b.");
    if (ImGui::SliderInt("FFN width", &s->ffn, 64, 32768, "%d", ImGuiSliderFlags_Logarithmic)) c.changed = true;
    anchor("ffn");
    after(c, "--ffn",
          "F: inner width of each expert's SiLU-gated FFN (w1: 2F×d, w2: d×F). Expert FLOPs per row are "
          "2·(2F·d + d·F).");
    static const char* kDtypes[] = {"bf16", "fp16", "fp8", "fp32"};
    if (combo("dtype", "dtype", &s->dtype, kDtypes, 4)) c.changed = true;
    anchor("dtype");
    after(c, "--dtype",
          "b: bytes per element on the wire (bf16/fp16 2, fp8 1, fp32 4). It scales the communication "
          "bytes; the kernels compute in bf16 with fp32 accumulation.");

    section("Capacity");
    float cf = static_cast<float>(s->capacity_factor);
    if (ImGui::SliderFloat("capacity factor", &cf, 0.0f, 4.0f, cf == 0.0f ? "0 (dropless)" : "%.2f")) {
        s->capacity_factor = cf;
        c.changed = true;
    }
    anchor("capacity_factor");
    after(c, "--capacity-factor",
          "cf: each expert accepts at most C = ⌈cf·T·k/E⌉ tokens; the rest are dropped (they skip the expert and keep "
          "only the residual). cf = 0 means dropless: no cap, so a hot expert gets everything sent to it.");
    static const char* kDrops[] = {"token", "probability"};
    if (combo("drop_policy", "drop policy", &s->drop_policy, kDrops, 2)) c.changed = true;
    anchor("drop_policy");
    after(c, "--drop-policy",
          "Which assignments an over-full expert keeps: the first C in token order, or the C with "
          "the highest gate probability.");

    section("Dispatch");
    static const char* kStrategies[] = {"sort", "atomic", "scan", "nopack"};
    if (combo("strategy", "strategy", &s->strategy, kStrategies, 4)) c.changed = true;
    anchor("strategy");
    after(c, "--strategy",
          "How tokens are packed expert-major before the expert GEMMs. sort: radix sort by expert id, then gather. "
          "atomic: one cursor per expert bumped with atomics. scan: block histograms + exclusive scan + stable "
          "scatter. nopack: no copy; the expert GEMM gathers rows by index.");
    if (ImGui::SliderInt("align rows", &s->align, 1, 128, "%d", ImGuiSliderFlags_Logarithmic)) c.changed = true;
    anchor("align");
    after(c, "--align", "Pad each expert's segment to a multiple of this many rows, as grouped-GEMM kernels want.");

    section("Parallelism and pipeline");
    {
        // Experts are placed E/G per rank, so the slider steps through the divisors of E (up to 64).
        std::vector<int> divisors;
        for (int g = 1; g <= std::min(64, std::max(1, s->experts)); ++g)
            if (s->experts % g == 0) divisors.push_back(g);
        int idx = 0;
        for (std::size_t i = 0; i < divisors.size(); ++i)
            if (divisors[i] <= s->ranks) idx = static_cast<int>(i);
        char fmt[32];
        std::snprintf(fmt, sizeof fmt, "%d", s->ranks);
        if (ImGui::SliderInt("ranks (GPUs)", &idx, 0, static_cast<int>(divisors.size()) - 1, fmt,
                             ImGuiSliderFlags_NoInput)) {
            s->ranks = divisors[idx];
            c.changed = true;
        }
    }
    anchor("ranks");
    after(c, "--ranks",
          "G: expert-parallel ranks. Experts are placed contiguously, E/G per rank, and tokens cross a link whenever "
          "their expert lives on another rank. The slider offers the divisors of E. Without that many GPUs, ranks "
          "are emulated.");
    if (ImGui::SliderInt("micro-batches m", &s->micro_batches, 1, 16)) c.changed = true;
    anchor("micro_batches");
    after(c, "--micro-batches",
          "m: MegaScale-Infer's ping-pong pipeline splits the batch into m micro-batches that alternate between the "
          "attention and expert GPUs. Communication is hidden when m ≥ 2(1 + Tc/Tf).");
    if (ImGui::SliderInt("layers L", &s->layers, 1, 64, "%d", ImGuiSliderFlags_Logarithmic)) c.changed = true;
    anchor("layers");
    after(c, "--layers", "L: MoE layers in the pipeline model. Iteration time ≈ (Ta + Te + 2Tc) + Tf·(m·L − 1).");
    if (ImGui::SliderInt("attention replicas", &s->attention_replicas, 1, 32)) c.changed = true;
    anchor("attention_replicas");
    after(c, "--attention-replicas",
          "n_a: attention GPUs feeding the experts (data parallel). Balance Ta ≈ Te; past that, more replicas idle.");
    float gbps = static_cast<float>(s->link_gbps);
    if (ImGui::SliderFloat("link GB/s", &gbps, 1.0f, 2000.0f, "%.0f", ImGuiSliderFlags_Logarithmic)) {
        s->link_gbps = gbps;
        c.changed = true;
    }
    anchor("link_gbps");
    after(c, "--link-gbps",
          "Per-GPU link bandwidth the pipeline model uses for the A2E/E2A transfer time Tc. "
          "NVLink H100: ~450 GB/s per direction; 400 Gb/s RDMA: ~50 GB/s.");
    if (ImGui::TreeNode("cost model (advanced)")) {
        auto dbl = [&](const char* label, const char* key, double* v, const char* help) {
            float f = static_cast<float>(*v);
            if (ImGui::DragFloat(label, &f, 0.01f * std::max(0.01f, std::fabs(f)), -1.0f, 1e6f, "%.4g")) {
                *v = f;
                c.changed = true;
            }
            anchor(key);
            after(c, (std::string("--") + key).c_str(), help);
        };
        dbl("k1 (µs/token)", "k1", &s->k1, "Attention time per micro-batch Ta = k1·ba + k2, ba tokens per replica.");
        dbl("k2 (µs)", "k2", &s->k2, "Fixed attention cost per micro-batch (launches, KV reads independent of ba).");
        dbl("k3 (µs/token)", "k3", &s->k3, "Expert time per micro-batch Te = k3·be + k4, be tokens per expert.");
        dbl("k4 (µs)", "k4", &s->k4, "Fixed expert cost per micro-batch (weight loads dominate in decode).");
        dbl("Ta override (ms)", "ta-ms", &s->ta_ms, "Attention time per micro-batch; < 0 derives it from k1, k2.");
        dbl("Te override (ms)", "te-ms", &s->te_ms, "Expert time per micro-batch; < 0 derives it from k3, k4.");
        dbl("Tc override (ms)", "tc-ms", &s->tc_ms, "One A2E or E2A transfer; < 0 derives it from the link.");
        ImGui::TreePop();
    }

    section("Run");
    static const char* kBackends[] = {"auto", "cpu", "cuda"};
    if (combo("backend", "backend", &s->backend, kBackends, 3)) c.changed = true;
    anchor("backend");
    after(c, "--backend",
          "Where the layer runs. cuda: this machine's GPU, timed with CUDA events. cpu: the reference implementation, "
          "exact counts but CPU times. auto: the GPU when there is one, else the CPU (and the banner says so).");
    if (ImGui::InputScalar("seed", ImGuiDataType_U64, &s->seed)) c.changed = true;
    anchor("seed");
    ImGui::SameLine();
    if (ImGui::SmallButton("new")) {
        s->seed = s->seed * 6364136223846793005ull + 1442695040888963407ull;
        c.changed = true;
    }
    after(c, "--seed",
          "Seeds the counter-based RNG for inputs, weights and router noise: the same seed gives the "
          "same tokens on the CPU and the GPU, so a run is reproducible.");
    if (ImGui::SliderInt("repeats", &s->repeats, 1, 50)) c.changed = true;
    anchor("repeats");
    after(c, "--repeats", "Timed repetitions; views show min, median and p95 so run-to-run noise is visible.");
    ImGui::Checkbox("re-run the full layer on every edit", &vs.run_full_layer);
    anchor("run_full_layer");
    help_marker(
        "Loads, bytes and the pipeline model update in milliseconds. The full layer also runs the expert "
        "FFNs for measured stage times, which takes seconds on the CPU reference.");
    ImGui::PopItemWidth();
    if (c.changed) cmd.set_scenario(edit, preset);
}

void show_controls(const Session& ses, ViewState& vs, Commands& cmd, bool* p_open) {
    if (begin_view(vs, ViewId::Controls, p_open)) draw_controls(ses, vs, cmd);
    ImGui::End();
}

}  // namespace moelab_gui
