// Controls: every parameter of the scenario, drawn from the one parameter table (demos/params.hpp: label, range,
// unit, help, widget), with a "(?)" saying what it means in an MoE layer, model presets, and each validation
// message under the control that caused it. Edits go out as one SetScenario command.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "app/gui/app_state.hpp"
#include "demos/params.hpp"

namespace moelab_gui {
namespace {

// What a parameter means in an MoE layer: the teaching text beside the table's one-line help.
const std::map<std::string, const char*>& explanations() {
    static const std::map<std::string, const char*> kText = {
        {"skew",
         "How popular each expert is with the router. uniform: every expert equally likely. zipf:s: expert i has "
         "popularity ∝ 1/(i+1)^s. hot:r: one expert is r times as popular as each of the others. Real routers are "
         "skewed, and the busiest expert sets the layer's time."},
        {"router",
         "popularity: logits are log p + Gumbel noise, which samples k distinct experts exactly in proportion to the "
         "skew. gate: a real gate x·Wg (plus log p), as in a trained model's router."},
        {"top_k",
         "Each token's activation is sent to k experts and their outputs are summed, so compute and dispatch "
         "traffic (2·T·k·d·b) both grow linearly with k."},
        {"renormalize", "Mixtral and Qwen3 renormalize the k gate weights of each token to sum to 1."},
        {"experts",
         "More experts means fewer tokens per expert (smaller GEMMs) and, spread over GPUs, more destinations for "
         "the all-to-all."},
        {"tokens", "Prefill: prompt tokens; decode: one per sequence. The mean load per expert is T·k/E."},
        {"hidden", "The row that dispatch copies and the all-to-all sends. Bytes per row = d·b."},
        {"ffn", "Each expert is a SiLU-gated FFN (w1: 2F×d, w2: d×F). Expert FLOPs per row are 2·(2F·d + d·F)."},
        {"dtype", "It scales the communication bytes; the kernels compute in bf16 with fp32 accumulation."},
        {"capacity_factor",
         "Tokens past an expert's capacity are dropped: they skip the expert and keep only the residual. "
         "cf = 0 means dropless: no cap, so a hot expert gets everything sent to it."},
        {"drop_policy",
         "Which assignments an over-full expert keeps: the first C in token order, or the C with the "
         "highest gate probability."},
        {"strategy",
         "sort: radix sort by expert id, then gather. atomic: one cursor per expert bumped with atomics. scan: "
         "block histograms + exclusive scan + stable scatter. nopack: no copy; the expert GEMM gathers rows by "
         "index."},
        {"align", "Grouped-GEMM kernels want each expert's segment padded to a multiple of their tile."},
        {"ranks",
         "Experts are placed contiguously, E/G per rank, and tokens cross a link whenever their expert lives on "
         "another rank. The slider offers the divisors of E. Without that many GPUs, ranks are emulated."},
        {"kv_groups",
         "Grouped-query attention: each KV head serves q_heads/kv_groups query heads, so the KV cache "
         "read per token shrinks by that factor. The slider offers the divisors of the query heads."},
        {"micro_batches",
         "MegaScale-Infer's ping-pong pipeline splits the batch into m micro-batches that alternate between the "
         "attention and expert GPUs. Communication is hidden when m ≥ 2(1 + Tc/Tf)."},
        {"layers", "Iteration time ≈ (Ta + Te + 2Tc) + Tf·(m·L − 1)."},
        {"attention_replicas",
         "Attention GPUs feeding the experts (data parallel). Balance Ta ≈ Te; past that, more "
         "replicas idle."},
        {"link_gbps", "NVLink H100: ~450 GB/s per direction; 400 Gb/s RDMA: ~50 GB/s."},
        {"k1", "Ta = k1·ba + k2, ba tokens per attention replica."},
        {"k2", "Launches and KV reads that do not grow with ba."},
        {"k3", "Te = k3·be + k4, be tokens per expert."},
        {"k4", "Weight loads dominate in decode."},
        {"backend",
         "cuda: this machine's GPU, timed with CUDA events. cpu: the reference implementation, exact counts but CPU "
         "times. auto: the GPU when there is one, else the CPU (and the banner says so)."},
        {"seed", "The counter-based RNG gives the same tokens on the CPU and the GPU, so a run is reproducible."},
        {"repeats", "Views show min, median and p95 so run-to-run noise is visible."},
    };
    return kText;
}

struct Ctx {
    const Session& ses;
    demos::Scenario* s;
    bool changed = false;
};

// The "(?)" with the table's help, the allowed values, and the teaching text; then the messages for the control.
void after(Ctx& c, const demos::ParamInfo& p) {
    std::string help = p.help_line();
    auto it = explanations().find(p.name);
    if (it != explanations().end()) help += "\n\n" + std::string(it->second);
    help_marker(help.c_str());
    error_under(p.flag, c.ses.invalid());
    if (c.ses.error().present && c.ses.error().param == p.flag) error_under(p.flag, {c.ses.error().message});
}

// A combo over the table's choices; its items are anchored as "combo:NAME/ITEM" while it is open.
bool combo(const demos::ParamInfo& p, const char* label, std::string* value) {
    bool ch = false;
    if (ImGui::BeginCombo(label, value->c_str())) {
        for (const demos::ParamChoice& item : p.choices) {
            if (ImGui::Selectable(item.value, *value == item.value)) {
                *value = item.value;
                ch = true;
            }
            if (ImGui::IsItemHovered() && item.help[0]) ImGui::SetTooltip("%s", item.help);
            anchor(std::string("combo:") + p.name + "/" + item.value);
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

void skew_control(Ctx& c, const demos::ParamInfo& p) {
    demos::Scenario* s = c.s;
    std::string family;
    float strength = 0;
    split_skew(s->skew, &family, &strength);
    static const demos::ParamInfo kFamilies = [] {
        demos::ParamInfo f = *demos::find_param("skew");
        f.name = "skew_family";
        f.choices = {{"uniform", "every expert equally likely"},
                     {"zipf", "popularity ∝ 1/(i+1)^s"},
                     {"hot", "one expert r times as popular"}};
        return f;
    }();
    if (combo(kFamilies, "skew family", &family)) {
        if (family == "zipf" && strength <= 0) strength = 1.0f;
        if (family == "hot" && strength <= 0) strength = 4.0f;
        s->skew = join_skew(family, strength);
        c.changed = true;
    }
    anchor("skew_family");
    after(c, p);
    if (family != "uniform") {
        // The strengths a lesson needs; the full range (zipf up to 8, hot up to 1e6) is typed with Ctrl+click.
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
}

// A parameter that must divide another (ranks divide the experts, KV groups the query heads): the slider steps
// through the divisors within the table's range.
void divisor_control(Ctx& c, const demos::ParamInfo& p, int of) {
    demos::Scenario* s = c.s;
    const auto [lo, hi] = control_range(p, *s);
    const int value = int(p.get_number(*s));
    std::vector<int> divisors;
    for (int g = std::max(1, int(lo)); g <= std::min(int(hi), std::max(1, of)); ++g)
        if (of % g == 0) divisors.push_back(g);
    if (divisors.empty()) divisors.push_back(1);
    int idx = 0;
    for (std::size_t i = 0; i < divisors.size(); ++i)
        if (divisors[i] <= value) idx = static_cast<int>(i);
    char fmt[32];
    std::snprintf(fmt, sizeof fmt, "%d", value);
    if (ImGui::SliderInt(p.label, &idx, 0, static_cast<int>(divisors.size()) - 1, fmt, ImGuiSliderFlags_NoInput)) {
        p.set_number(*s, divisors[std::size_t(idx)]);
        c.changed = true;
    }
}

// One parameter, with the widget the table names.
void param_control(Ctx& c, const demos::ParamInfo& p) {
    demos::Scenario* s = c.s;
    if (std::string(p.name) == "skew") return skew_control(c, p);
    if (std::string(p.name) == "ranks") {
        divisor_control(c, p, s->experts);
    } else if (std::string(p.name) == "kv_groups") {
        divisor_control(c, p, s->q_heads);
    } else if (p.widget == demos::Widget::Combo) {
        std::string v = p.get_string(*s);
        if (combo(p, p.label, &v)) {
            p.set_string(*s, v);
            c.changed = true;
        }
    } else if (p.widget == demos::Widget::Checkbox) {
        bool v = p.get_bool(*s);
        if (ImGui::Checkbox(p.label, &v)) {
            p.set_bool(*s, v);
            c.changed = true;
        }
    } else if (p.type() == demos::ParamType::UInt64) {
        std::uint64_t demos::Scenario::*field = std::get<std::uint64_t demos::Scenario::*>(p.field);
        std::uint64_t v = s->*field;
        if (ImGui::InputScalar(p.label, ImGuiDataType_U64, &v)) {
            s->*field = v;
            c.changed = true;
        }
        anchor(p.name);
        ImGui::SameLine();
        if (ImGui::SmallButton("new")) {
            s->*field = v * 6364136223846793005ull + 1442695040888963407ull;
            c.changed = true;
        }
    } else if (p.widget == demos::Widget::Number) {
        double v = p.get_number(*s);
        if (ImGui::InputDouble(p.label, &v, 0, 0, "%.4g")) {
            p.set_number(*s, v);
            c.changed = true;
        }
    } else {
        // Sliders over exactly the range that validation enforces (control_range), linear or logarithmic.
        const auto [lo, hi] = control_range(p, *s);
        testing::probe().ranges[p.name] = {lo, hi};
        const ImGuiSliderFlags flags = p.widget == demos::Widget::LogSlider ? ImGuiSliderFlags_Logarithmic : 0;
        std::string fmt;
        if (p.type() == demos::ParamType::Double) {
            double v = p.get_number(*s);
            fmt = std::string(std::string(p.name) == "capacity_factor" && v == 0 ? "0 (dropless)" : "%.3g");
            if (p.unit[0]) fmt += std::string(" ") + p.unit;
            if (ImGui::SliderScalar(p.label, ImGuiDataType_Double, &v, &lo, &hi, fmt.c_str(), flags)) {
                p.set_number(*s, v);
                c.changed = true;
            }
        } else {
            std::int64_t v = std::int64_t(p.get_number(*s));
            const std::int64_t a = std::int64_t(lo), b = std::int64_t(std::max(lo, hi));
            fmt = std::string("%lld") + (p.unit[0] ? std::string(" ") + p.unit : "");
            if (ImGui::SliderScalar(p.label, ImGuiDataType_S64, &v, &a, &b, fmt.c_str(), flags)) {
                p.set_number(*s, double(v));
                c.changed = true;
            }
        }
    }
    anchor(p.name);
    after(c, p);
}

}  // namespace

std::pair<double, double> control_range(const demos::ParamInfo& p, const demos::Scenario& s) { return p.range_in(s); }

static void draw_controls(const Session& ses, ViewState& vs, Commands& cmd) {
    demos::Scenario edit = ses.scenario();
    std::string preset = ses.preset();
    Ctx c{ses, &edit};
    const float w = ImGui::GetFontSize() * 9.5f;
    ImGui::PushItemWidth(w);
    const auto& params = demos::scenario_params();

    // Messages that name no parameter of the table go at the top.
    {
        std::vector<std::string> other;
        for (const std::string& m : ses.invalid()) {
            bool known = false;
            for (const demos::ParamInfo& p : params) {
                const std::size_t n = std::char_traits<char>::length(p.flag);
                if (m.compare(0, n, p.flag) == 0 && m.size() > n && (m[n] == ':' || m[n] == ' ')) known = true;
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
    const char* cur = preset.empty() ? "(custom)" : preset.c_str();
    if (ImGui::BeginCombo("model preset", cur)) {
        for (const demos::Preset& p : demos::presets()) {
            if (ImGui::Selectable(p.name.c_str(), p.name == preset)) {
                const std::string backend = edit.backend;
                edit = p.scenario;
                edit.backend = backend;  // a preset describes a model, not this machine
                preset = p.name;
                c.changed = true;
            }
            if (ImGui::IsItemHovered() && !p.description.empty()) wrapped_tooltip(p.description.c_str());
        }
        ImGui::EndCombo();
    }
    anchor("preset");
    help_marker(
        "Published model shapes (experts, top-k, hidden and FFN widths) and the classroom default. Tokens are "
        "scaled to what this machine can run; the backend stays as you set it.");

    // The table's groups, in its order; the cost model folds away.
    std::vector<std::string> groups;
    for (const demos::ParamInfo& p : params)
        if (std::find(groups.begin(), groups.end(), p.group) == groups.end()) groups.push_back(p.group);
    for (const std::string& g : groups) {
        const bool folded = g == "Cost model";
        if (folded) {
            const bool open = ImGui::TreeNode("cost model (advanced)");
            anchor("cost_model");
            if (!open) continue;
        } else {
            section(g.c_str());
        }
        for (const demos::ParamInfo& p : params)
            if (p.group == g) param_control(c, p);
        if (g == "Run") {
            ImGui::Checkbox("re-run the full layer on every edit", &vs.run_full_layer);
            anchor("run_full_layer");
            help_marker(
                "Loads, bytes and the pipeline model update in milliseconds. The full layer also runs the expert "
                "FFNs for measured stage times, which takes seconds on the CPU reference.");
        }
        if (folded) ImGui::TreePop();
    }
    ImGui::PopItemWidth();
    if (c.changed) cmd.set_scenario(edit, preset);
}

void show_controls(const Session& ses, ViewState& vs, Commands& cmd, bool* p_open) {
    if (begin_view(vs, ViewId::Controls, p_open)) draw_controls(ses, vs, cmd);
    ImGui::End();
}

}  // namespace moelab_gui
