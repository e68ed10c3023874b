// Registers one flag per entry of the parameter table, with its help line, and merges the given ones over a
// --scenario file. Values are kept as typed and parsed strictly by the table ("1e9", "" and "-1" for the
// seed are refused with the allowed range), so the CLI accepts exactly what validation and TOML accept.
#include "app/cli/scenario_flags.hpp"

#include "demos/params.hpp"
#include "kernels/common/error.hpp"

namespace moelab_cli {

void add_scenario_flags(CLI::App* app, ScenarioFlags& f) {
    f.app = app;
    const char* g = "Scenario";
    app->add_option("--scenario", f.scenario_file, "Load a scenario TOML file; flags given beside it override it")
        ->group(g);
    for (const demos::ParamInfo& p : demos::scenario_params()) {
        std::string names = p.flag;
        if (*p.alias) names += std::string(",") + p.alias;
        if (p.type() == demos::ParamType::Bool) {
            names += ",!--no-" + std::string(p.flag + 2);
            app->add_flag(names, f.flags[p.name], p.help_line())->group(g);
        } else {
            const char* type = p.type() == demos::ParamType::String   ? (p.choices.empty() ? "TEXT" : "CHOICE")
                               : p.type() == demos::ParamType::Double ? "NUMBER"
                                                                      : "INT";
            app->add_option(names, f.text[p.name], p.help_line())->type_name(type)->group(g)->allow_extra_args(false);
        }
    }
}

demos::Scenario resolve_scenario(const ScenarioFlags& f) {
    demos::Scenario out;
    if (!f.scenario_file.empty()) out = demos::Scenario::load(f.scenario_file);
    for (const demos::ParamInfo& p : demos::scenario_params()) {
        if (f.app->get_option(p.flag)->count() == 0) continue;
        if (p.type() == demos::ParamType::Bool)
            p.set_bool(out, f.flags.at(p.name));
        else
            p.set_text(out, f.text.at(p.name));
    }
    out.check();
    return out;
}

}  // namespace moelab_cli
