// Loads the lesson set: the built-in files embedded at build time, then an instructor's folder that can add
// lessons or replace built-in ones by id. One bad file is reported and never stops the others.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "demos/atomic_file.hpp"
#include "demos/lesson.hpp"
#include "demos/lesson_check.hpp"
#include "demos/lesson_expr.hpp"
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
    // The scenario's own reader, over `base`: the same keys, types, limits and messages as a scenario file.
    return Scenario::from_toml(overrides, where, base);
}

// ---- static checks of every function call (lessons check): arity and constant arguments -------------------

// The lesson functions of lesson_numbers.cpp's call_function, with the arguments it accepts (a test holds the
// two to the same contract). `experts` is E of the run the call reads.
std::string check_lesson_call(const std::string& fn, const std::vector<std::optional<double>>& a, int experts) {
    std::ostringstream os;
    std::size_t want = fn == "roofline_ms" ? 2 : 1;
    if (a.size() != want) {
        os << fn << "() takes " << want << " argument" << (want == 1 ? "" : "s") << ", got " << a.size();
        return os.str();
    }
    if (fn == "split_hot" && a[0] && !(*a[0] >= 1))
        os << "split_hot(r): r = " << lesson::format_number(*a[0]) << " must be at least 1";
    if (fn == "roofline_ms")
        for (std::size_t i = 0; i < 2; ++i)
            if (a[i] && !(*a[i] > 0))
                os << "roofline_ms(peak_tflops, mem_gbps): " << (i ? "mem_gbps" : "peak_tflops") << " = "
                   << lesson::format_number(*a[i]) << " must be above 0";
    if (fn == "load" && a[0] && !(*a[0] >= 0 && *a[0] < experts && *a[0] == std::floor(*a[0])))
        os << "load(e): e = " << lesson::format_number(*a[0]) << " must be an expert id from 0 to " << experts - 1
           << " (--experts " << experts << ")";
    return os.str();
}

namespace {

// The line of the first occurrence of `needle` in the file text, for items the Lesson keeps without a line.
int line_in(const std::string& text, const std::string& needle, int fallback) {
    std::size_t at = needle.empty() ? std::string::npos : text.find(needle);
    if (at == std::string::npos) return fallback;
    return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
}

// Every call in every expression and {placeholder} of the lesson, checked without running anything: a call with
// the wrong number of arguments or a constant argument out of range fails here, with the file and line, instead
// of after a student has answered.
void check_calls(const Lesson& L, const std::string& text, std::vector<LessonProblem>* problems) {
    auto experts_of = [&](const std::string& run) {
        if (run.empty()) return L.scenario.experts;
        for (auto& r : L.runs)
            if (r.name == run) {
                try {
                    return apply_overrides(L.scenario, r.overrides, L.source).experts;
                } catch (const moe::Error&) {
                    break;  // reported by the parser
                }
            }
        return L.scenario.experts;
    };
    auto expr = [&](const std::string& e_text, int line, const std::string& what) {
        lesson::Expr e;
        try {
            e = lesson::Expr::parse(e_text);
        } catch (const moe::Error&) {
            return;  // the parser reported it
        }
        if (line <= 0) line = line_in(text, e_text, 1);
        for (const lesson::CallSite& c : lesson::call_sites(e)) {
            std::string bad = lesson::check_builtin_call(c);
            if (bad.empty() && !lesson::is_builtin_function(c.name)) {
                std::size_t dot = c.name.rfind('.');
                std::string run = dot == std::string::npos ? "" : c.name.substr(0, dot);
                std::string fn = dot == std::string::npos ? c.name : c.name.substr(dot + 1);
                if (fn == "split_hot" || fn == "roofline_ms" || fn == "load")
                    bad = check_lesson_call(fn, c.args, experts_of(run));
            }
            if (!bad.empty()) problems->push_back({L.source, line, what + ": " + bad});
        }
    };
    auto templ = [&](const std::string& t, int line, const std::string& what) {
        std::vector<lesson::Placeholder> ph;
        try {
            ph = lesson::scan_template(t);
        } catch (const moe::Error&) {
            return;
        }
        for (auto& p : ph) expr(p.expr.text(), line > 0 ? line : line_in(text, p.expr.text(), 1), what);
    };
    for (auto& v : L.values) expr(v.expr.text, v.expr.line, "[values] " + v.name);
    const LessonQuestion& Q = L.question;
    if (Q.kind != QuestionKind::Bars && Q.kind != QuestionKind::Choice)
        expr(Q.answer.text, Q.answer.line, "[question] answer");
    for (auto& c : Q.choices) {
        expr(c.when.text, c.when.line, "choice '" + c.key + "' when");
        templ(c.feedback, c.line, "choice '" + c.key + "' feedback");
        templ(c.text, c.line, "choice '" + c.key + "' text");
    }
    for (auto& m : Q.misconceptions) {
        expr(m.when.text, m.when.line, "misconception when");
        templ(m.feedback, m.when.line, "misconception feedback");
    }
    for (auto& c : L.checks) expr(c.text, c.line, "check");
    for (auto& sh : L.show) expr(sh, 0, "[reveal] show '" + sh + "'");
    templ(L.intro, 0, "intro");
    templ(Q.prompt, Q.line, "[question] prompt");
    templ(L.explanation, 0, "[explanation] text");
    templ(L.formula, 0, "[explanation] formula");
    for (auto& t : L.try_next) templ(t.prompt, t.line, "[[try_next]] prompt");
}

}  // namespace

bool parse_lesson_checked(const std::string& text, const std::string& source, Lesson* l,
                          std::vector<LessonProblem>* problems) {
    // Size and nesting are bounded before the TOML parser runs (it recurses once per level).
    std::string limits = toml_limits_problem(text);
    if (!limits.empty()) {
        int line = std::atoi(limits.c_str() + 5);
        problems->push_back({source, line, limits.substr(limits.find(": ") + 2)});
        return false;
    }
    if (!parse_lesson(text, source, l, problems)) return false;
    std::size_t before = problems->size();
    check_calls(*l, text, problems);
    return problems->size() == before;
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
        if (parse_lesson_checked(text, source, &l, &set.problems)) add(set, origin, std::move(l), text, texts);
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
                // Only regular files of bounded size: a FIFO named x.toml must not hang the lesson list.
                std::string text, err;
                if (!read_regular_file(p.string(), kMaxTomlBytes, &text, &err)) {
                    set.problems.push_back({p.string(), 0, err});
                    continue;
                }
                // A byte-identical copy of a built-in file (the repo's own lessons/) adds nothing.
                if (std::find(builtin_texts.begin(), builtin_texts.end(), text) != builtin_texts.end()) continue;
                Lesson l;
                if (parse_lesson_checked(text, p.string(), &l, &set.problems))
                    add(set, origin, std::move(l), text, texts);
            }
        }
    }
    std::stable_sort(set.lessons.begin(), set.lessons.end(), [](const Lesson& a, const Lesson& b) {
        return a.order != b.order ? a.order < b.order : a.id < b.id;
    });
    return set;
}

}  // namespace demos
