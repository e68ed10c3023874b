// The script interpreter. Targets are anchors the views record each frame in the probe; the built-in scripts
// (tour: every view; invalid-topk: an error shown and survived; perf: frames while runs are in progress; drag:
// results while a slider is dragged) are data files beside this one.
#include "app/gui/testing/script.hpp"

#include <GLFW/glfw3.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "app/gui/app.hpp"
#include "app/gui/testing/probe.hpp"
#include "demos/params.hpp"

namespace moelab_gui::testing {
namespace {

int key_code(const std::string& k) {
    if (k.size() == 1) {
        char c = static_cast<char>(std::toupper(static_cast<unsigned char>(k[0])));
        if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return c;
        if (c == '-') return GLFW_KEY_MINUS;
        if (c == '=') return GLFW_KEY_EQUAL;
    }
    if (k == "ENTER") return GLFW_KEY_ENTER;
    if (k == "ESCAPE") return GLFW_KEY_ESCAPE;
    if (k == "SPACE") return GLFW_KEY_SPACE;
    if (k == "TAB") return GLFW_KEY_TAB;
    if (k == "BACKSPACE") return GLFW_KEY_BACKSPACE;
    if (k == "LEFT") return GLFW_KEY_LEFT;
    if (k == "RIGHT") return GLFW_KEY_RIGHT;
    if (k == "UP") return GLFW_KEY_UP;
    if (k == "DOWN") return GLFW_KEY_DOWN;
    if (k == "PAGEDOWN") return GLFW_KEY_PAGE_DOWN;
    if (k == "PAGEUP") return GLFW_KEY_PAGE_UP;
    if (k.size() >= 2 && k[0] == 'F') {
        int n = std::atoi(k.c_str() + 1);
        if (n >= 1 && n <= 12) return GLFW_KEY_F1 + n - 1;
    }
    return -1;
}

const char* kOps[] = {"wait",
                      "wait_idle",
                      "wait_anchor",
                      "move",
                      "click",
                      "ctrlclick",
                      "dblclick",
                      "drag",
                      "wheel",
                      "key",
                      "type",
                      "expect_error",
                      "expect_error_or_gpu",
                      "expect_no_error",
                      "expect_anchor",
                      "expect_no_anchor",
                      "expect_any_anchor",
                      "count_frames",
                      "expect_frames",
                      "expect_result",
                      "expect_scenario",
                      "expect_busy",
                      "expect_drag_results",
                      "expect_ranges_match_validation",
                      "export_trace",
                      "save_png",
                      "screenshot",
                      "export",
                      "save_scenario",
                      "load_scenario",
                      "open_roofline",
                      "set_view",
                      "solo",
                      "mark",
                      "resize",
                      "presenter",
                      "full_layer",
                      "rerun",
                      "echo",
                      "quit"};

// Names on screen that share the target's prefix, to make a failing script easy to fix.
std::string similar(const std::string& spec) {
    std::string name = spec.substr(0, spec.find('@'));
    std::string prefix = name.substr(0, std::min(name.size(), name.find_first_of(":_/") + 1));
    std::string out;
    int n = 0;
    for (const auto& kv : probe().anchors)
        if (kv.first.compare(0, prefix.size(), prefix) == 0 && n++ < 12) out += (out.empty() ? "" : ", ") + kv.first;
    return out.empty() ? "" : " (on screen: " + out + ")";
}

}  // namespace

bool Script::load(const std::string& spec, const std::string& out_dir, std::string* err) {
    std::string text;
    if (spec.rfind("builtin:", 0) == 0) {
        const char* b = builtin(spec.substr(8));
        if (!b) {
            *err = "--script " + spec + ": no such built-in script; there are " + builtin_names();
            return false;
        }
        text = b;
    } else {
        std::ifstream f(spec);
        if (!f) {
            *err = "--script " + spec + ": cannot read the file";
            return false;
        }
        std::stringstream ss;
        ss << f.rdbuf();
        text = ss.str();
    }
    std::istringstream in(text);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        for (std::size_t p; (p = line.find("${out}")) != std::string::npos;) line.replace(p, 6, out_dir);
        std::istringstream ls(line);
        Cmd c;
        c.line = n;
        if (!(ls >> c.op) || c.op[0] == '#') continue;
        bool known = false;
        for (const char* op : kOps) known |= c.op == op;
        if (!known) {
            *err = spec + ":" + std::to_string(n) + ": unknown command '" + c.op + "'";
            return false;
        }
        if (c.op == "type" || c.op == "echo") {
            std::string rest;
            std::getline(ls, rest);
            c.args.push_back(rest.empty() ? rest : rest.substr(1));
        } else {
            for (std::string a; ls >> a;) c.args.push_back(a);
        }
        cmds_.push_back(std::move(c));
    }
    return true;
}

