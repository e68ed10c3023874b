// Loads the lesson set: the built-in files embedded at build time, then an instructor's folder that can add
// lessons or replace built-in ones by id. One bad file is reported and never stops the others.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <toml++/toml.h>

#include "demos/lesson.hpp"
#include "kernels/common/error.hpp"

namespace demos {

const Lesson* LessonSet::find(const std::string& id) const {
    for (auto& l : lessons)
        if (l.id == id) return &l;
    return nullptr;
}

std::string lessons_dir(const std::string& flag) {
    if (!flag.empty()) return flag;
    if (const char* env = std::getenv("MOELAB_LESSONS_DIR"); env && *env) return env;
    std::error_code ec;
    if (std::filesystem::is_directory("lessons", ec)) return "lessons";
    return "";
}

Scenario apply_overrides(const Scenario& base, const std::string& overrides, const std::string& where) {
    if (overrides.empty()) return base;
    toml::table merged = toml::parse(base.to_toml());
    toml::table ov;
    try {
        ov = toml::parse(overrides, where);
    } catch (const toml::parse_error& e) {
        MOE_BAD_INPUT(where << ": malformed overrides: " << e.description());
    }
    for (auto&& [k, v] : ov) {
        if (!merged.contains(k.str())) MOE_BAD_INPUT(where << ": unknown scenario key '" << k.str() << "'");
        merged.insert_or_assign(k.str(), v);
    }
    std::ostringstream os;
    os << merged;
    return Scenario::from_toml(os.str(), where);
}

namespace {

void add(LessonSet& set, std::map<std::string, std::string>& origin, Lesson&& l, const std::string& text,
         std::map<std::string, std::string>& texts) {
    auto it = std::find_if(set.lessons.begin(), set.lessons.end(), [&](const Lesson& x) { return x.id == l.id; });
    if (it == set.lessons.end()) {
        origin[l.id] = l.source;
        texts[l.id] = text;
        set.lessons.push_back(std::move(l));
        return;
    }
    bool builtin = origin[l.id].rfind("built-in:", 0) == 0;
    if (!builtin) {
        set.problems.push_back({l.source, 1, "id '" + l.id + "' is already used by " + origin[l.id]});
        return;
    }
    // The folder's copy replaces the built-in one; an identical copy (the repo's own lessons/) keeps the label.
    if (texts[l.id] == text) return;
    origin[l.id] = l.source;
    texts[l.id] = text;
    *it = std::move(l);
}

}  // namespace

LessonSet load_lessons(const std::string& dir) {
    LessonSet set;
    std::map<std::string, std::string> origin, texts;
    int count = 0;
    const EmbeddedLesson* emb = embedded_lessons(&count);
    std::vector<std::string> builtin_texts;
    for (int i = 0; i < count; ++i) {
        std::string text(reinterpret_cast<const char*>(emb[i].data), emb[i].size);
        builtin_texts.push_back(text);
        std::string source = std::string("built-in:") + emb[i].name;
        set.files.push_back(source);
        Lesson l;
        if (parse_lesson(text, source, &l, &set.problems)) add(set, origin, std::move(l), text, texts);
    }
    if (!dir.empty()) {
        std::error_code ec;
        if (!std::filesystem::is_directory(dir, ec)) {
            set.problems.push_back({dir, 0, "not a folder (from --lessons-dir or MOELAB_LESSONS_DIR)"});
        } else {
            std::vector<std::filesystem::path> paths;
            for (auto& e : std::filesystem::directory_iterator(dir, ec))
                if (e.path().extension() == ".toml") paths.push_back(e.path());
            std::sort(paths.begin(), paths.end());
            for (auto& p : paths) {
                set.files.push_back(p.string());
                std::ifstream f(p);
                std::stringstream ss;
                ss << f.rdbuf();
                if (!f) {
                    set.problems.push_back({p.string(), 0, "cannot read the file"});
                    continue;
                }
                // A byte-identical copy of a built-in file (the repo's own lessons/) adds nothing.
                if (std::find(builtin_texts.begin(), builtin_texts.end(), ss.str()) != builtin_texts.end()) continue;
                Lesson l;
                if (parse_lesson(ss.str(), p.string(), &l, &set.problems)) add(set, origin, std::move(l), ss.str(), texts);
            }
        }
    }
    std::stable_sort(set.lessons.begin(), set.lessons.end(), [](const Lesson& a, const Lesson& b) {
        return a.order != b.order ? a.order < b.order : a.id < b.id;
    });
    return set;
}

}  // namespace demos
