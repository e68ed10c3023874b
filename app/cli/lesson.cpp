// `moelab lesson ID`: the terminal lesson player (asks on stdin, so it works over SSH and from a pipe), and
// `moelab lessons [check [--run]]`: the list with progress, and the checker instructors run on their files.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <unistd.h>

#include "app/cli/commands.hpp"
#include "demos/experiments.hpp"
#include "demos/lesson.hpp"
#include "demos/lesson_expr.hpp"
#include "demos/lesson_play.hpp"
#include "demos/lesson_progress.hpp"
#include "kernels/common/error.hpp"

namespace moelab_cli {

namespace {

struct LessonArgs {
    std::string id, dir, backend, progress_path;
    int try_index = 0;
    bool no_progress = false, run = false, more = false, class_mode = false;
};

const char* kRule = "────────────────────────────────────────────────────────────────────────";

void heading(const std::string& title) { std::printf("\n── %s %.*s\n", title.c_str(), int(std::max<std::size_t>(3, 66 - title.size())) * 3, kRule); }

// Prints `text` wrapped at 88 columns, keeping blank lines as paragraph breaks, each line indented.
void wrapped(const std::string& text, int indent = 2) {
    std::string pad(indent, ' ');
    std::size_t i = 0;
    while (i <= text.size()) {
        std::size_t nl = text.find('\n', i);
        std::string para = text.substr(i, nl == std::string::npos ? std::string::npos : nl - i);
        std::string line;
        std::size_t w = 0;
        std::size_t j = 0;
        bool any = false;
        while (j < para.size()) {
            std::size_t sp = para.find(' ', j);
            std::string word = para.substr(j, sp == std::string::npos ? std::string::npos : sp - j);
            j = sp == std::string::npos ? para.size() : sp + 1;
            if (word.empty()) continue;
            // Count UTF-8 code points, not bytes, for the width.
            std::size_t wl = 0;
            for (unsigned char c : word) wl += (c & 0xC0) != 0x80;
            if (w > 0 && w + 1 + wl > 88) {
                std::printf("%s%s\n", pad.c_str(), line.c_str());
                line.clear();
                w = 0;
            }
            if (w > 0) line += ' ', ++w;
            line += word;
            w += wl;
            any = true;
        }
        if (any || !line.empty()) std::printf("%s%s\n", pad.c_str(), line.c_str());
        else std::printf("\n");
        if (nl == std::string::npos) break;
        i = nl + 1;
    }
}

// One line from stdin; end of input is bad input (exit 2), since nothing more can be asked.
std::string ask(const std::string& prompt, const std::string& id) {
    std::printf("%s", prompt.c_str());
    std::fflush(stdout);
    std::string line;
    if (!std::getline(std::cin, line)) {
        std::printf("\n");
        MOE_BAD_INPUT("lesson " << id << ": stdin ended before an answer was given; answer on the terminal, or pipe "
                                   "the answers in, e.g. printf 'b\\n4\\n' | moelab lesson "
                                << id);
    }
    if (!isatty(fileno(stdin))) std::printf("%s\n", line.c_str());  // echo piped answers so the transcript reads well
    return line;
}

std::string scenario_line(const demos::Scenario& s) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "T=%lld E=%d k=%d d=%d F=%d skew=%s cf=%g ranks=%d m=%d L=%d n_a=%d dtype=%s",
                  static_cast<long long>(s.tokens), s.experts, s.top_k, s.hidden, s.ffn, s.skew.c_str(),
                  s.capacity_factor, s.ranks, s.micro_batches, s.layers, s.attention_replicas, s.dtype.c_str());
    return buf;
}

// The catalog entry of a plain or run-prefixed name ("k4.comm_mib"); null for expressions and values.
const demos::lesson::MetricInfo* metric_info(const std::string& name) {
    std::size_t dot = name.find('.');
    std::string base = dot == std::string::npos ? name : name.substr(dot + 1);
    for (auto& m : demos::lesson::metric_catalog())
        if (base == m.name) return &m;
    return nullptr;
}

