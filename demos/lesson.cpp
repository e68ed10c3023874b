// Parses one lesson file into a Lesson and checks it without running anything: required keys, types,
// unknown keys (typos), the scenario and every override, and every expression against the names it may use.
#include "demos/lesson.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "demos/experiments.hpp"
#include "demos/lesson_expr.hpp"
#include "demos/lesson_numbers.hpp"
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

int line_of(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

// TOML puts every key after a [table] header into that table, so a top-level key written late lands in
// the wrong place. The most common mistake in a lesson file; say so.
std::string misplaced_hint(const std::string& key) {
    static const char* top[] = {"id", "title", "concept", "order", "intro", "note", "checks"};
    for (auto* t : top)
        if (key == t)
            return " ('" + key + "' is a top-level key: in TOML it must come before the first [table] header)";
    return "";
}

// Reads one file, collecting problems instead of throwing, so an instructor sees all of them at once.
class FileReader {
  public:
    FileReader(std::string source, std::vector<LessonProblem>* problems) : source_(std::move(source)), out_(problems) {}

    void problem(int line, const std::string& msg) {
        out_->push_back({source_, line, msg});
        ++count_;
    }
    int count() const { return count_; }
    const std::string& source() const { return source_; }

    // Reports every key of `t` not in `allowed`.
    void only(const toml::table& t, std::initializer_list<const char*> allowed, const std::string& where) {
        for (auto&& [k, v] : t) {
            bool ok = false;
            for (auto* a : allowed) ok = ok || k.str() == a;
            if (!ok) {
                std::string list;
                for (auto* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
                problem(line_of(v), "unknown key '" + std::string(k.str()) + "' in " + where + "; allowed: " + list +
                                        misplaced_hint(std::string(k.str())));
            }
        }
    }
    bool str(const toml::table& t, const char* key, std::string* out, bool required, int table_line,
             const std::string& where) {
        const toml::node* n = t.get(key);
        if (!n) {
            if (required) problem(table_line, where + ": missing key '" + key + "'");
            return false;
        }
        if (auto v = n->value<std::string>()) {
            *out = *v;
            if (required && out->empty()) problem(line_of(*n), where + ": '" + key + "' must not be empty");
            return true;
        }
        problem(line_of(*n), where + ": '" + key + "' must be a string");
        return false;
    }
    bool num(const toml::table& t, const char* key, double* out, int* line = nullptr) {
        const toml::node* n = t.get(key);
        if (!n) return false;
        if (line) *line = line_of(*n);
        if (auto v = n->value<double>()) {
            *out = *v;
            return true;
        }
        problem(line_of(*n), std::string("'") + key + "' must be a number");
        return false;
    }
    bool integer(const toml::table& t, const char* key, int* out) {
        const toml::node* n = t.get(key);
        if (!n) return false;
        if (n->is_integer()) {
            *out = static_cast<int>(*n->value<std::int64_t>());
            return true;
        }
        problem(line_of(*n), std::string("'") + key + "' must be a whole number");
        return false;
    }
    const toml::table* table(const toml::table& t, const char* key, bool required, int table_line) {
        const toml::node* n = t.get(key);
        if (!n) {
            if (required) problem(table_line, std::string("missing table [") + key + "]");
            return nullptr;
        }
        if (auto* tt = n->as_table()) return tt;
        problem(line_of(*n), std::string("'") + key + "' must be a table");
        return nullptr;
    }
    // An expression from a string value; parse errors name the line and the column inside the expression.
    bool expr(const toml::table& t, const char* key, LessonExpr* out, bool required, int table_line,
              const std::string& where) {
        if (!str(t, key, &out->text, required, table_line, where)) return false;
        out->line = line_of(*t.get(key));
        return parses(*out, where + " '" + key + "'");
    }
    bool parses(const LessonExpr& e, const std::string& what) {
        try {
            lesson::Expr::parse(e.text);
            return true;
        } catch (const moe::Error& err) {
            // A long expression is quoted by its start only: the error says where in it things went wrong.
            std::size_t cut = std::min<std::size_t>(100, e.text.size());
            while (cut > 0 && cut < e.text.size() && (static_cast<unsigned char>(e.text[cut]) & 0xC0) == 0x80) --cut;
            const std::string shown =
                e.text.size() > 120 ? e.text.substr(0, cut) + "… (" + std::to_string(e.text.size()) + " characters)"
                                    : e.text;
            problem(e.line, what + " = \"" + shown + "\": " + err.what());
            return false;
        }
    }

  private:
    std::string source_;
    std::vector<LessonProblem>* out_;
    int count_ = 0;
};

// The scenario's canonical keys and their TOML types, taken from a default scenario's own TOML.
const toml::table& scenario_keys() {
    static const toml::table t = toml::parse(Scenario{}.to_toml());
    return t;
}

// Checks an override table against the scenario's keys and types; returns its TOML text.
std::string read_overrides(FileReader& r, const toml::table& t, const std::string& where) {
    const toml::table& keys = scenario_keys();
    for (auto&& [k, v] : t) {
        const toml::node* ref = keys.get(k.str());
        if (!ref) {
            r.problem(line_of(v), where + ": unknown scenario key '" + std::string(k.str()) + "'" +
                                      misplaced_hint(std::string(k.str())));
            continue;
        }
        bool ok = ref->type() == v.type() || (ref->is_floating_point() && v.is_integer());
        if (!ok) r.problem(line_of(v), where + ": scenario key '" + std::string(k.str()) + "' has the wrong type");
    }
    toml::table plain = t;
    plain.is_inline(false);  // `{ a = 1 }` in the file; "a = 1" lines as the overrides text
    std::ostringstream os;
    os << plain;
    return os.str();
}

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

// Every expression may read the run's numbers, RUN.number for each extra run, params and values;
// misconceptions also read `guess`. Names outside that set are typos, reported with their line.
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
    if (r.integer(doc, "concept", &L.concept) && (L.concept < 0 || L.concept > 99))
        r.problem(line_of(*doc.get("concept")), "concept must be 0..99");
    L.order = L.concept > 0 ? L.concept * 10 : 1000;
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
