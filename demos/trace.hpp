// Chrome trace JSON of a Result's timelines, which Perfetto (ui.perfetto.dev) and chrome://tracing open: one
// process for the measured spans and one for the model, one named track per lane (attention, a2e, experts, e2a),
// complete events (phase X) in microseconds with the provenance, layer and micro-batch in each event's args.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "demos/result.hpp"

namespace demos {

nlohmann::json chrome_trace(const Result& r);
// Writes it atomically; BadInput naming the path when it cannot be written.
void write_chrome_trace(const Result& r, const std::string& path);

}  // namespace demos