// Measured bars with the prediction as a ghost: '#' measured, '|' where the (rescaled) guess ends.
void print_bars(const std::vector<double>& truth, const std::vector<double>& guess, const std::string& label) {
    double tt = 0, tg = 0, mx = 1;
    for (double v : truth) tt += v;
    for (double v : guess) tg += v;
    std::vector<double> g(guess.size());
    for (std::size_t i = 0; i < guess.size(); ++i) g[i] = tg > 0 ? guess[i] * tt / tg : 0;
    for (double v : truth) mx = std::max(mx, v);
    for (double v : g) mx = std::max(mx, v);
    const int width = 48;
    std::printf("  %s     measured  (#)   your prediction, scaled to the same total  (|)\n", label.c_str());
    for (std::size_t i = 0; i < truth.size(); ++i) {
        int a = int(std::lround(truth[i] / mx * width)), b = i < g.size() ? int(std::lround(g[i] / mx * width)) : -1;
        std::string bar;
        for (int c = 0; c <= width; ++c) bar += c < a ? '#' : (c < b ? '.' : ' ');
        if (b >= 0 && b <= width) bar[std::size_t(b)] = '|';
        while (!bar.empty() && bar.back() == ' ') bar.pop_back();
        std::printf("  %s%-3zu %7.0f %s\n", label.c_str(), i, truth[i], bar.c_str());
    }
}

// The modelled pipeline as text lanes, with the prediction and the answer marked under it.
void print_timeline(const demos::Result& r, double guess, double truth) {
    double end = r.pipeline.total_ms;
    if (!(end > 0) || r.model_timeline.empty()) return;
    const int width = 72;
    auto col = [&](double t) { return std::clamp(int(t / end * width), 0, width - 1); };
    std::printf("  modelled timeline, 0 .. %s ms (one column = %s ms)\n", demos::lesson::format_number(end).c_str(),
                demos::lesson::format_number(end / width).c_str());
    for (const char* lane : {"attention", "a2e", "experts", "e2a"}) {
        std::string row(width, '.');
        for (auto& s : r.model_timeline) {
            if (s.lane != lane) continue;
            char c = s.micro_batch < 10 ? char('0' + s.micro_batch) : '+';
            for (int x = col(s.start_ms); x < std::max(col(s.start_ms) + 1, col(s.end_ms)); ++x) row[std::size_t(x)] = c;
        }
        std::printf("  %-10s%s\n", lane, row.c_str());
    }
    std::string marks(width, ' ');
    if (truth >= 0) marks[std::size_t(col(truth))] = '^';
    if (guess >= 0 && guess <= end) marks[std::size_t(col(guess))] = col(guess) == col(truth) ? '*' : '|';
    std::printf("  %-10s%s\n", "", marks.c_str());
    std::printf("  digits are micro-batches, '.' is idle; '^' the answer, '|' your mark ('*' both)\n");
}

// "min … · p95 … (N repeats)" for a timed name NAME_ms whose NAME_min_ms and NAME_p95_ms exist; "" otherwise.
std::string timed_noise(const demos::LessonReveal& rv, const std::string& expr) {
    if (expr.size() < 4 || expr.compare(expr.size() - 3, 3, "_ms") != 0) return "";
    if (expr.find_first_of(" +-*/()") != std::string::npos) return "";
    const std::string base = expr.substr(0, expr.size() - 3);
    if (base.size() >= 4 && (base.compare(base.size() - 4, 4, "_min") == 0 || base.compare(base.size() - 4, 4, "_p95") == 0))
        return "";
    try {
        demos::lesson::Number lo = rv.eval(base + "_min_ms"), hi = rv.eval(base + "_p95_ms");
        if (lo.source == demos::lesson::Source::Modeled) return "modelled: no run-to-run noise";
        return "min " + demos::lesson::format_number(lo.value) + " · p95 " + demos::lesson::format_number(hi.value) +
               " ms (run-to-run noise)";
    } catch (const moe::Error&) {
        return "";
    }
}

