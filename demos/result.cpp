// Result helpers: provenance names and small lookups the front ends share.
// The numbers themselves are filled by the engine (engine.cpp) and the pipeline model (pipeline.cpp).
#include "demos/result.hpp"

namespace demos {

const char* provenance_name(Provenance p) {
    switch (p) {
        case Provenance::MeasuredGpu: return "measured-gpu";
        case Provenance::MeasuredCpu: return "measured-cpu";
        case Provenance::Emulated: return "emulated";
        case Provenance::Modeled: return "modeled";
    }
    return "modeled";
}

const StageTime* Result::stage(const std::string& name) const {
    for (auto& s : stages)
        if (s.stage == name) return &s;
    return nullptr;
}

double Result::total_ms() const {
    double t = 0;
    for (auto& s : stages) t += s.median_ms;
    return t;
}

}  // namespace demos
