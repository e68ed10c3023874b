// Runs a lesson's scenarios, names their numbers for the lesson's expressions, grades a prediction, and
// verifies a lesson against the CPU reference. The terminal player, the app and the tests share all of it.
#include "demos/lesson_play.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "demos/lesson_expr.hpp"
#include "kernels/common/error.hpp"

namespace demos {

namespace {

std::string trim(const std::string& s) {
    std::size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

bool to_number(const std::string& text, double* out) {
    std::string t = trim(text);
    if (t.empty()) return false;
    char* end = nullptr;
    *out = std::strtod(t.c_str(), &end);
    return end && *end == '\0' && std::isfinite(*out);
}

std::string range_text(double lo, double hi) {
    return "from " + lesson::format_number(lo) + " to " + lesson::format_number(hi);
}

}  // namespace

int bars_count(const LessonQuestion& q, const Scenario& s) {
    return q.answer.text == "rank_loads" ? s.ranks : s.experts;
}

std::string answer_hint(const LessonQuestion& q, const Scenario& s) {
    switch (q.kind) {
        case QuestionKind::Choice: {
            std::string keys;
            for (auto& c : q.choices) keys += (keys.empty() ? "" : ", ") + c.key;
            return "one of " + keys;
        }
        case QuestionKind::Bars:
            return std::to_string(bars_count(q, s)) + " numbers, comma-separated; N*R repeats N R times";
        default:
            if (q.max > q.min) return "a number " + range_text(q.min, q.max) + (q.unit.empty() ? "" : " (" + q.unit + ")");
            return "a number" + (q.unit.empty() ? std::string() : " (" + q.unit + ")");
    }
}

std::string parse_answer(const LessonQuestion& q, const Scenario& s, const std::string& text, LessonAnswer* out) {
    std::string t = trim(text);
    if (q.kind == QuestionKind::Choice) {
        std::string low = t;
        for (auto& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (!low.empty() && low.back() == ')') low.pop_back();  // "b)" as printed
        for (auto& c : q.choices) {
            std::string key = c.key;
            for (auto& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            if (low == key) {
                out->choice = c.key;
                return "";
            }
        }
        return "'" + t + "' is not one of the choices; type " + answer_hint(q, s);
    }
    if (q.kind == QuestionKind::Bars) {
        const int want = bars_count(q, s);
        std::vector<double> bars;
        std::stringstream ss(t);
        std::string item;
        while (std::getline(ss, item, ',')) {
            std::string it = trim(item);
            double v = 0, rep = 1;
            std::size_t star = it.find('*');
            bool ok = star == std::string::npos ? to_number(it, &v)
                                                 : to_number(it.substr(0, star), &v) && to_number(it.substr(star + 1), &rep);
            if (!ok || rep < 1 || rep != std::floor(rep) || rep > 4096)
                return "'" + it + "' is not a number (or N*R with a whole R); type " + answer_hint(q, s);
            if (v < 0) return "'" + it + "': loads cannot be negative";
            if (q.max > q.min && (v < q.min || v > q.max))
                return "'" + it + "': each bar goes " + range_text(q.min, q.max);
            for (int i = 0; i < int(rep); ++i) bars.push_back(v);
        }
        if (int(bars.size()) != want)
            return "that is " + std::to_string(bars.size()) + " bars; type " + answer_hint(q, s);
        if (*std::max_element(bars.begin(), bars.end()) <= 0) return "at least one bar must be above zero";
        out->bars = bars;
        return "";
    }
    double v = 0;
    if (!to_number(t, &v)) return "'" + t + "' is not a number; type " + answer_hint(q, s);
    if (q.max > q.min && (v < q.min || v > q.max))
        return lesson::format_number(v) + " is out of range; type " + answer_hint(q, s);
    out->value = v;
    return "";
}

std::string parse_confidence(const std::string& text, int* out) {
    double v = 0;
    std::string t = trim(text);
    if (!to_number(t, &v) || v != std::floor(v)) return "'" + t + "' is not a whole number; type 1, 2, 3, 4 or 5";
    if (v < 1 || v > 5) return t + " is out of range; type 1 (a guess) to 5 (certain)";
    *out = int(v);
    return "";
}

// ---------------------------------------------------------------------------------------------------------

lesson::Number LessonReveal::eval(const std::string& text, const std::map<std::string, double>* extra) const {
    lesson::Source src = lesson::Source::Input;
    auto run_of = [&](const std::string& name, std::string* rest) -> const lesson::RunNumbers* {
        std::size_t dot = name.find('.');
        if (dot == std::string::npos) {
            *rest = name;
            return numbers.empty() ? nullptr : &numbers[0];
        }
        for (std::size_t i = 1; i < run_names.size(); ++i)
            if (run_names[i] == name.substr(0, dot)) {
                *rest = name.substr(dot + 1);
                return &numbers[i];
            }
        return nullptr;
    };
    lesson::Lookup lookup = [&](const std::string& name) -> std::optional<double> {
        if (extra) {
            auto it = extra->find(name);
            if (it != extra->end()) return it->second;
        }
        if (auto it = params.find(name); it != params.end()) return it->second;
        if (auto it = values.find(name); it != values.end()) {
            src = lesson::combine(src, it->second.source);
            return it->second.value;
        }
        std::string rest;
        const lesson::RunNumbers* run = run_of(name, &rest);
        if (!run) return std::nullopt;
        auto it = run->scalars.find(rest);
        if (it == run->scalars.end()) return std::nullopt;
        src = lesson::combine(src, it->second.source);
        return it->second.value;
    };
    lesson::Call call = [&](const std::string& name, const std::vector<double>& args) -> std::optional<double> {
        std::string rest;
        const lesson::RunNumbers* run = run_of(name, &rest);
        if (!run) return std::nullopt;
        auto n = lesson::call_function(*run, rest, args);
        if (!n) return std::nullopt;
        src = lesson::combine(src, n->source);
        return n->value;
    };
    lesson::Number out;
    out.value = lesson::Expr::parse(text).eval(lookup, call);
    out.source = src;
    return out;
}

std::string LessonReveal::fill(const std::string& text, const std::map<std::string, double>* extra) const {
    return lesson::fill_template(text, [&](const lesson::Expr& e) { return eval(e.text(), extra).value; });
}

std::vector<Scenario> lesson_scenarios(const Lesson& l, const Scenario& base, const std::string& backend) {
    std::vector<Scenario> out{base};
    for (auto& run : l.runs) out.push_back(apply_overrides(base, run.overrides, l.source + " [runs." + run.name + "]"));
    if (!backend.empty())
        for (auto& s : out) s.backend = backend;
    return out;
}

void make_reveal(const Lesson& l, const Scenario& base, const std::map<std::string, double>& params,
                 std::vector<Result> results, LessonReveal* out) {
    MOE_ASSERT(results.size() == l.runs.size() + 1, "one result per lesson run");
    out->scenario = base;
    out->params = params;
    out->run_names = {""};
    for (auto& r : l.runs) out->run_names.push_back(r.name);
    out->results = std::move(results);
    out->numbers.clear();
    for (auto& r : out->results) out->numbers.push_back(lesson::numbers_of(r));
    out->values.clear();
    for (auto& v : l.values) {
        try {
            out->values[v.name] = out->eval(v.expr.text);
        } catch (const moe::Error& e) {
            MOE_BAD_INPUT(l.source << ":" << v.expr.line << ": [values] " << v.name << ": " << e.what());
        }
    }
}

void run_lesson(const Lesson& l, const Scenario& base, const std::map<std::string, double>& params,
                const std::string& backend, const RunControl& ctl, LessonReveal* out) {
    std::vector<Scenario> scenarios = lesson_scenarios(l, base, backend);
    std::vector<Result> results;
    for (std::size_t i = 0; i < scenarios.size(); ++i) {
        RunControl c = ctl;
        if (ctl.progress) {
            float lo = float(i) / scenarios.size(), hi = float(i + 1) / scenarios.size();
            c.progress = [&, lo, hi](float f, const std::string& what) { ctl.progress(lo + (hi - lo) * f, what); };
        }
        results.push_back(run(scenarios[i], l.demo, c));
    }
    make_reveal(l, base, params, std::move(results), out);
}

// ---------------------------------------------------------------------------------------------------------

namespace {

std::string confidence_note(bool correct, int confidence) {
    if (!correct && confidence >= 4)
        return "You were sure (confidence " + std::to_string(confidence) +
               ") and it was off: a confident miss. These are the misses that stick best once corrected, so read "
               "why below.";
    if (correct && confidence > 0 && confidence <= 2)
        return "Right, though you were unsure (confidence " + std::to_string(confidence) +
               "): the reasoning was sound, trust it next time.";
    if (!correct && confidence > 0 && confidence <= 2)
        return "You were unsure, and the numbers below show what was missing.";
    return "";
}

}  // namespace

LessonGrade grade(const Lesson& l, const LessonReveal& r, const LessonAnswer& a) {
    LessonGrade g;
    const LessonQuestion& q = l.question;
    if (q.kind == QuestionKind::Choice) {
        std::vector<std::string> holds;
        const LessonChoice* declared = nullptr;
        for (auto& c : q.choices) {
            if (c.correct) declared = &c;
            lesson::Number n = r.eval(c.when.text);
            if (n.value != 0.0) holds.push_back(c.key);
            g.truth_source = lesson::combine(g.truth_source, n.source);
        }
        if (holds.size() == 1) g.right_key = holds[0];
        // Graded on this run's numbers: a variation or a GPU may legitimately move the answer.
        g.correct = std::find(holds.begin(), holds.end(), a.choice) != holds.end();
        g.score = g.correct ? 1 : 0;
        const LessonChoice* right = nullptr;
        for (auto& c : q.choices)
            if (c.key == g.right_key) right = &c;
        g.truth_text = right ? right->key + ") " + right->text : "none of the choices matches exactly";
        if (declared && g.right_key != declared->key)
            g.notes.push_back(holds.empty()
                                  ? "On this run no choice's condition holds exactly; the numbers below are the answer."
                                  : "On this run the answer differs from the lesson's key (" + declared->key +
                                        "): the live numbers decide.");
        if (!g.correct)
            for (auto& c : q.choices)
                if (c.key == a.choice) g.feedback = r.fill(c.feedback);
    } else {
        std::map<std::string, double> extra;
        if (q.kind == QuestionKind::Bars) {
            const auto& v = r.numbers.at(0).vectors.at(q.answer.text);
            g.truth_bars = v;
            g.truth = lesson::max_over_mean(v);
            g.truth_source = r.numbers.at(0).vector_sources.at(q.answer.text);
            g.guess = lesson::max_over_mean(a.bars);
            double mx = a.bars.empty() ? 0 : *std::max_element(a.bars.begin(), a.bars.end());
            extra["guess_max"] = mx;
            extra["guess_hottest"] =
                a.bars.empty() ? 0 : double(std::max_element(a.bars.begin(), a.bars.end()) - a.bars.begin());
            double total = 0;
            for (double b : a.bars) total += b;
            extra["guess_total"] = total;
        } else {
            lesson::Number n = r.eval(q.answer.text);
            g.truth = n.value;
            g.truth_source = n.source;
            g.guess = a.value;
        }
        extra["guess"] = g.guess;
        g.tolerance = std::max(q.tolerance, q.rel_tolerance * std::fabs(g.truth));
        double err = std::fabs(g.guess - g.truth);
        g.correct = err <= g.tolerance * (1 + 1e-12);
        g.score = g.correct ? 1.0 : std::max(0.0, 1.0 - (err - g.tolerance) / (2 * g.tolerance));
        g.truth_text = lesson::format_number(g.truth) + (q.unit.empty() ? "" : " " + q.unit);
        if (q.kind == QuestionKind::Bars) g.truth_text = "max/mean " + g.truth_text;
        if (!g.correct) {
            for (auto& m : q.misconceptions)
                if (r.eval(m.when.text, &extra).value != 0.0) {
                    g.feedback = r.fill(m.feedback, &extra);
                    break;
                }
            if (g.feedback.empty())
                g.feedback = std::string(g.guess < g.truth ? "Too low" : "Too high") + ": the engine says " +
                             g.truth_text + ", and within " + lesson::format_number(g.tolerance) + " counts as right.";
        }
    }
    g.confidence_note = confidence_note(g.correct, a.confidence);
    return g;
}

std::string class_suggestion(int correct, int total) {
    if (total <= 0) return "";
    double share = double(correct) / total;
    if (share < 0.35) return "Under 35% correct: give a hint and re-teach the idea, then ask again.";
    if (share <= 0.70) return "Between 35% and 70% correct: have students convince a neighbour, then vote again.";
    return "Above 70% correct: explain briefly and move on.";
}

// ---------------------------------------------------------------------------------------------------------

std::vector<std::string> verify_lesson(const Lesson& l, const std::string& backend) {
    std::vector<std::string> out;
    auto problem = [&](int line, const std::string& msg) {
        out.push_back(l.source + (line > 0 ? ":" + std::to_string(line) : "") + ": " + msg);
    };
    const LessonQuestion& q = l.question;
    auto play = [&](const Scenario& base, const std::map<std::string, double>& params, const std::string& what,
                    bool key) {
        LessonReveal r;
        try {
            run_lesson(l, base, params, backend, {}, &r);
        } catch (const moe::Error& e) {
            problem(q.line, what + ": the engine failed: " + e.what());
            return;
        }
        auto eval = [&](const std::string& text, int line, const std::map<std::string, double>* extra) -> double {
            try {
                return r.eval(text, extra).value;
            } catch (const moe::Error& e) {
                problem(line, what + ": \"" + text + "\": " + e.what());
                return std::nan("");
            }
        };
        auto fills = [&](const std::string& text, int line, const std::map<std::string, double>* extra) {
            try {
                r.fill(text, extra);
            } catch (const moe::Error& e) {
                problem(line, what + ": " + e.what());
            }
        };
        for (auto& s : l.show) eval(s, q.line, nullptr);
        fills(l.explanation, q.line, nullptr);
        fills(l.formula, q.line, nullptr);
        if (!key) return;
        if (q.kind == QuestionKind::Choice) {
            for (auto& c : q.choices) {
                double v = eval(c.when.text, c.when.line, nullptr);
                if (c.correct && v == 0.0)
                    problem(c.when.line, "choice '" + c.key + "' is the lesson's answer, but its condition \"" +
                                             c.when.text + "\" is false on the engine's numbers");
                if (!c.correct && v != 0.0)
                    problem(c.when.line, "choice '" + c.key + "' is marked wrong, but its condition \"" +
                                             c.when.text + "\" holds on the engine's numbers");
                fills(c.feedback, c.line, nullptr);
            }
        } else {
            double truth = 0;
            if (q.kind == QuestionKind::Bars) {
                const auto& v = r.numbers[0].vectors.at(q.answer.text);
                truth = lesson::max_over_mean(v);
                if (q.max > q.min)
                    for (double b : v)
                        if (b < q.min || b > q.max)
                            problem(q.line, "a measured bar (" + lesson::format_number(b) +
                                                ") lies outside min..max, so no drawing can match it");
            } else {
                truth = eval(q.answer.text, q.answer.line, nullptr);
                if (q.max > q.min && !(truth >= q.min && truth <= q.max))
                    problem(q.answer.line, "the answer " + lesson::format_number(truth) +
                                               " lies outside min..max: no student can give it");
            }
            if (!std::isfinite(truth)) problem(q.answer.line, "the answer is not a finite number");
            if (q.has_expect && !(truth >= q.expect_lo && truth <= q.expect_hi))
                problem(q.expect_line, "the lesson expects the answer in [" + lesson::format_number(q.expect_lo) +
                                           ", " + lesson::format_number(q.expect_hi) + "], the engine gives " +
                                           lesson::format_number(truth));
            // No misconception may fire on the right answer.
            std::map<std::string, double> extra{{"guess", truth}, {"guess_max", 0}, {"guess_hottest", 0},
                                                {"guess_total", 0}};
            if (q.kind == QuestionKind::Bars) {
                const auto& v = r.numbers[0].vectors.at(q.answer.text);
                extra["guess_max"] = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
                extra["guess_hottest"] = double(r.numbers[0].scalars.at("hottest_expert").value);
                double total = 0;
                for (double b : v) total += b;
                extra["guess_total"] = total;
            }
            for (auto& m : q.misconceptions) {
                if (eval(m.when.text, m.when.line, &extra) != 0.0)
                    problem(m.when.line, "this misconception fires on the right answer (" +
                                             lesson::format_number(truth) + ")");
                fills(m.feedback, m.when.line, &extra);
            }
        }
        for (auto& c : l.checks)
            if (eval(c.text, c.line, nullptr) == 0.0)
                problem(c.line, "check \"" + c.text + "\" is false on the engine's numbers");
    };
    play(l.scenario, l.params, "the lesson", true);
    for (std::size_t i = 0; i < l.try_next.size(); ++i) {
        const TryNext& t = l.try_next[i];
        auto params = l.params;
        for (auto& [k, v] : t.params) params[k] = v;
        Scenario s;
        try {
            s = apply_overrides(l.scenario, t.overrides, l.source);
        } catch (const moe::Error& e) {
            problem(t.line, e.what());
            continue;
        }
        play(s, params, "try next " + std::to_string(i + 1), false);
    }
    return out;
}

}  // namespace demos
