// The staging folder of --dump: beside DIR (same file system, so moving in is a rename), hidden, named after
// the process, removed on every way out.
#include "app/cli/dump_staging.hpp"

#include <unistd.h>

#include <vector>

#include "demos/atomic_file.hpp"
#include "kernels/common/error.hpp"

namespace moelab_cli {

namespace fs = std::filesystem;

DumpStaging::DumpStaging(const std::string& dir) : final_(dir) {
    if (dir.empty()) return;
    fs::path d = fs::path(dir).lexically_normal();
    if (d.filename().empty()) d = d.parent_path();  // "out/" → "out"
    if (d.empty() || d == "." || d == "..") d = fs::absolute(d).lexically_normal();
    fs::path parent = d.parent_path().empty() ? fs::path(".") : d.parent_path();
    std::error_code ec;
    if (fs::exists(d, ec) && !fs::is_directory(d, ec)) MOE_BAD_INPUT("--dump " << dir << ": not a folder");
    fs::create_directories(parent, ec);
    if (ec) MOE_BAD_INPUT("--dump " << dir << ": cannot create " << parent.string() << ": " << ec.message());
    staging_ = parent / ("." + d.filename().string() + ".tmp." + std::to_string(::getpid()));
    fs::remove_all(staging_, ec);
    if (!fs::create_directory(staging_, ec) || ec) {
        std::string why = ec ? ec.message() : "it exists";
        staging_.clear();
        MOE_BAD_INPUT("--dump " << dir << ": cannot create a folder in " << parent.string() << ": " << why);
    }
}

DumpStaging::~DumpStaging() {
    std::error_code ec;
    if (!staging_.empty()) fs::remove_all(staging_, ec);
}

void DumpStaging::commit(const demos::Scenario& s) {
    if (staging_.empty()) return;
    std::string err;
    if (!demos::write_file_atomic((staging_ / "scenario.toml").string(), s.to_toml(), &err))
        MOE_BAD_INPUT("--dump " << final_ << ": " << err);
    std::error_code ec;
    fs::create_directories(final_, ec);
    if (ec) MOE_BAD_INPUT("--dump " << final_ << ": cannot create the folder: " << ec.message());
    std::vector<fs::path> files;
    for (auto& e : fs::directory_iterator(staging_, ec)) files.push_back(e.path().filename());
    if (ec) MOE_BAD_INPUT("--dump " << final_ << ": cannot list " << staging_.string() << ": " << ec.message());
    // Every target must be free or a plain file before anything moves, so the set goes in whole.
    for (auto& f : files) {
        fs::path to = fs::path(final_) / f;
        fs::file_status st = fs::symlink_status(to, ec);
        if (fs::exists(st) && !fs::is_regular_file(st))
            MOE_BAD_INPUT("--dump " << final_ << ": " << to.string() << " is in the way (not a plain file)");
    }
    std::vector<fs::path> moved;
    for (auto& f : files) {
        fs::path to = fs::path(final_) / f;
        fs::rename(staging_ / f, to, ec);
        if (ec) {
            std::string why = ec.message();
            for (auto& m : moved) fs::remove(fs::path(final_) / m, ec);
            MOE_BAD_INPUT("--dump " << final_ << ": cannot write " << to.string() << ": " << why);
        }
        moved.push_back(f);
    }
}

}  // namespace moelab_cli