// An experiment's curve as a table: expert FFN time over tokens per expert with the roofline, or Util(msg).
void print_curve(const demos::ExperimentResult& x) {
    std::printf("\n  %s: %s against %s\n", x.name.c_str(), x.curve_y.c_str(), x.curve_x.c_str());
    const bool util = x.curve_y == "Util";
    if (util)
        std::printf("    %14s %12s %12s %12s %8s %8s  %s\n", "bytes/rank", "min µs", "median µs", "p95 µs", "Util",
                    "model", "");
    else
        std::printf("    %14s %12s %12s %12s %8s %8s  %s\n", "tokens", "min µs", "median µs", "p95 µs", "TFLOP/s",
                    "roof", "");
    for (auto& p : x.curve) {
        const int width = 30;
        int bar = int(std::lround(std::clamp(util ? p.y : (p.roof > 0 ? p.y / p.roof : 0), 0.0, 1.0) * width));
        std::string b(std::size_t(bar), '#');
        std::printf("    %14s %12.1f %12.1f %12.1f %8s %8s  %s [%s]\n", demos::lesson::format_number(p.x).c_str(),
                    p.time.min_ms * 1e3, p.time.median_ms * 1e3, p.time.p95_ms * 1e3,
                    demos::lesson::format_number(util ? p.y * 100 : p.y, 1).c_str(),
                    demos::lesson::format_number(util ? p.roof * 100 : p.roof, 1).c_str(), b.c_str(),
                    demos::lesson::source_name(p.time.source));
    }
    std::printf("    %s\n", util ? "Util and model in % of the link's peak; # = measured (or modelled) Util"
                                 : "roof = the roofline at this device's ceilings; # = share of the roof reached");
}

// Presenter mode in the terminal (peer instruction): the class votes, says how sure it is, discusses and votes again;
// the shift between the votes shows before the answer, and the answer only after both.
int class_round(const LessonArgs& a, const demos::Lesson& L, const demos::Scenario& scenario,
                const std::map<std::string, double>& params) {
    demos::LessonReveal rv;
    demos::run_lesson(L, scenario, params, "", {}, &rv);  // run now, reveal later
    demos::LessonGrade g = demos::grade(L, rv, demos::LessonAnswer{});
    const bool choice = L.question.kind == demos::QuestionKind::Choice;
    auto votes = [&](const std::string& prompt, bool optional, demos::ClassVotes* out) {
        for (;;) {
            std::string line = ask(prompt, L.id);
            if (optional && line.find_first_not_of(" \t\r") == std::string::npos) return false;
            std::string err = demos::count_class_votes(L, g, line, out);
            if (err.empty()) return true;
            std::printf("  %s\n", err.c_str());
        }
    };
    const std::string hint = choice ? "counts per choice, e.g. 3,7,1,0" : "the answers given, comma-separated";
    demos::ClassVotes first, second;
    votes("First vote (" + hint + "): ", false, &first);
    double conf = 0;
    for (;;) {
        std::string line = ask("The class's confidence, 1 to 5 (a show of fingers; the mean): ", L.id);
        char* end = nullptr;
        conf = std::strtod(line.c_str(), &end);
        if (end != line.c_str() && conf >= 1 && conf <= 5) break;
        std::printf("  type a number from 1 to 5\n");
    }
    std::printf("\n  First vote: %d of %d right, class confidence %.1f/5.\n", first.right, first.total, conf);
    wrapped(demos::class_suggestion(first.right, first.total));
    if (conf >= 4 && 2 * first.right < first.total)
        wrapped("A confident class that is mostly wrong: the misconception is strong. Discussion is where it moves.");
    std::printf("\n");
    const bool again = votes("Second vote after discussion (Enter skips): ", true, &second);
    if (again) {
        std::printf("\n");
        wrapped(demos::vote_shift(first, second));
    }
    heading("Reveal");
    std::printf("  Ran on: %s\n", rv.backend() == "cpu" ? "the CPU reference" : rv.results[0].device.c_str());
    std::printf("  The engine:   %s  [%s]\n", g.truth_text.c_str(), demos::lesson::source_name(g.truth_source));
    const demos::ClassVotes& last = again ? second : first;
    if (choice) {
        int best = -1;
        for (std::size_t i = 0; i < last.per_choice.size(); ++i)
            if (L.question.choices[i].key != g.right_key && last.per_choice[i] > 0 &&
                (best < 0 || last.per_choice[i] > last.per_choice[std::size_t(best)]))
                best = int(i);
        if (best >= 0) {
            std::printf("\n  The most popular wrong answer, %s):\n", L.question.choices[std::size_t(best)].key.c_str());
            wrapped(rv.fill(L.question.choices[std::size_t(best)].feedback));
        }
    }
    heading("Why");
    std::printf("    %s\n\n", rv.fill(L.formula).c_str());
    wrapped(demos::explanation_opening(rv.fill(L.explanation)));
    if (!a.no_progress) {
        std::string path = a.progress_path.empty() ? demos::default_progress_path() : a.progress_path;
        try {
            demos::Progress p = demos::Progress::load(path);
            p.record_votes(L.id, first.right, again ? second.right : -1, first.total);
            p.save(path);
        } catch (const moe::Error& e) {
            std::fprintf(stderr, "moelab: warning: votes not saved: %s\n", e.what());
        }
    }
    return 0;
}