void Script::fail(const Cmd& c, const std::string& why) {
    ++failures_;
    char buf[64];
    std::snprintf(buf, sizeof buf, "script line %d (%s): ", c.line, c.op.c_str());
    messages_.push_back(buf + why);
    std::fprintf(stderr, "moelab: %s%s\n", buf, why.c_str());
}

void Script::next() {
    ++pc_;
    phase_ = 0;
    counter_ = 0;
}

const char* Script::builtin(const std::string& name) {
    int n = 0;
    const demos::EmbeddedFile* list = builtin_scripts(&n);
    for (int i = 0; i < n; ++i)
        if (name == list[i].name) return reinterpret_cast<const char*>(list[i].data);
    return nullptr;
}

std::string Script::builtin_names() {
    int n = 0;
    const demos::EmbeddedFile* list = builtin_scripts(&n);
    std::string out;
    for (int i = 0; i < n; ++i) out += (i ? ", builtin:" : "builtin:") + std::string(list[i].name);
    return out;
}

bool Script::target(const std::string& spec, ImVec2* p) {
    std::string name = spec;
    float fx = 0.5f, fy = 0.5f;
    auto at = spec.find('@');
    if (at != std::string::npos) {
        name = spec.substr(0, at);
        std::sscanf(spec.c_str() + at + 1, "%f,%f", &fx, &fy);
    }
    auto it = probe().anchors.find(name);
    if (it == probe().anchors.end()) {
        float x, y;
        if (std::sscanf(spec.c_str(), "%f,%f", &x, &y) == 2) {
            *p = ImVec2(x, y);
            return true;
        }
        return false;
    }
    const ImVec4& r = it->second;
    *p = ImVec2(r.x + (r.z - r.x) * fx, r.y + (r.w - r.y) * fy);
    return true;
}

