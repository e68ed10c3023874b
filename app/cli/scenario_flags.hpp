// The scenario flags shared by `run`, `snapshot`, `bench` and the desktop app: --scenario FILE first,
// then every explicitly given flag overrides it. Bad values surface through Scenario::validate().
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "demos/scenario.hpp"

namespace moelab_cli {

struct ScenarioFlags {
    demos::Scenario s;
    std::string scenario_file;
    bool no_renormalize = false;
    CLI::App* app = nullptr;
};

void add_scenario_flags(CLI::App* app, ScenarioFlags& f);
// The scenario from --scenario and the explicit flags; throws BadInput (naming the flag) when invalid.
demos::Scenario resolve_scenario(const ScenarioFlags& f);

}  // namespace moelab_cli
