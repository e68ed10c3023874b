// The numbers a lesson can name: every scalar and vector it may read from a Result, each with its
// provenance, plus the lesson model's own modelled quantities (hot-expert copies, the roofline).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "demos/result.hpp"

namespace demos::lesson {

// Where a number came from. Inputs are the scenario's own parameters; the rest follow Result's provenance.
// When an expression mixes sources, the least direct one wins (input < measured < emulated < modelled).
enum class Source { Input, MeasuredGpu, MeasuredCpu, Emulated, Modeled };
const char* source_name(Source s);  // input | measured-gpu | measured-cpu | emulated | modeled
Source source_of(Provenance p);
Source combine(Source a, Source b);

struct Number {
    double value = 0;
    Source source = Source::Input;
};

struct MetricInfo {
    const char* name;
    const char* unit;
    const char* help;
    bool vector = false;
};
// Every name numbers_of() fills, in a stable order: the lesson checker and lessons/README.md use it.
const std::vector<MetricInfo>& metric_catalog();

struct FunctionInfo {
    const char* signature;
    const char* help;
};
// The lesson model's functions of one run (callable as NAME(...) or RUN.NAME(...)).
const std::vector<FunctionInfo>& function_catalog();
bool is_lesson_function(const std::string& name);
// The scenario's own inputs: known before anything runs, so text shown before the reveal may use them.
bool is_input_metric(const std::string& name);

// The numbers of one run.
struct RunNumbers {
    std::map<std::string, Number> scalars;
    std::map<std::string, std::vector<double>> vectors;
    std::map<std::string, Source> vector_sources;
};
RunNumbers numbers_of(const Result& r);

// Calls a lesson-model function on one run's numbers; nullopt when `name` is not one of them.
// Throws BadInput on a wrong argument count or an argument out of range.
std::optional<Number> call_function(const RunNumbers& run, const std::string& name, const std::vector<double>& args);

// Max/mean of a vector of loads (0 when the mean is 0): the straggler factor a set of bars implies.
double max_over_mean(const std::vector<double>& v);

// The most bytes one rank sends to the other ranks: the largest row sum of the run's traffic matrix, diagonal excluded.
double max_rank_send_bytes(const Result& r);

}  // namespace demos::lesson