int play(const LessonArgs& a) {
    demos::LessonSet set = demos::load_lessons(demos::lessons_dir(a.dir));
    for (auto& p : set.problems) std::fprintf(stderr, "moelab: warning: %s\n", p.str().c_str());
    const demos::Lesson* lp = set.find(a.id);
    if (!lp) {
        std::string ids;
        for (auto& l : set.lessons) ids += (ids.empty() ? "" : ", ") + l.id;
        MOE_BAD_INPUT("lesson '" << a.id << "': no such lesson; available: " << ids << " (see moelab lessons)");
    }
    const demos::Lesson& L = *lp;
    demos::Scenario scenario;
    std::map<std::string, double> params;
    demos::variation(L, a.try_index, &scenario, &params);
    std::string variation = a.try_index > 0 ? L.try_next[std::size_t(a.try_index - 1)].prompt : "";
    if (!a.backend.empty()) scenario.backend = a.backend;
    // Where the reveal will run, settled before the student commits: --backend cuda without a GPU fails here.
    std::string why;
    const std::string backend = demos::resolve_backend(scenario, &why);
    auto before = [&](const std::string& text) { return demos::fill_before(L, scenario, params, text); };

    std::printf("Lesson %s · %s\n", L.id.c_str(), L.title.c_str());
    if (L.concept_number > 0) std::printf("Concept %d (PEDAGOGY.md)\n", L.concept_number);
    if (L.source.rfind("built-in:", 0) != 0) std::printf("From %s\n", L.source.c_str());
    std::printf("\n");
    wrapped(before(L.intro));
    if (!variation.empty()) {
        std::printf("\n  Variation %d: ", a.try_index);
        std::printf("%s\n", before(variation).c_str());
    }
    std::printf("\n  Scenario: %s\n", scenario_line(scenario).c_str());

    const demos::LessonQuestion& q = L.question;
    heading("Predict");
    wrapped(before(q.prompt));
    if (q.kind == demos::QuestionKind::Choice)
        for (auto& c : q.choices) {
            std::printf("    %s) ", c.key.c_str());
            std::printf("%s\n", before(c.text).c_str());
        }
    if (a.class_mode) return class_round(a, L, scenario, params);
    demos::LessonAnswer ans;
    std::string answer_text;
    for (;;) {
        std::string line = ask("Your answer (" + demos::answer_hint(q, scenario) + "): ", L.id);
        std::string err = demos::parse_answer(q, scenario, line, &ans);
        if (err.empty()) {
            answer_text = line;
            break;
        }
        std::printf("  %s\n", err.c_str());
    }
    for (;;) {
        std::string line = ask("How sure are you? 1 (a guess) to 5 (certain): ", L.id);
        std::string err = demos::parse_confidence(line, &ans.confidence);
        if (err.empty()) break;
        std::printf("  %s\n", err.c_str());
    }

    // The prediction is committed: only now does the scenario run.
    heading("Reveal");
    std::printf("  Running %zu scenario%s (%s demo%s) on %s...\n", L.runs.size() + 1, L.runs.empty() ? "" : "s",
                demos::demo_name(L.demo), L.experiment.empty() ? "" : (", experiment " + L.experiment).c_str(),
                backend == "cuda" ? "the GPU" : "the CPU reference");
    std::fflush(stdout);
    demos::LessonReveal rv;
    demos::run_lesson(L, scenario, params, "", {}, &rv);
    std::printf("  Ran on: %s\n", rv.backend() == "cpu" ? "the CPU reference (no GPU timing; modelled times say so)"
                                                          : (rv.results[0].device + " [" + rv.backend() + "]").c_str());
    for (auto& n : rv.results[0].notes) wrapped("note: " + n);
    if (!rv.experiments.empty())
        for (auto& n : rv.experiments[0].notes) wrapped("note: " + n);
    demos::LessonGrade g = demos::grade(L, rv, ans);

    std::printf("\n");
    if (q.kind == demos::QuestionKind::Choice) {
        std::printf("  You chose     %s)  (confidence %d/5)\n", ans.choice.c_str(), ans.confidence);
        std::printf("  The engine:   %s  [%s]\n", g.truth_text.c_str(), demos::lesson::source_name(g.truth_source));
    } else {
        std::string unit = q.unit.empty() ? "" : " " + q.unit;
        std::printf("  You predicted %s%s%s  (confidence %d/5)\n", q.kind == demos::QuestionKind::Bars ? "max/mean " : "",
                    demos::lesson::format_number(g.guess).c_str(), unit.c_str(), ans.confidence);
        std::printf("  The engine:   %s  [%s]   (right within ±%s)\n", g.truth_text.c_str(),
                    demos::lesson::source_name(g.truth_source), demos::lesson::format_number(g.tolerance).c_str());
    }
    std::printf("\n  %s  score %.0f%%\n", g.correct ? "✓ Right." : "✗ Not this time.", 100 * g.score);
    for (auto& n : g.notes) wrapped(n);
    if (!g.feedback.empty()) {
        std::printf("\n");
        wrapped(g.feedback);
    }
    if (!g.confidence_note.empty()) {
        std::printf("\n");
        wrapped(g.confidence_note);
    }
    if (q.kind == demos::QuestionKind::Bars) {
        std::printf("\n");
        print_bars(g.truth_bars, ans.bars, q.answer.text == "rank_loads" ? "r" : "e");
    }
    if (q.kind == demos::QuestionKind::Timeline) {
        std::printf("\n");
        print_timeline(rv.results[0], ans.value, g.truth);
    }
    if (!L.show.empty()) {
        std::printf("\n  The numbers:\n");
        for (auto& expr : L.show) {
            demos::lesson::Number n = rv.eval(expr);
            const demos::lesson::MetricInfo* m = metric_info(expr);
            std::string value = demos::lesson::format_number(n.value);
            if (m && *m->unit) value += std::string(" ") + m->unit;
            std::printf("    %-26s %-16s [%s]%s%s\n", expr.c_str(), value.c_str(), demos::lesson::source_name(n.source),
                        m ? "  " : "", m ? m->help : "");
            // A timed figure shows its noise: min and p95 beside the median.
            std::string noise = timed_noise(rv, expr);
            if (!noise.empty()) std::printf("    %-26s %s\n", "", noise.c_str());
        }
    }
    if (!rv.experiments.empty() && !rv.experiments[0].curve.empty()) print_curve(rv.experiments[0]);
    heading("Why");
    std::printf("    %s\n", rv.fill(L.formula).c_str());  // formulas keep their spacing; no wrapping
    std::printf("\n");
    const std::string expl = rv.fill(L.explanation);
    wrapped(demos::explanation_opening(expl));
    const std::string more = demos::explanation_more(expl);
    if (!more.empty() && a.more) {
        std::printf("\n  More:\n");
        wrapped(more);
    } else if (!more.empty()) {
        std::printf("\n  (%d more words: add --more)\n", demos::word_count(more));
    }
    if (!L.note.empty()) {
        std::printf("\n");
        wrapped("How this was measured: " + rv.fill(L.note));
    }
    if (!L.try_next.empty()) {
        heading("Try next");
        for (std::size_t i = 0; i < L.try_next.size(); ++i) {
            std::printf("  %zu. ", i + 1);
            std::printf("%s\n", L.try_next[i].prompt.c_str());
            std::printf("     moelab lesson %s --try %zu\n", L.id.c_str(), i + 1);
        }
    }
    // Self-explanation (Kim et al. 2017): one line, saved with the progress. Optional: Enter or end of input skips.
    std::printf("\n");
    std::string why_line;
    std::printf("Why? In one line, what explains the gap between your prediction and the result (Enter skips): ");
    std::fflush(stdout);
    if (std::getline(std::cin, why_line)) {
        if (!isatty(fileno(stdin))) std::printf("%s\n", why_line.c_str());
    } else {
        std::printf("\n");
        why_line.clear();
    }
    std::printf("\n  In the app: moelab, then Lessons → %s (the reveal draws your prediction over the result).\n",
                L.id.c_str());

    if (!a.no_progress) {
        std::string path = a.progress_path.empty() ? demos::default_progress_path() : a.progress_path;
        try {
            demos::Progress p = demos::Progress::load(path);
            p.record(L.id, g.correct, g.score, ans.confidence, answer_text, a.try_index, int(L.try_next.size()));
            if (!why_line.empty()) p.record_why(L.id, why_line);
            p.save(path);
            const demos::LessonProgress& lp = p.lessons[L.id];
            if (lp.confident_miss && lp.retest_try > 0)
                std::printf("\n  A confident miss: it comes back later as a variation. Re-test: moelab lesson %s --try "
                            "%d\n",
                            L.id.c_str(), lp.retest_try);
        } catch (const moe::Error& e) {
            std::fprintf(stderr, "moelab: warning: progress not saved: %s\n", e.what());
        }
    }
    return 0;
}

