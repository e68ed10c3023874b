// Reads and writes lesson progress. The write goes to a temporary file in the same folder and is renamed over
// the old one: rename is atomic on POSIX, so readers see either the old file or the new one, never half.
#include "demos/lesson_progress.hpp"

#include "demos/atomic_file.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <toml++/toml.h>
#include <unistd.h>

#include "kernels/common/error.hpp"

namespace demos {

namespace {

// A count or vote of the file, else `dflt`: a float, a string or a number outside -1..10^9 gives the default.
// (toml++'s value_or<int64_t> casts a float such as 1e31 to an integer unchecked, which is undefined behaviour;
// the bound keeps record()'s `attempts += 1` from overflowing.)
int int_field(const toml::table& t, const char* key, int dflt) {
    const toml::node* n = t.get(key);
    const toml::value<std::int64_t>* v = n ? n->as_integer() : nullptr;
    if (!v || v->get() < -1 || v->get() > 1000000000) return dflt;
    return static_cast<int>(v->get());
}

}  // namespace

void Progress::record(const std::string& id, bool correct, double score, int confidence, const std::string& answer,
                      int played_try, int variations) {
    LessonProgress& p = lessons[id];
    p.confident_miss = !correct && confidence >= 4;
    if (p.confident_miss && variations > 0)
        p.retest_try = played_try % variations + 1;  // the next variation: the same idea on new numbers
    else if (correct)
        p.retest_try = 0;
    p.attempts += 1;
    p.correct += correct ? 1 : 0;
    p.last_correct = correct;
    p.best_score = std::max(p.best_score, score);
    p.last_confidence = confidence;
    p.last_answer = answer;
    std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    p.last_played = buf;
}

void Progress::record_why(const std::string& id, const std::string& why) {
    std::string w = why;
    for (char& c : w)
        if (c == '\n' || c == '\r') c = ' ';
    if (w.size() > 500) w.resize(500);
    lessons[id].why = w;
}

void Progress::record_votes(const std::string& id, int first_right, int second_right, int total) {
    LessonProgress& p = lessons[id];
    p.votes_first = first_right;
    p.votes_second = second_right;
    p.votes_total = total;
}

bool Progress::done(const std::string& id) const {
    auto it = lessons.find(id);
    return it != lessons.end() && it->second.attempts > 0;
}

Progress Progress::load(const std::string& path) {
    Progress p;
    std::error_code ec;
    // Absent means nothing there at all: a dangling symlink or a symlink loop goes on to the reader, which says why
    // it cannot be read, instead of passing for a first run.
    if (std::filesystem::symlink_status(path, ec).type() == std::filesystem::file_type::not_found) return p;
    remove_stale_temps(path);  // progress.toml.tmp.<pid> files of a run that was killed while saving
    // Only a regular file of bounded size and nesting reaches the parser (it recurses once per level).
    std::string text, err;
    if (!read_regular_file(path, kMaxTomlBytes, &text, &err))
        MOE_BAD_INPUT(path << ": " << err << " (delete it to start afresh)");
    if (std::string lim = toml_limits_problem(text); !lim.empty())
        MOE_BAD_INPUT(path << ":" << lim.substr(5) << " (delete it to start afresh)");
    toml::table t;
    try {
        t = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        MOE_BAD_INPUT(path << ":" << e.source().begin.line << ": malformed progress file: " << e.description()
                           << " (delete it to start afresh)");
    }
    if (auto* ls = t["lessons"].as_table())
        for (auto&& [id, node] : *ls) {
            auto* e = node.as_table();
            if (!e) continue;
            LessonProgress& lp = p.lessons[std::string(id.str())];
            lp.attempts = int_field(*e, "attempts", 0);
            lp.correct = int_field(*e, "correct", 0);
            lp.last_correct = (*e)["last_correct"].value_or(false);
            lp.best_score = (*e)["best_score"].value_or(0.0);
            lp.last_confidence = int_field(*e, "last_confidence", 0);
            lp.last_answer = (*e)["last_answer"].value_or(std::string());
            lp.last_played = (*e)["last_played"].value_or(std::string());
            lp.why = (*e)["why"].value_or(std::string());
            lp.confident_miss = (*e)["confident_miss"].value_or(false);
            lp.retest_try = int_field(*e, "retest_try", 0);
            lp.votes_first = int_field(*e, "votes_first", -1);
            lp.votes_second = int_field(*e, "votes_second", -1);
            lp.votes_total = int_field(*e, "votes_total", 0);
        }
    return p;
}

void Progress::save(const std::string& path) const {
    toml::table ls;
    for (auto& [id, lp] : lessons)
        ls.insert(id, toml::table{{"attempts", lp.attempts},
                                  {"correct", lp.correct},
                                  {"last_correct", lp.last_correct},
                                  {"best_score", lp.best_score},
                                  {"last_confidence", lp.last_confidence},
                                  {"last_answer", lp.last_answer},
                                  {"last_played", lp.last_played},
                                  {"why", lp.why},
                                  {"confident_miss", lp.confident_miss},
                                  {"retest_try", lp.retest_try},
                                  {"votes_first", lp.votes_first},
                                  {"votes_second", lp.votes_second},
                                  {"votes_total", lp.votes_total}});
    toml::table root{{"lessons", ls}};
    std::filesystem::path p(path);
    std::error_code ec;
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
    std::ostringstream os;
    os << "# moelab lesson progress (written by moelab; safe to delete)\n" << root << "\n";
    write_file_atomic(path, os.str());
}

std::string default_progress_path() {
    if (const char* d = std::getenv("MOELAB_CONFIG_DIR"); d && *d) return std::string(d) + "/progress.toml";
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/moelab/progress.toml";
    if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.config/moelab/progress.toml";
    return "moelab-progress.toml";
}

}  // namespace demos
