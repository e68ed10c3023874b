// Checks a lesson against the truth (verify_lesson, demos/lesson_play.hpp): plays it and each try-next variation
// on the engine and reports every way its key, expectations, misconceptions, grading band or checks disagree.
#include <algorithm>
#include <cmath>

#include "demos/lesson_expr.hpp"
#include "demos/lesson_play.hpp"
#include "kernels/common/error.hpp"

namespace demos {

namespace {

// Bars that imply a straggler factor g: the hottest expert `hot` at a, every other at 1 (a = g(n−1)/(n−g)).
std::vector<double> bars_for(double g, int n, int hot) {
    std::vector<double> v(std::size_t(std::max(1, n)), 1.0);
    if (n <= 1 || g >= n) {
        std::fill(v.begin(), v.end(), 0.0);
        v[std::size_t(std::clamp(hot, 0, n - 1))] = 1.0;
        return v;
    }
    v[std::size_t(std::clamp(hot, 0, n - 1))] = std::max(1.0, g) * (n - 1) / (n - std::max(1.0, g));
    return v;
}

}  // namespace

std::vector<std::string> verify_lesson(const Lesson& l, const std::string& backend) {
    std::vector<std::string> out;
    auto problem = [&](int line, const std::string& msg) {
        out.push_back(l.source + (line > 0 ? ":" + std::to_string(line) : "") + ": " + msg);
    };
    const LessonQuestion& q = l.question;
    auto play = [&](const Scenario& base, const std::map<std::string, double>& params, const std::string& what,
                    bool main) {
        // Text shown before the reveal: filled from the inputs, and short enough for a slide.
        std::string intro, prompt;
        try {
            intro = fill_before(l, base, params, l.intro);
            prompt = fill_before(l, base, params, q.prompt);
            for (auto& c : q.choices) fill_before(l, base, params, c.text);
            for (auto& t : l.try_next) fill_before(l, base, params, t.prompt);
        } catch (const moe::Error& e) {
            problem(q.line, what + ": text before the reveal: " + e.what());
        }
        if (main && word_count(intro) + word_count(prompt) > kMaxBeforeWords)
            problem(q.line, "intro + prompt are " + std::to_string(word_count(intro) + word_count(prompt)) +
                                " words; a student reads at most " + std::to_string(kMaxBeforeWords) +
                                " before committing (PEDAGOGY.md: short enough for a slide)");
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
                return r.fill(text, extra);
            } catch (const moe::Error& e) {
                problem(line, what + ": " + e.what());
                return std::string();
            }
        };
        for (auto& s : l.show) eval(s, q.line, nullptr);
        std::string expl = fills(l.explanation, q.line, nullptr);
        fills(l.formula, q.line, nullptr);
        if (main && word_count(explanation_opening(expl)) > kMaxOpeningWords)
            problem(q.line, "the explanation opens with " + std::to_string(word_count(explanation_opening(expl))) +
                                " words; keep the first paragraph to " + std::to_string(kMaxOpeningWords) +
                                " and put the rest after a blank line (behind \"more\")");
        if (q.kind == QuestionKind::Choice) {
            int holding = 0;
            for (auto& c : q.choices) {
                double v = eval(c.when.text, c.when.line, nullptr);
                holding += v != 0.0 && !std::isnan(v);
                if (main && !q.key_from_run && c.correct && v == 0.0)
                    problem(c.when.line, "choice '" + c.key + "' is the lesson's answer, but its condition \"" +
                                             c.when.text + "\" is false on the engine's numbers");
                if (main && !q.key_from_run && !c.correct && v != 0.0)
                    problem(c.when.line, "choice '" + c.key + "' is marked wrong, but its condition \"" +
                                             c.when.text + "\" holds on the engine's numbers");
                fills(c.feedback, c.line, nullptr);
            }
            if ((!main || q.key_from_run) && holding != 1)
                problem(q.line, what + ": " + std::to_string(holding) +
                                    " choices hold on the engine's numbers; exactly one must, so the variation can be "
                                    "graded");
        } else {
            const bool bars = q.kind == QuestionKind::Bars;
            const int n_bars = bars ? int(r.numbers[0].vectors.at(q.answer.text).size()) : 0;
            const int hot = int(r.numbers[0].scalars.at("hottest_expert").value);
            double truth = 0;
            if (bars) {
                const auto& v = r.numbers[0].vectors.at(q.answer.text);
                truth = lesson::max_over_mean(v);
                if (q.max > q.min)
                    for (double b : v)
                        if (b < q.min || b > q.max)
                            problem(q.line, what + ": a measured bar (" + lesson::format_number(b) +
                                                ") lies outside min..max, so no drawing can match it");
            } else {
                truth = eval(q.answer.text, q.answer.line, nullptr);
                if (q.max > q.min && !(truth >= q.min && truth <= q.max))
                    problem(q.answer.line, what + ": the answer " + lesson::format_number(truth) +
                                               " lies outside min..max: no student can give it");
            }
            if (!std::isfinite(truth)) {
                problem(q.answer.line, what + ": the answer is not a finite number");
                return;
            }
            if (main && q.has_expect && !(truth >= q.expect_lo && truth <= q.expect_hi))
                problem(q.expect_line, "the lesson expects the answer in [" + lesson::format_number(q.expect_lo) +
                                           ", " + lesson::format_number(q.expect_hi) + "], the engine gives " +
                                           lesson::format_number(truth));
            const double tol = std::max(q.tolerance, q.rel_tolerance * std::fabs(truth));
            // The guess names a misconception's region; `g` is a guess of the graded number.
            auto extra_for = [&](double g) {
                std::map<std::string, double> extra{{"guess", g}, {"guess_max", 0}, {"guess_hottest", 0},
                                                    {"guess_total", 0}};
                if (bars) {
                    std::vector<double> b = bars_for(g, n_bars, hot);
                    extra["guess_max"] = *std::max_element(b.begin(), b.end());
                    extra["guess_hottest"] = hot;
                    double total = 0;
                    for (double x : b) total += x;
                    extra["guess_total"] = total;
                }
                return extra;
            };
            auto firing = [&](double g) -> const Misconception* {
                auto extra = extra_for(g);
                for (auto& m : q.misconceptions) {
                    double v = eval(m.when.text, m.when.line, &extra);
                    if (v != 0.0 && !std::isnan(v)) return &m;
                }
                return nullptr;
            };
            // No misconception may fire anywhere in the band that is graded right, and the band's edges grade as
            // the tolerance says.
            const double edge_eps = 1e-6 * std::max(tol, 1e-12);  // the band's own edges are rounding's business
            const double lo_in = (q.max > q.min ? std::max(q.min, truth - tol) : truth - tol) + edge_eps;
            const double hi_in = (q.max > q.min ? std::min(q.max, truth + tol) : truth + tol) - edge_eps;
            for (int i = 0; i <= 40; ++i) {
                double g = lo_in + (hi_in - lo_in) * i / 40.0;
                if (const Misconception* m = firing(g)) {
                    problem(m->when.line, what + ": this misconception fires on " + lesson::format_number(g) +
                                              ", inside the band graded right (" + lesson::format_number(truth) +
                                              " ± " + lesson::format_number(tol) + ")");
                    break;
                }
            }
            for (auto& m : q.misconceptions) {
                auto extra = extra_for(truth);
                fills(m.feedback, m.when.line, &extra);
            }
            LessonAnswer a;
            for (double edge : {truth - 0.999 * tol, truth + 0.999 * tol, truth - 1.2 * tol - 1e-9,
                                truth + 1.2 * tol + 1e-9}) {
                if (q.max > q.min && (edge < q.min || edge > q.max)) continue;
                if (bars && (edge < 1 || edge >= n_bars)) continue;
                a.value = edge;
                if (bars) a.bars = bars_for(edge, n_bars, hot);
                LessonGrade g = grade(l, r, a);
                const bool inside = std::fabs(edge - truth) < tol;
                if (g.correct != inside)
                    problem(q.line, what + ": a guess of " + lesson::format_number(edge) + " grades " +
                                        (g.correct ? "right" : "wrong") + " though it lies " +
                                        (inside ? "inside" : "outside") + " the band " +
                                        lesson::format_number(truth) + " ± " + lesson::format_number(tol));
            }
            // Every wrong region of the lesson's own run names its misconception (no bare "too high").
            if (main) {
                double lo = q.max > q.min ? q.min : std::min(0.0, truth - 3 * std::fabs(truth) - tol);
                double hi = q.max > q.min ? q.max : truth + 3 * std::fabs(truth) + tol;
                if (bars) lo = std::max(lo, 1.0), hi = std::min(hi, double(n_bars) - 1e-6);
                for (int i = 0; i <= 400; ++i) {
                    double g = lo + (hi - lo) * i / 400.0;
                    if (std::fabs(g - truth) <= tol * 1.001) continue;
                    if (!firing(g)) {
                        problem(q.line, what + ": a guess of " + lesson::format_number(g) +
                                            " is wrong but no misconception names why; every wrong region needs one");
                        break;
                    }
                }
            }
        }
        if (main)
            for (auto& c : l.checks)
                if (eval(c.text, c.line, nullptr) == 0.0)
                    problem(c.line, "check \"" + c.text + "\" is false on the engine's numbers");
    };
    play(l.scenario, l.params, "the lesson", true);
    for (std::size_t i = 0; i < l.try_next.size(); ++i) {
        Scenario s;
        std::map<std::string, double> params;
        try {
            variation(l, int(i) + 1, &s, &params);
        } catch (const moe::Error& e) {
            problem(l.try_next[i].line, e.what());
            continue;
        }
        play(s, params, "try next " + std::to_string(i + 1), false);
    }
    return out;
}

}  // namespace demos