int list(const LessonArgs& a) {
    std::string dir = demos::lessons_dir(a.dir);
    demos::LessonSet set = demos::load_lessons(dir);
    demos::Progress prog;
    try {
        prog = demos::Progress::load(a.progress_path.empty() ? demos::default_progress_path() : a.progress_path);
    } catch (const moe::Error& e) {
        std::fprintf(stderr, "moelab: warning: %s\n", e.what());
    }
    std::printf("  %-20s %-9s %-8s %s\n", "id", "question", "played", "title");
    for (auto& l : set.lessons) {
        std::string played = "-";
        auto it = prog.lessons.find(l.id);
        if (it != prog.lessons.end())
            played = std::string(it->second.last_correct ? "✓ " : (it->second.confident_miss ? "! " : "✗ ")) +
                     std::to_string(it->second.attempts) + "×";
        std::printf("  %-20s %-9s %-8s %s%s\n", l.id.c_str(), demos::question_kind_name(l.question.kind),
                    played.c_str(), l.title.c_str(),
                    l.source.rfind("built-in:", 0) == 0 ? "" : ("  [" + l.source + "]").c_str());
    }
    for (auto& l : set.lessons) {
        auto it = prog.lessons.find(l.id);
        if (it != prog.lessons.end() && it->second.confident_miss && it->second.retest_try > 0)
            std::printf("  ! %s was a confident miss; re-test: moelab lesson %s --try %d\n", l.id.c_str(), l.id.c_str(),
                        it->second.retest_try);
    }
    std::printf("\n%zu lessons (built in%s). Start one: moelab lesson %s\n", set.lessons.size(),
                dir.empty() ? "" : (", plus " + dir + "/").c_str(),
                set.lessons.empty() ? "ID" : set.lessons.front().id.c_str());
    for (auto& p : set.problems) std::fprintf(stderr, "moelab: warning: %s\n", p.str().c_str());
    if (!set.problems.empty()) std::fprintf(stderr, "moelab: run `moelab lessons check` for details\n");
    return 0;
}

