// Result as JSON, CSV and a readable text table: shared by the CLI printers and the GUI's export.
// Every number is written beside its provenance.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "demos/result.hpp"

namespace demos {

nlohmann::json to_json(const Result& r);
std::string to_csv(const Result& r);    // rows of: section,key,index,value,unit,provenance
std::string to_table(const Result& r);  // what `moelab run` prints by default

}  // namespace demos
