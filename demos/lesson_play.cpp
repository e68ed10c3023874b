// Runs a lesson's scenarios, names their numbers for the lesson's expressions, and grades a prediction or a class's
// votes. The terminal player, the app and the tests share all of it; lesson_verify.cpp checks a lesson's truth.
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
    // Bounded before parsing: no answer a student types is this long (1024 bars of "999999," is 7 KiB).
    constexpr std::size_t kMaxAnswerChars = 16384;
    if (text.size() > kMaxAnswerChars)
        return "the answer is " + std::to_string(text.size()) + " characters, more than " +
               std::to_string(kMaxAnswerChars) + "; type " + answer_hint(q, s);
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
            if (bars.size() + std::size_t(rep) > std::size_t(want))  // refused as soon as the count passes
                return "that is more than " + std::to_string(want) + " bars; type " + answer_hint(q, s);
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

std::vector<ExperimentResult> run_lesson_experiments(const Lesson& l, const std::vector<Result>& results,
                                                    const std::map<std::string, double>& params) {
    std::vector<ExperimentResult> out;
    if (l.experiment.empty()) return out;
    for (auto& r : results) out.push_back(run_experiment(l.experiment, r, params));
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
    if (l.experiment.empty())
        out->experiments.clear();
    else if (out->experiments.size() != out->results.size())
        out->experiments = run_lesson_experiments(l, out->results, params);
    out->numbers.clear();
    for (std::size_t i = 0; i < out->results.size(); ++i) {
        out->numbers.push_back(lesson::numbers_of(out->results[i]));
        if (i < out->experiments.size()) {
            lesson::RunNumbers& n = out->numbers.back();
            for (auto& [k, v] : out->experiments[i].scalars) n.scalars[k] = v;
            for (auto& [k, v] : out->experiments[i].vectors) {
                n.vectors[k] = v;
                n.vector_sources[k] = out->experiments[i].scalars.empty()
                                          ? lesson::Source::Modeled
                                          : out->experiments[i].scalars.begin()->second.source;
            }
        }
    }
    // Values may read each other in any order (TOML keeps a table's keys sorted): evaluate what can be, repeat.
    out->values.clear();
    std::vector<const NamedExpr*> pending;
    for (auto& v : l.values) pending.push_back(&v);
    while (!pending.empty()) {
        std::vector<const NamedExpr*> left;
        std::string first_error;
        const NamedExpr* first = nullptr;
        for (const NamedExpr* v : pending) {
            try {
                out->values[v->name] = out->eval(v->expr.text);
            } catch (const moe::Error& e) {
                left.push_back(v);
                if (!first) first = v, first_error = e.what();
            }
        }
        if (left.size() == pending.size())
            MOE_BAD_INPUT(l.source << ":" << first->expr.line << ": [values] " << first->name << ": " << first_error);
        pending = left;
    }
}

LessonReveal preview(const Lesson& l, const Scenario& base, const std::map<std::string, double>& params) {
    LessonReveal r;
    r.scenario = base;
    r.params = params;
    r.run_names = {""};
    std::vector<Scenario> scenarios = lesson_scenarios(l, base);
    for (auto& run : l.runs) r.run_names.push_back(run.name);
    for (auto& s : scenarios) {
        Result res;
        res.scenario = s;
        lesson::RunNumbers n = lesson::numbers_of(res);
        lesson::RunNumbers only;  // inputs only: anything else would be a number that has not been measured yet
        for (auto& [k, v] : n.scalars)
            if (lesson::is_input_metric(k)) only.scalars[k] = v;
        r.numbers.push_back(only);
        r.results.push_back(std::move(res));
    }
    return r;
}

std::string fill_before(const Lesson& l, const Scenario& base, const std::map<std::string, double>& params,
                        const std::string& text) {
    if (text.find('{') == std::string::npos && text.find('}') == std::string::npos) return text;
    return preview(l, base, params).fill(text);
}

void variation(const Lesson& l, int index, Scenario* scenario, std::map<std::string, double>* params) {
    *scenario = l.scenario;
    *params = l.params;
    if (index == 0) return;
    if (index < 1 || index > int(l.try_next.size()))
        MOE_BAD_INPUT("--try " << index << ": lesson " << l.id << " has " << l.try_next.size() << " variations (1.."
                               << l.try_next.size() << ")");
    const TryNext& t = l.try_next[std::size_t(index - 1)];
    *scenario = apply_overrides(l.scenario, t.overrides, l.source);
    for (auto& [k, v] : t.params) (*params)[k] = v;
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

std::string count_class_votes(const Lesson& l, const LessonGrade& g, const std::string& text, ClassVotes* out) {
    ClassVotes v;
    std::vector<double> items;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        double x = 0;
        if (!to_number(item, &x)) return "'" + trim(item) + "' is not a number";
        items.push_back(x);
    }
    const LessonQuestion& q = l.question;
    if (q.kind == QuestionKind::Choice) {
        if (items.size() != q.choices.size())
            return "type one count per choice (" + std::to_string(q.choices.size()) + " numbers, e.g. 3,7,1,0)";
        for (std::size_t i = 0; i < items.size(); ++i) {
            if (items[i] < 0 || items[i] != std::floor(items[i]) || items[i] > 100000)
                return "'" + lesson::format_number(items[i]) + "': a count is a whole number from 0";
            v.per_choice.push_back(int(items[i]));
            v.total += int(items[i]);
            if (q.choices[i].key == g.right_key) v.right += int(items[i]);
        }
    } else {
        if (items.empty()) return "type the answers given, comma-separated";
        for (double x : items) {
            ++v.total;
            v.right += std::fabs(x - g.truth) <= g.tolerance * (1 + 1e-12);
        }
    }
    if (v.total <= 0) return "no votes: at least one is needed";
    *out = v;
    return "";
}

std::string vote_shift(const ClassVotes& a, const ClassVotes& b) {
    auto pct = [](const ClassVotes& v) { return v.total > 0 ? 100.0 * v.right / v.total : 0.0; };
    const double d = pct(b) - pct(a);
    std::ostringstream os;
    os << "right: " << a.right << " of " << a.total << " (" << lesson::format_number(pct(a), 0) << "%) → " << b.right
       << " of " << b.total << " (" << lesson::format_number(pct(b), 0) << "%), " << (d >= 0 ? "+" : "")
       << lesson::format_number(d, 0) << " points. ";
    if (d >= 15)
        os << "Discussion moved the class toward the answer.";
    else if (d <= -15)
        os << "Discussion moved the class away from the answer: re-teach before revealing.";
    else
        os << "Discussion changed little: give a hint or re-teach.";
    return os.str();
}

std::string class_suggestion(int correct, int total) {
    if (total <= 0) return "";
    double share = double(correct) / total;
    if (share < 0.35) return "Under 35% correct: give a hint and re-teach the idea, then ask again.";
    if (share <= 0.70) return "Between 35% and 70% correct: have students convince a neighbour, then vote again.";
    return "Above 70% correct: explain briefly and move on.";
}

}  // namespace demos