int check(const LessonArgs& a) {
    std::string dir = demos::lessons_dir(a.dir);
    demos::LessonSet set = demos::load_lessons(dir);
    for (auto& p : set.problems) std::printf("%s\n", p.str().c_str());
    int bad_truth = 0;
    if (a.run)
        for (auto& l : set.lessons) {
            auto problems = demos::verify_lesson(l, a.backend.empty() ? "cpu" : a.backend);
            for (auto& p : problems) std::printf("%s\n", p.c_str());
            bad_truth += problems.empty() ? 0 : 1;
            if (problems.empty())
                std::printf("ok  %-20s the engine (%s) agrees with its answer key\n", l.id.c_str(),
                            a.backend.empty() ? "cpu" : a.backend.c_str());
        }
    std::size_t builtin = 0;
    for (auto& f : set.files) builtin += f.rfind("built-in:", 0) == 0;
    std::printf("%zu built-in file%s%s, %zu lessons loaded, %zu problem%s%s\n", builtin, builtin == 1 ? "" : "s",
                set.files.size() > builtin
                    ? (" and " + std::to_string(set.files.size() - builtin) + " from " + dir + "/").c_str()
                    : "",
                set.lessons.size(),
                set.problems.size(), set.problems.size() == 1 ? "" : "s",
                a.run ? (", " + std::to_string(bad_truth) + " lesson(s) disagree with the engine").c_str() : "");
    return set.problems.empty() && bad_truth == 0 ? 0 : 2;
}

}  // namespace

