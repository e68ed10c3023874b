// The check of every name a lesson's expressions and {placeholders} use (demos/lesson_parse.hpp): numbers of the
// run, of each named run, of the experiment, params and values; text shown before the reveal reads inputs only.
#include <algorithm>
#include <set>

#include "demos/experiments.hpp"
#include "demos/lesson_expr.hpp"
#include "demos/lesson_numbers.hpp"
#include "demos/lesson_parse.hpp"
#include "kernels/common/error.hpp"

namespace demos::lesson_parse {

void check_names(FileReader& r, const Lesson& L, int reveal_line, int explanation_line) {
    std::set<std::string> scalars, vectors;
    for (auto& m : lesson::metric_catalog()) (m.vector ? vectors : scalars).insert(m.name);
    for (auto& m : experiment_metrics())
        if (L.experiment == m.experiment) (m.info.vector ? vectors : scalars).insert(m.info.name);
    // Text the student reads before committing may only name the scenario's inputs and the lesson's params:
    // nothing has run yet.
    std::set<std::string> inputs;
    for (auto& p : L.params) inputs.insert(p.first);
    for (auto& m : lesson::metric_catalog())
        if (lesson::is_input_metric(m.name)) {
            inputs.insert(m.name);
            for (auto& run : L.runs) inputs.insert(run.name + "." + m.name);
        }
    std::set<std::string> known = scalars;
    for (auto& run : L.runs)
        for (auto& m : scalars) known.insert(run.name + "." + m);
    for (auto& [k, v] : L.params) known.insert(k);
    for (auto& v : L.values) known.insert(v.name);
    auto fn_ok = [&](const std::string& f) {
        std::size_t dot = f.rfind('.');
        if (dot == std::string::npos) return lesson::is_lesson_function(f);
        std::string run = f.substr(0, dot);
        bool have = std::any_of(L.runs.begin(), L.runs.end(), [&](const LessonRun& x) { return x.name == run; });
        return have && lesson::is_lesson_function(f.substr(dot + 1));
    };
    auto check = [&](const std::string& text, int line, const std::string& what, bool guess) {
        lesson::Expr e;
        try {
            e = lesson::Expr::parse(text);
        } catch (const moe::Error&) {
            return;  // already reported
        }
        for (auto& n : e.names()) {
            bool ok = known.count(n) > 0;
            if (guess && (n == "guess" || (L.question.kind == QuestionKind::Bars &&
                                           (n == "guess_max" || n == "guess_hottest" || n == "guess_total"))))
                ok = true;
            if (!ok)
                r.problem(line, what + ": unknown name '" + n + "' (see lessons/README.md for the numbers a lesson " +
                                    "can read)");
        }
        for (auto& f : e.functions())
            if (!fn_ok(f)) r.problem(line, what + ": unknown function '" + f + "()'");
    };
    auto check_text = [&](const std::string& text, int line, const std::string& what, bool guess) {
        try {
            for (auto& p : lesson::scan_template(text)) check(p.expr.text(), line, what, guess);
        } catch (const moe::Error& e) {
            r.problem(line, what + ": " + e.what());
        }
    };
    for (auto& v : L.values) check(v.expr.text, v.expr.line, "[values] " + v.name, false);
    const LessonQuestion& Q = L.question;
    for (auto& c : Q.choices) {
        check(c.when.text, c.when.line, "choice '" + c.key + "' when", false);
        check_text(c.feedback, c.line, "choice '" + c.key + "' feedback", false);
    }
    if (Q.kind == QuestionKind::Bars) {
        if (!Q.answer.text.empty() && !vectors.count(Q.answer.text))
            r.problem(Q.answer.line, "[question] a bars answer names a vector: expert_loads, demand or rank_loads");
    } else if (Q.kind != QuestionKind::Choice) {
        check(Q.answer.text, Q.answer.line, "[question] answer", false);
    }
    for (auto& m : Q.misconceptions) {
        check(m.when.text, m.when.line, "misconception when", true);
        check_text(m.feedback, m.when.line, "misconception feedback", true);
    }
    for (auto& c : L.checks) check(c.text, c.line, "check", false);
    // Before the reveal: intro, prompt, choices, try-next prompts, only inputs.
    auto check_before = [&](const std::string& text, int line, const std::string& what) {
        try {
            for (auto& p : lesson::scan_template(text)) {
                if (!p.expr.functions().empty())
                    r.problem(line, what + ": {" + p.expr.text() + "}: text shown before the reveal cannot call " +
                                        "a function of the run");
                for (auto& n : p.expr.names())
                    if (!inputs.count(n))
                        r.problem(line, what + ": {" + p.expr.text() + "}: '" + n + "' is not known before the run; " +
                                            "text shown before the reveal may use the scenario's inputs (tokens, " +
                                            "experts, top_k, ...) and [params] only");
            }
        } catch (const moe::Error& e) {
            r.problem(line, what + ": " + e.what());
        }
    };
    check_before(L.intro, 1, "intro");
    check_before(Q.prompt, Q.line, "[question] prompt");
    for (auto& c : Q.choices) check_before(c.text, c.line, "choice '" + c.key + "' text");
    for (auto& t : L.try_next) check_before(t.prompt, t.line, "[[try_next]] prompt");
    for (auto& s : L.show) check(s, reveal_line, "[reveal] show '" + s + "'", false);
    check_text(L.explanation, explanation_line, "[explanation] text", false);
    check_text(L.formula, explanation_line, "[explanation] formula", false);
}

}  // namespace demos::lesson_parse
