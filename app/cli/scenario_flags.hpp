// The scenario flags shared by `run`, `snapshot`, `plan`, `bench` and the desktop app: --scenario FILE first,
// then every explicitly given flag overrides it. The flags, their help and their parsing come from the one
// parameter table (demos/params.hpp); bad values surface through Scenario::validate().
#pragma once
#include <CLI/CLI.hpp>
#include <map>
#include <string>

#include "demos/scenario.hpp"

namespace moelab_cli {

struct ScenarioFlags {
    std::string scenario_file;
    std::map<std::string, std::string> text;  // by parameter name: the value as typed
    std::map<std::string, bool> flags;        // by parameter name: bool parameters
    CLI::App* app = nullptr;
};

void add_scenario_flags(CLI::App* app, ScenarioFlags& f);
// The scenario from --scenario and the explicit flags; throws BadInput (naming the flag and what is allowed)
// when a value does not parse or the scenario is invalid.
demos::Scenario resolve_scenario(const ScenarioFlags& f);

}  // namespace moelab_cli