void add_lesson_commands(CLI::App& app, Handler* selected) {
    auto args = std::make_shared<LessonArgs>();
    auto* lesson = app.add_subcommand("lesson", "Play a predict-then-reveal lesson in the terminal (answers on stdin)");
    lesson->add_option("id", args->id, "Lesson id (see moelab lessons)")->required();
    lesson->add_option("--try", args->try_index, "Play try-next variation N of the lesson instead");
    lesson->add_option("--lessons-dir", args->dir, "Folder of lesson files that add to or replace the built-in ones");
    lesson->add_option("--backend", args->backend, "cpu, cuda or auto: where the reveal runs (default: the lesson's)")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
    lesson->add_option("--progress", args->progress_path, "Progress file (default ~/.config/moelab/progress.toml)");
    lesson->add_flag("--no-progress", args->no_progress, "Do not record this play");
    lesson->add_flag("--more", args->more, "Print the whole explanation, not only its opening");
    lesson->add_flag("--class", args->class_mode,
                     "Presenter mode: the class votes, gives its confidence, discusses and votes again");
    lesson->footer("Example: moelab lesson straggler\n         printf '3,1*15\\n4\\n' | moelab lesson straggler");
    lesson->callback([args, selected] { *selected = [args] { return play(*args); }; });

    auto* lessons = app.add_subcommand("lessons", "List the lessons with your progress; `lessons check` validates them");
    lessons->add_option("--lessons-dir", args->dir, "Folder of lesson files that add to or replace the built-in ones");
    lessons->add_option("--progress", args->progress_path, "Progress file (default ~/.config/moelab/progress.toml)");
    auto* chk = lessons->add_subcommand("check", "Validate every lesson file; errors name the file and line (exit 2)");
    chk->add_option("--lessons-dir", args->dir, "Folder of lesson files to check beside the built-in ones");
    chk->add_flag("--run", args->run, "Also run every lesson on the CPU reference and check its answer key");
    chk->add_option("--backend", args->backend, "With --run: cpu (default), cuda or auto")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
    lessons->callback([args, selected, chk] {
        if (chk->parsed())
            *selected = [args] { return check(*args); };
        else
            *selected = [args] { return list(*args); };
    });
}

}  // namespace moelab_cli