void Script::before_frame(App& app) {
    ImGuiIO& io = ImGui::GetIO();
    const Session& ses = app.session();
    ViewState& vs = app.view_state();
    Commands& cmds = app.commands();
    // What came of last frame's file commands (export, save, load).
    for (const Outcome& o : cmds.take_outcomes()) {
        if (awaiting_.empty()) break;
        if (o.kind != CommandKind::Export && o.kind != CommandKind::ExportTrace &&
            o.kind != CommandKind::SaveScenario && o.kind != CommandKind::OpenScenario &&
            o.kind != CommandKind::OpenRoofline)
            continue;
        const int line = awaiting_.front();
        awaiting_.erase(awaiting_.begin());
        if (!o.ok) {
            Cmd c;
            c.line = line;
            c.op = command_name(o.kind);
            fail(c, o.message);
        }
    }
    // Results while dragging: count the routing results that arrive while the button is held.
    if (down_) {
        drag_results_ = ses.routing_results() - drag_start_results_;
        const auto& r = ses.results().routing;
        if (r && !(r->scenario == drag_seen_)) {
            drag_seen_ = r->scenario;
            ++drag_distinct_;
        }
    }
    // Frames that drew the anchors being counted (the probe still holds the last frame's).
    for (auto& [name, n] : anchor_frames_)
        if (probe().anchors.count(name)) ++n;
    // Clear last frame's one-shot input.
    if (key_ >= 0) io.KeysDown[key_] = false;
    key_ = -1;
    ctrl_ = shift_ = alt_ = false;
    for (int guard = 0; guard < 64 && pc_ < cmds_.size(); ++guard) {
        const Cmd& c = cmds_[pc_];
        const auto arg = [&](std::size_t i) { return i < c.args.size() ? c.args[i] : std::string(); };
        const std::string& op = c.op;
        bool consumed_frame = true;
        if (op == "wait") {
            if (++counter_ > std::max(1, std::atoi(arg(0).c_str()))) {
                next();
                continue;
            }
        } else if (op == "wait_idle") {
            const int limit = c.args.empty() ? 3000 : std::atoi(arg(0).c_str());
            const bool idle = !ses.busy();
            if (idle && counter_ > 1) {
                next();
                continue;
            }
            if (++counter_ > limit) {
                fail(c, "the runner was still busy after " + std::to_string(limit) + " frames");
                next();
                continue;
            }
        } else if (op == "wait_anchor") {
            // wait_anchor NAME [FRAMES]: until the last frame drew NAME (a result arrived), at most FRAMES frames.
            const int limit = c.args.size() > 1 ? std::atoi(arg(1).c_str()) : 3000;
            if (probe().anchors.count(arg(0))) {
                next();
                continue;
            }
            if (++counter_ > limit) {
                fail(c, "'" + arg(0) + "' was not drawn within " + std::to_string(limit) + " frames");
                next();
                continue;
            }
        } else if (op == "move" || op == "click" || op == "ctrlclick" || op == "dblclick" || op == "wheel") {
            ImVec2 p;
            if (phase_ == 0) {
                if (!target(arg(0), &p)) {
                    fail(c, "nothing named '" + arg(0) + "' on screen" + similar(arg(0)));
                    next();
                    continue;
                }
                mouse_ = p;
                down_ = false;
                phase_ = 1;
            } else if (op == "move") {
                next();
                continue;
            } else if (op == "wheel") {
                io.MouseWheel = static_cast<float>(std::atof(arg(1).c_str()));
                next();
            } else {
                const int presses = op == "dblclick" ? 2 : 1;
                // phase 1: down, 2: up, 3: down, 4: up
                if (phase_ > 2 * presses) {
                    next();
                    continue;
                }
                down_ = phase_ % 2 == 1;
                ctrl_ = op == "ctrlclick";
                ++phase_;
            }
        } else if (op == "drag") {
            // drag TARGET DX DY [STEPS [FRAMES_PER_STEP]]: press, move in STEPS steps, release.
            const int steps = c.args.size() > 3 ? std::max(1, std::atoi(arg(3).c_str())) : 8;
            const int per = c.args.size() > 4 ? std::max(1, std::atoi(arg(4).c_str())) : 1;
            if (phase_ == 0) {
                ImVec2 p;
                if (!target(arg(0), &p)) {
                    fail(c, "nothing named '" + arg(0) + "' on screen" + similar(arg(0)));
                    next();
                    continue;
                }
                mouse_ = drag_from_ = p;
                down_ = false;
                phase_ = 1;
            } else if (phase_ == 1) {
                down_ = true;
                drag_start_results_ = ses.routing_results();
                drag_results_ = 0;
                drag_distinct_ = 0;
                if (ses.results().routing) drag_seen_ = ses.results().routing->scenario;
                phase_ = 2;
            } else if (phase_ < 2 + steps * per) {
                float t = static_cast<float>((phase_ - 2) / per + 1) / steps;
                mouse_ =
                    ImVec2(drag_from_.x + std::atof(arg(1).c_str()) * t, drag_from_.y + std::atof(arg(2).c_str()) * t);
                ++phase_;
            } else {
                down_ = false;
                last_drag_results_ = drag_results_;
                last_drag_distinct_ = drag_distinct_;
                std::fprintf(stderr,
                             "moelab: script: %llu result(s) arrived during the drag, %d different scenario(s) shown\n",
                             static_cast<unsigned long long>(last_drag_results_), last_drag_distinct_);
                next();
            }
        } else if (op == "key") {
            if (phase_ == 0) {
                int k = key_code(arg(0));
                if (k < 0) {
                    fail(c, "unknown key " + arg(0));
                    next();
                    continue;
                }
                key_ = k;
                io.KeysDown[k] = true;
                for (std::size_t i = 1; i < c.args.size(); ++i) {
                    shift_ |= c.args[i] == "shift";
                    ctrl_ |= c.args[i] == "ctrl";
                    alt_ |= c.args[i] == "alt";
                }
                phase_ = 1;
            } else {
                next();  // this frame releases the key (above), so a repeated key is a new press
            }
        } else if (op == "type") {
            for (unsigned char ch : arg(0)) io.AddInputCharacter(ch);
            next();
        } else {
            consumed_frame = false;
            // Instant commands and checks against the last frame.
            const Probe& pr = probe();
            if (op == "expect_error_or_gpu" && !ses.gpus().empty()) {
                // A GPU is present: the error cannot happen; nothing to check.
            } else if (op == "expect_error" || op == "expect_error_or_gpu") {
                auto it = pr.errors.find(arg(0));
                std::string want;
                for (std::size_t i = 1; i < c.args.size(); ++i) want += (i > 1 ? " " : "") + c.args[i];
                if (it == pr.errors.end()) {
                    fail(c, "no error shown under " + arg(0));
                } else if (!want.empty() && it->second.find(want) == std::string::npos) {
                    fail(c, "the error under " + arg(0) + " is '" + it->second + "', without '" + want + "'");
                } else {
                    std::fprintf(stderr, "moelab: script: error shown under %s: %s\n", arg(0).c_str(),
                                 it->second.c_str());
                }
            } else if (op == "expect_no_error") {
                if (pr.errors.count(arg(0))) fail(c, "still an error under " + arg(0) + ": " + pr.errors.at(arg(0)));
            } else if (op == "expect_anchor") {
                if (!pr.anchors.count(arg(0))) fail(c, "'" + arg(0) + "' was not drawn");
            } else if (op == "expect_no_anchor") {
                if (pr.anchors.count(arg(0))) fail(c, "'" + arg(0) + "' is still drawn");
            } else if (op == "expect_any_anchor") {
                // One of several names (a label that depends on the machine, e.g. its provenance) was drawn.
                std::string shown;
                for (const std::string& a : c.args)
                    if (pr.anchors.count(a)) shown += (shown.empty() ? "" : ", ") + a;
                if (shown.empty())
                    fail(c, "none of the names was drawn" + similar(arg(0)));
                else
                    std::fprintf(stderr, "moelab: script: drawn: %s\n", shown.c_str());
            } else if (op == "count_frames") {
                anchor_frames_[arg(0)] = 0;  // from the next frame on
            } else if (op == "expect_frames") {
                // At least N frames drew NAME since `count_frames NAME`: the window kept drawing while it showed.
                auto it = anchor_frames_.find(arg(0));
                const int want = std::max(1, std::atoi(arg(1).c_str()));
                const int got = it == anchor_frames_.end() ? 0 : it->second;
                std::fprintf(stderr, "moelab: script: %d frame(s) drew %s\n", got, arg(0).c_str());
                if (it == anchor_frames_.end())
                    fail(c, "no count_frames " + arg(0) + " before it");
                else if (got < want)
                    fail(c, std::to_string(got) + " frame(s) drew " + arg(0) + "; wanted at least " + std::to_string(want));
            } else if (op == "expect_busy") {
                if (!ses.busy()) fail(c, "no run in progress");
            } else if (op == "expect_ranges_match_validation") {
                // Every slider of the controls offers exactly the range validation accepts: both ends validate,
                // and one step past either end is refused with a message naming the flag.
                int checked = 0;
                for (const demos::ParamInfo& p : demos::scenario_params()) {
                    if (p.widget != demos::Widget::IntSlider && p.widget != demos::Widget::FloatSlider &&
                        p.widget != demos::Widget::LogSlider)
                        continue;
                    // Offered as the divisors of E and of the query heads, each of which validates.
                    if (std::string(p.name) == "ranks" || std::string(p.name) == "kv_groups") continue;
                    auto it = pr.ranges.find(p.name);
                    if (it == pr.ranges.end()) {
                        fail(c, std::string("the slider for ") + p.flag + " was not drawn");
                        continue;
                    }
                    const auto [lo, hi] = it->second;
                    const auto want = p.range_in(ses.scenario());
                    if (lo != want.first || hi != want.second)
                        fail(c, std::string(p.flag) + ": the slider offers " + std::to_string(lo) + ".." +
                                    std::to_string(hi) + ", validation allows " + std::to_string(want.first) + ".." +
                                    std::to_string(want.second));
                    const double step = p.type() == demos::ParamType::Double ? std::max(1e-3, (hi - lo) * 1e-3) : 1;
                    for (double v : {lo, hi, lo - step, hi + step}) {
                        demos::Scenario x = ses.scenario();
                        p.set_number(x, v);
                        bool named = false;
                        for (const std::string& m : x.validate()) named |= m.rfind(p.flag, 0) == 0;
                        const bool inside = v >= lo && v <= hi;
                        if (named == inside)
                            fail(c, std::string(p.flag) + " = " + std::to_string(v) +
                                        (inside ? ": inside the slider, refused by validation"
                                                : ": outside the slider, accepted by validation"));
                    }
                    ++checked;
                }
                std::fprintf(stderr, "moelab: script: %d slider ranges match validation\n", checked);
            } else if (op == "expect_drag_results") {
                // At least N new results, for at least N different scenarios, were shown while the button was held.
                const int want = std::max(1, std::atoi(arg(0).c_str()));
                if (last_drag_distinct_ < want)
                    fail(c, "only " + std::to_string(last_drag_distinct_) +
                                " new result(s) were shown while dragging (" + std::to_string(last_drag_results_) +
                                " arrived); wanted " + std::to_string(want));
            } else if (op == "expect_result") {
                const ResultSet& r = ses.results();
                const std::string w = arg(0);
                bool ok = w == "layer"      ? r.layer.has_value()
                          : w == "dispatch" ? r.dispatch.has_value()
                          : w == "sweep"    ? r.sweep.size() >= 2
                                            : r.routing.has_value();
                if (!ok) fail(c, "no " + w + " result" + (ses.error().present ? ": " + ses.error().message : ""));
            } else if (op == "expect_scenario") {
                std::string toml = ses.scenario().to_toml();
                std::string line = arg(0) + " = " + arg(1);
                if (toml.find(line) == std::string::npos &&
                    toml.find(arg(0) + " = \"" + arg(1) + "\"") == std::string::npos)
                    fail(c, "the scenario has no '" + line + "'");
            } else if (op == "save_png" || op == "screenshot") {
                ImVec4 rect(0, 0, 0, 0);
                if (op == "save_png") {
                    auto it = pr.windows.find(arg(0));
                    if (it == pr.windows.end())
                        fail(c, "view " + arg(0) + " is not open");
                    else
                        rect = it->second;
                }
                cmds.save_png(op == "screenshot" ? arg(0) : arg(1), rect);
                consumed_frame = true;  // the picture is this frame, before the next command moves the mouse
            } else if (op == "export") {
                cmds.simple(CommandKind::Export, arg(0));
                awaiting_.push_back(c.line);
            } else if (op == "export_trace") {
                cmds.simple(CommandKind::ExportTrace, arg(0));
                awaiting_.push_back(c.line);
            } else if (op == "save_scenario") {
                cmds.simple(CommandKind::SaveScenario, arg(0));
                awaiting_.push_back(c.line);
            } else if (op == "load_scenario") {
                cmds.simple(CommandKind::OpenScenario, arg(0));
                awaiting_.push_back(c.line);
            } else if (op == "open_roofline") {  // as a .json dropped on the window
                cmds.simple(CommandKind::OpenRoofline, arg(0));
                awaiting_.push_back(c.line);
            } else if (op == "set_view") {
                const ViewInfo* v = find_view(arg(0));
                if (!v)
                    fail(c, "no view " + arg(0));
                else
                    *vs.open_flag(v->id) = arg(1) != "off";
            } else if (op == "solo") {
                const ViewInfo* v = find_view(arg(0));
                vs.solo = v ? v->key : "";
                for (const ViewInfo& w : view_registry())
                    if (bool* f = vs.open_flag(w.id)) *f = v ? w.id == v->id : *f;
                if (!v) vs.relayout = true;
                if (!v && arg(0) != "off") fail(c, "no view " + arg(0));
            } else if (op == "resize") {
                // The window's own range (--width/--height); GLFW asserts on sizes below 0.
                int w = std::atoi(arg(0).c_str()), h = std::atoi(arg(1).c_str());
                if (w < 64 || h < 64 || w > 8192 || h > 8192)
                    fail(c, "resize " + arg(0) + " " + arg(1) + ": width and height must be between 64 and 8192");
                else if (app.resize_window)
                    app.resize_window(w, h);
            } else if (op == "mark") {
                mark_ = arg(0);
            } else if (op == "presenter") {
                vs.presenter = arg(0) != "off";
            } else if (op == "full_layer") {
                vs.run_full_layer = arg(0) != "off";
            } else if (op == "rerun") {
                cmds.rerun();
            } else if (op == "echo") {
                std::fprintf(stderr, "moelab: script: %s\n", arg(0).c_str());
            } else if (op == "quit") {
                quit_ = true;
            }
            next();
        }
        if (consumed_frame) break;
    }
    io.MousePos = mouse_;
    io.MouseDown[0] = down_;
    io.KeyCtrl = ctrl_;
    io.KeyShift = shift_;
    io.KeyAlt = alt_;
}

}  // namespace moelab_gui::testing
