// `moelab plan [scenario flags]`: MegaScale-Infer's deployment search in small: sweep attention replicas n_a
// and micro-batches m through the pipeline model and rank them by decoding throughput per GPU (modelled).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/cli/commands.hpp"
#include "app/cli/scenario_flags.hpp"
#include "demos/pipeline_measured.hpp"
#include "demos/planner.hpp"

namespace moelab_cli {

namespace {
struct PlanArgs {
    ScenarioFlags flags;
    bool json = false;
    std::string calibration;
};
}  // namespace

void add_plan_command(CLI::App& app, Handler* selected) {
    auto args = std::make_shared<PlanArgs>();
    auto* cmd = app.add_subcommand("plan", "Sweep attention replicas n_a and micro-batches m through the pipeline "
                                           "model (modelled numbers) and show the best plan");
    add_scenario_flags(cmd, args->flags);
    cmd->add_flag("--json", args->json, "Print every plan as JSON");
    cmd->add_option("--calibration", args->calibration,
                    "Use k1..k4 and the link measured on this GPU (TOML from moelab bench pipeline "
                    "--save-calibration) instead of the scenario's");
    cmd->callback([args, selected] {
        *selected = [args] {
            demos::Scenario s = resolve_scenario(args->flags);
            std::string source = "built-in constants";
            if (!args->calibration.empty()) {
                demos::Calibration cal = demos::Calibration::load(args->calibration);
                s.k1 = cal.k1, s.k2 = cal.k2, s.k3 = cal.k3, s.k4 = cal.k4, s.link_gbps = cal.link_gbps;
                source = "constants calibrated on " + (cal.device.empty() ? std::string("a GPU") : cal.device);
            }
            auto plans = demos::plan_sweep(s);
            auto best = demos::best_plan(plans);
            if (args->json) {
                nlohmann::json j = nlohmann::json::array();
                for (auto& p : plans)
                    j.push_back({{"attention_replicas", p.na}, {"micro_batches", p.m}, {"total_ms", p.total_ms},
                                 {"tokens_per_s_per_gpu", p.tokens_per_s_per_gpu}, {"comm_hidden", p.hidden},
                                 {"ta_ms", p.ta_ms}, {"te_ms", p.te_ms}, {"tc_ms", p.tc_ms},
                                 {"provenance", "modeled"}, {"constants", source}});
                std::printf("%s\n", nlohmann::json{{"plans", j},
                                                   {"best", {{"attention_replicas", best.na}, {"micro_batches", best.m}}},
                                                   {"balanced_replicas", demos::balanced_replicas(s)}}
                                        .dump(2)
                                        .c_str());
                return 0;
            }
            std::printf("deployment plans [modeled, %s]: B=%lld tokens, E=%d, k=%d, one GPU per attention replica "
                        "and per expert\n",
                        source.c_str(), (long long)s.tokens, s.experts, s.top_k);
            std::printf("balance rule n_a ≈ k1·E/(k3·K) = %.2f\n\n", demos::balanced_replicas(s));
            std::printf("%4s %3s %10s %10s %10s %12s %16s %s\n", "n_a", "m", "Ta ms", "Te ms", "Tc ms", "iter ms",
                        "tok/s per GPU", "comm");
            for (auto& p : plans) {
                if (p.m != best.m && p.na != best.na) continue;  // the best plan's row and column
                std::printf("%4d %3d %10.3f %10.3f %10.3f %12.3f %16.0f %s%s\n", p.na, p.m, p.ta_ms, p.te_ms,
                            p.tc_ms, p.total_ms, p.tokens_per_s_per_gpu, p.hidden ? "hidden" : "exposed",
                            (p.na == best.na && p.m == best.m) ? "   <- best" : "");
            }
            std::printf("\nbest: n_a=%d, m=%d, %.0f tokens/s per GPU (--json for all %zu plans)\n", best.na, best.m,
                        best.tokens_per_s_per_gpu, plans.size());
            return 0;
        };
    });
}

}  // namespace moelab_cli
