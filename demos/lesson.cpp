// Parses one lesson file into a Lesson and checks it without running anything: required keys, types,
// unknown keys (typos), the scenario and every override, and every expression against the names it may use.
#include "demos/lesson.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "demos/experiments.hpp"
#include "demos/lesson_numbers.hpp"
#include "demos/lesson_parse.hpp"
#include "kernels/common/error.hpp"

namespace demos {

const char* question_kind_name(QuestionKind k) {
    switch (k) {
        case QuestionKind::Choice: return "choice";
        case QuestionKind::Numeric: return "numeric";
        case QuestionKind::Slider: return "slider";
        case QuestionKind::Bars: return "bars";
        case QuestionKind::Timeline: return "timeline";
    }
    return "choice";
}

int word_count(const std::string& text) {
    int n = 0;
    bool in = false;
    for (char c : text) {
        bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
        if (!space && !in) ++n;
        in = !space;
    }
    return n;
}

namespace {
std::string trim_text(const std::string& s) {
    std::size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}
std::size_t paragraph_break(const std::string& t) { return t.find("\n\n"); }
}  // namespace

std::string explanation_opening(const std::string& text) {
    std::string t = trim_text(text);
    std::size_t at = paragraph_break(t);
    return at == std::string::npos ? t : trim_text(t.substr(0, at));
}

std::string explanation_more(const std::string& text) {
    std::string t = trim_text(text);
    std::size_t at = paragraph_break(t);
    return at == std::string::npos ? "" : trim_text(t.substr(at));
}

std::string LessonProblem::str() const {
    std::ostringstream os;
    os << file;
    if (line > 0) os << ":" << line;
    os << ": " << message;
    return os.str();
}

namespace {

using lesson_parse::check_names;
using lesson_parse::FileReader;
using lesson_parse::line_of;
using lesson_parse::misplaced_hint;
using lesson_parse::read_overrides;

QuestionKind parse_kind(const std::string& s, bool* ok) {
    *ok = true;
    if (s == "choice") return QuestionKind::Choice;
    if (s == "numeric") return QuestionKind::Numeric;
    if (s == "slider") return QuestionKind::Slider;
    if (s == "bars") return QuestionKind::Bars;
    if (s == "timeline") return QuestionKind::Timeline;
    *ok = false;
    return QuestionKind::Choice;
}

void read_question(FileReader& r, const toml::table& q, int qline, Lesson& L) {
    LessonQuestion& Q = L.question;
    Q.line = qline;
    r.only(q, {"kind", "prompt", "choices", "key", "answer", "tolerance", "rel_tolerance", "min", "max", "step",
               "unit", "expect", "misconceptions"},
           "[question]");
    std::string kind;
    if (r.str(q, "kind", &kind, true, qline, "[question]")) {
        bool ok = false;
        Q.kind = parse_kind(kind, &ok);
        if (!ok)
            r.problem(line_of(*q.get("kind")),
                      "[question] kind '" + kind + "': allowed: choice, numeric, slider, bars, timeline");
    }
    r.str(q, "prompt", &Q.prompt, true, qline, "[question]");
    r.str(q, "unit", &Q.unit, false, qline, "[question]");

    std::string key;
    if (r.str(q, "key", &key, false, qline, "[question]")) {
        if (key == "run")
            Q.key_from_run = true;
        else if (key != "marked")
            r.problem(line_of(*q.get("key")), "[question] key '" + key +
                                                  "': allowed: marked (one choice says correct = true) or run (the "
                                                  "run's numbers decide which choice is right)");
        if (Q.kind != QuestionKind::Choice)
            r.problem(line_of(*q.get("key")), "[question] key applies to choice questions only");
    }

    if (Q.kind == QuestionKind::Choice) {
        const toml::array* arr = q.get("choices") ? q.get("choices")->as_array() : nullptr;
        if (!arr) {
            r.problem(qline, "[question] kind 'choice' needs [[question.choices]] entries");
            return;
        }
        std::set<std::string> keys;
        int correct = 0;
        for (auto&& node : *arr) {
            const toml::table* c = node.as_table();
            if (!c) {
                r.problem(line_of(node), "each [[question.choices]] entry must be a table");
                continue;
            }
            LessonChoice ch;
            ch.line = line_of(node);
            std::string where = "[[question.choices]]";
            r.only(*c, {"key", "text", "when", "correct", "feedback"}, where);
            r.str(*c, "key", &ch.key, true, ch.line, where);
            if (!ch.key.empty() && !keys.insert(ch.key).second)
                r.problem(ch.line, where + ": key '" + ch.key + "' is used twice");
            if (ch.key.find_first_of(" \t,") != std::string::npos)
                r.problem(ch.line, where + ": key '" + ch.key + "' must be one word");
            r.str(*c, "text", &ch.text, true, ch.line, where);
            r.expr(*c, "when", &ch.when, true, ch.line, where);
            if (const toml::node* n = c->get("correct")) {
                if (auto v = n->value<bool>())
                    ch.correct = *v;
                else
                    r.problem(line_of(*n), where + ": 'correct' must be true or false");
            }
            correct += ch.correct;
            // With the key from the run, any choice may be the wrong one on some run: every one needs feedback.
            r.str(*c, "feedback", &ch.feedback, !ch.correct || Q.key_from_run, ch.line,
                  where + " '" + ch.key + "' (" + (Q.key_from_run ? "key = \"run\": every choice" : "a wrong choice") +
                      ")");
            Q.choices.push_back(ch);
        }
        if (Q.choices.size() < 2) r.problem(qline, "[question] a choice question needs at least two choices");
        if (Q.key_from_run && correct != 0)
            r.problem(qline, "[question] key = \"run\": no choice may say correct = true (the run decides)");
        if (!Q.key_from_run && correct != 1)
            r.problem(qline, "[question] exactly one choice must say correct = true (found " +
                                 std::to_string(correct) + "), or key = \"run\" to let the run decide");
        return;
    }

    // numeric, slider, bars, timeline
    r.expr(q, "answer", &Q.answer, true, qline, "[question]");
    r.num(q, "tolerance", &Q.tolerance);
    r.num(q, "rel_tolerance", &Q.rel_tolerance);
    if (!(Q.tolerance > 0 || Q.rel_tolerance > 0))
        r.problem(qline, "[question] needs tolerance > 0 or rel_tolerance > 0: how close counts as right");
    if (Q.tolerance < 0 || Q.rel_tolerance < 0) r.problem(qline, "[question] tolerances must not be negative");
    bool has_min = r.num(q, "min", &Q.min), has_max = r.num(q, "max", &Q.max);
    r.num(q, "step", &Q.step);
    bool ranged = Q.kind == QuestionKind::Slider || Q.kind == QuestionKind::Timeline || Q.kind == QuestionKind::Bars;
    if (ranged && !(has_min && has_max))
        r.problem(qline, std::string("[question] a ") + question_kind_name(Q.kind) + " question needs min and max");
    if ((has_min || has_max) && !(Q.max > Q.min)) r.problem(qline, "[question] max must be greater than min");
    if (const toml::node* n = q.get("expect")) {
        const toml::array* a = n->as_array();
        Q.expect_line = line_of(*n);
        if (a && a->size() == 2 && (*a)[0].value<double>() && (*a)[1].value<double>()) {
            Q.has_expect = true;
            Q.expect_lo = *(*a)[0].value<double>();
            Q.expect_hi = *(*a)[1].value<double>();
            if (Q.expect_hi < Q.expect_lo) r.problem(Q.expect_line, "[question] expect = [lo, hi] needs lo ≤ hi");
        } else {
            r.problem(Q.expect_line, "[question] expect must be [lo, hi], two numbers");
        }
    }
    const toml::array* arr = q.get("misconceptions") ? q.get("misconceptions")->as_array() : nullptr;
    if (!arr || arr->empty())
        r.problem(qline, "[question] needs [[question.misconceptions]]: the wrong guesses and what they mean");
    if (arr)
        for (auto&& node : *arr) {
            const toml::table* m = node.as_table();
            if (!m) {
                r.problem(line_of(node), "each [[question.misconceptions]] entry must be a table");
                continue;
            }
            Misconception mc;
            std::string where = "[[question.misconceptions]]";
            r.only(*m, {"when", "feedback"}, where);
            r.expr(*m, "when", &mc.when, true, line_of(node), where);
            r.str(*m, "feedback", &mc.feedback, true, line_of(node), where);
            Q.misconceptions.push_back(mc);
        }
}

}  // namespace

bool parse_lesson(const std::string& text, const std::string& source, Lesson* out,
                  std::vector<LessonProblem>* problems) {
    FileReader r(source, problems);
    toml::table doc;
    try {
        doc = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        r.problem(static_cast<int>(e.source().begin.line), std::string("malformed TOML: ") + std::string(e.description()));
        return false;
    }
    Lesson L;
    L.source = source;
    r.only(doc, {"id", "title", "concept", "order", "intro", "note", "scenario", "params", "runs", "values",
                 "question", "reveal", "explanation", "try_next", "checks"},
           "the lesson");
    if (r.str(doc, "id", &L.id, true, 1, "the lesson")) {
        bool ok = !L.id.empty() && L.id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
        if (!ok) r.problem(line_of(*doc.get("id")), "id '" + L.id + "': use lowercase letters, digits and '-'");
    }
    r.str(doc, "title", &L.title, true, 1, "the lesson");
    r.str(doc, "intro", &L.intro, true, 1, "the lesson");
    r.str(doc, "note", &L.note, false, 1, "the lesson");
    if (r.integer(doc, "concept", &L.concept_number) && (L.concept_number < 0 || L.concept_number > 99))
        r.problem(line_of(*doc.get("concept")), "concept must be 0..99");
    L.order = L.concept_number > 0 ? L.concept_number * 10 : 1000;
    r.integer(doc, "order", &L.order);

    // The scenario goes through Scenario's own reader, which accepts the nested [scenario] table.
    if (const toml::table* sc = r.table(doc, "scenario", true, 1)) {
        try {
            L.scenario = Scenario::from_toml(text, source);
            for (auto& m : L.scenario.validate()) r.problem(line_of(*sc), "[scenario] " + m);
        } catch (const moe::Error& e) {
            // Scenario's reader says "SOURCE:LINE: what"; keep the line, drop the repeated name.
            std::string msg = e.what();
            int line = line_of(*sc);
            if (msg.rfind(source + ":", 0) == 0) {
                std::size_t at = source.size() + 1;
                std::size_t end = msg.find(':', at);
                if (end != std::string::npos && end > at &&
                    msg.substr(at, end - at).find_first_not_of("0123456789") == std::string::npos) {
                    line = std::stoi(msg.substr(at, end - at));
                    msg = msg.substr(end + 1);
                    if (!msg.empty() && msg[0] == ' ') msg.erase(0, 1);
                }
            }
            std::size_t q1 = msg.find("unknown key '");
            if (q1 != std::string::npos) {
                std::size_t q2 = msg.find('\'', q1 + 13);
                if (q2 != std::string::npos) msg += misplaced_hint(msg.substr(q1 + 13, q2 - q1 - 13));
            }
            r.problem(line, "[scenario] " + msg);
        }
    }
    if (const toml::table* p = r.table(doc, "params", false, 1))
        for (auto&& [k, v] : *p) {
            if (auto d = v.value<double>())
                L.params[std::string(k.str())] = *d;
            else
                r.problem(line_of(v), "[params] " + std::string(k.str()) + " must be a number" +
                                          misplaced_hint(std::string(k.str())));
        }
    std::set<std::string> taken;
    for (auto& m : lesson::metric_catalog()) taken.insert(m.name);
    for (auto& [k, v] : L.params)
        if (taken.count(k)) r.problem(line_of(*doc["params"][k].node()), "[params] " + k + " hides a number of the same name");
    if (const toml::table* runs = r.table(doc, "runs", false, 1))
        for (auto&& [k, v] : *runs) {
            LessonRun run;
            run.name = std::string(k.str());
            run.line = line_of(v);
            if (run.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
                r.problem(run.line, "[runs." + run.name + "]: a run name uses lowercase letters, digits and '_'");
            if (const toml::table* t = v.as_table())
                run.overrides = read_overrides(r, *t, "[runs." + run.name + "]");
            else
                r.problem(run.line, "[runs." + run.name + "] must be a table of scenario keys");
            L.runs.push_back(run);
        }
    if (const toml::table* vals = r.table(doc, "values", false, 1))
        for (auto&& [k, v] : *vals) {
            NamedExpr ne;
            ne.name = std::string(k.str());
            ne.expr.line = line_of(v);
            if (auto s = v.value<std::string>()) {
                ne.expr.text = *s;
                r.parses(ne.expr, "[values] " + ne.name);
            } else {
                r.problem(ne.expr.line, "[values] " + ne.name + " must be an expression in a string" +
                                            misplaced_hint(ne.name));
            }
            if (taken.count(ne.name) || L.params.count(ne.name))
                r.problem(ne.expr.line, "[values] " + ne.name + " hides a number of the same name");
            L.values.push_back(ne);
        }
    if (const toml::table* q = r.table(doc, "question", true, 1)) read_question(r, *q, line_of(*q), L);
    if (const toml::table* rv = r.table(doc, "reveal", true, 1)) {
        r.only(*rv, {"demo", "view", "show", "experiment"}, "[reveal]");
        if (r.str(*rv, "experiment", &L.experiment, false, line_of(*rv), "[reveal]") && !is_experiment(L.experiment)) {
            std::string all;
            for (auto& n : experiment_names()) all += (all.empty() ? "" : ", ") + n;
            r.problem(line_of(*rv->get("experiment")),
                      "[reveal] experiment '" + L.experiment + "': allowed: " + all);
        }
        std::string demo;
        if (r.str(*rv, "demo", &demo, true, line_of(*rv), "[reveal]")) {
            if (demo == "routing" || demo == "dispatch" || demo == "layer" || demo == "pipeline")
                L.demo = parse_demo(demo);
            else
                r.problem(line_of(*rv->get("demo")), "[reveal] demo '" + demo +
                                                         "': allowed: routing, dispatch, layer, pipeline");
        }
        if (r.str(*rv, "view", &L.view, true, line_of(*rv), "[reveal]")) {
            static const char* views[] = {"loads", "comm", "dispatch", "timeline", "pipeline"};
            if (std::none_of(std::begin(views), std::end(views), [&](const char* v) { return L.view == v; }))
                r.problem(line_of(*rv->get("view")),
                          "[reveal] view '" + L.view + "': allowed: loads, comm, dispatch, timeline, pipeline");
        }
        if (const toml::node* n = rv->get("show")) {
            const toml::array* a = n->as_array();
            if (!a) r.problem(line_of(*n), "[reveal] show must be a list of expressions");
            if (a)
                for (auto&& e : *a) {
                    if (auto s = e.value<std::string>()) {
                        L.show.push_back(*s);
                        r.parses({*s, line_of(e)}, "[reveal] show");
                    } else {
                        r.problem(line_of(e), "[reveal] show entries must be strings");
                    }
                }
        }
    }
    if (const toml::table* ex = r.table(doc, "explanation", true, 1)) {
        r.only(*ex, {"formula", "text"}, "[explanation]");
        r.str(*ex, "formula", &L.formula, true, line_of(*ex), "[explanation]");
        r.str(*ex, "text", &L.explanation, true, line_of(*ex), "[explanation]");
    }
    if (const toml::node* tn = doc.get("try_next")) {
        const toml::array* a = tn->as_array();
        if (!a) r.problem(line_of(*tn), "try_next must be [[try_next]] entries");
        if (a)
            for (auto&& node : *a) {
                const toml::table* t = node.as_table();
                if (!t) continue;
                TryNext tr;
                tr.line = line_of(node);
                r.only(*t, {"prompt", "scenario", "params"}, "[[try_next]]");
                r.str(*t, "prompt", &tr.prompt, true, tr.line, "[[try_next]]");
                if (const toml::table* sc = r.table(*t, "scenario", false, tr.line))
                    tr.overrides = read_overrides(r, *sc, "[[try_next]] scenario");
                if (const toml::table* pp = r.table(*t, "params", false, tr.line))
                    for (auto&& [k, v] : *pp) {
                        std::string key(k.str());
                        if (!L.params.count(key))
                            r.problem(line_of(v), "[[try_next]] params: '" + key + "' is not in [params]");
                        else if (auto d = v.value<double>())
                            tr.params[key] = *d;
                        else
                            r.problem(line_of(v), "[[try_next]] params: '" + key + "' must be a number");
                    }
                L.try_next.push_back(tr);
            }
    }
    if (const toml::node* cn = doc.get("checks")) {
        const toml::array* a = cn->as_array();
        if (!a) r.problem(line_of(*cn), "checks must be a list of expressions");
        if (a)
            for (auto&& e : *a) {
                if (auto s = e.value<std::string>()) {
                    LessonExpr le{*s, line_of(e)};
                    r.parses(le, "check");
                    L.checks.push_back(le);
                } else {
                    r.problem(line_of(e), "checks entries must be strings");
                }
            }
    }
    // Overrides must also give a valid scenario on top of the lesson's own.
    if (r.count() == 0) {
        auto valid = [&](const std::string& ov, int line, const std::string& where) {
            try {
                Scenario s = apply_overrides(L.scenario, ov, where);
                for (auto& m : s.validate()) r.problem(line, where + ": " + m);
            } catch (const moe::Error& e) {
                r.problem(line, e.what());  // apply_overrides names `where` itself
            }
        };
        for (auto& run : L.runs) valid(run.overrides, run.line, "[runs." + run.name + "]");
        for (auto& t : L.try_next) valid(t.overrides, t.line, "[[try_next]]");
        int reveal_line = doc["reveal"].node() ? line_of(*doc["reveal"].node()) : 0;
        int explanation_line = doc["explanation"].node() ? line_of(*doc["explanation"].node()) : 0;
        check_names(r, L, reveal_line, explanation_line);
    }
    if (r.count() != 0) return false;
    *out = std::move(L);
    return true;
}

}  // namespace demos
