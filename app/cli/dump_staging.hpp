// --dump DIR without partial sets: the engine writes into a hidden folder beside DIR, and only when every file
// (and scenario.toml) is written are they moved into DIR. On any failure the folder is removed and DIR keeps
// what it had.
#pragma once
#include <filesystem>
#include <string>

#include "demos/scenario.hpp"

namespace moelab_cli {

class DumpStaging {
  public:
    // Throws BadInput naming DIR when its parent cannot be created or DIR is not a folder. Empty: no dump.
    explicit DumpStaging(const std::string& dir);
    ~DumpStaging();
    DumpStaging(const DumpStaging&) = delete;
    DumpStaging& operator=(const DumpStaging&) = delete;
    // Where the engine should write ("" when there is no dump).
    std::string dir() const { return staging_.string(); }
    // Adds scenario.toml and moves the set into DIR; throws BadInput naming DIR and the file on failure.
    void commit(const demos::Scenario& s);

  private:
    std::string final_;
    std::filesystem::path staging_;
};

}  // namespace moelab_cli
