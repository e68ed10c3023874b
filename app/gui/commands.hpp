// Commands: the typed requests that views, shortcuts, menus and scripts queue during a frame. The app carries
// them out after the frame, in order, through the Session (the one writer of the scenario and the results).
#pragma once
#include <imgui.h>

#include <string>
#include <vector>

#include "demos/lesson_play.hpp"
#include "demos/scenario.hpp"

namespace moelab_gui {

enum class CommandKind {
    SetScenario,      // scenario, preset; keep_backend: the user's backend stands
    Rerun,            // force_layer: the whole layer too, even where it is too slow to re-run on edits
    Cancel,           // the run in progress
    SavePng,          // path; rect in screen coordinates ((0,0,0,0): the whole window)
    Export,           // path: JSON and CSV of the current result (path + ".json" / ".csv"; "" = a stamped name)
    ExportTrace,      // path: the pipeline timeline as Chrome trace JSON, for Perfetto ("" = a stamped name)
    OpenScenario,     // path: a TOML scenario
    SaveScenario,     // path
    AskOpen,          // the "Open scenario" dialog
    AskSave,          // the "Save scenario" dialog
    StartLesson,      // index, variation
    CommitLesson,     // answer, presenter, votes, text (the class's answers), confidence (the class's, 1..5)
    RetryLesson,      // the reveal's runs again
    RevealLesson,     // presenter mode: show the answer
    SecondVote,       // presenter mode: votes, text: the class's second vote after discussion
    MeasureRoofline,  // the expert FFN's roofline on the GPU for the scenario's shape (again, after a failure)
    OpenRoofline,     // path: a saved expert FFN sweep (moelab bench experts --sweep --save) for the roofline panel
    Quit,
};
const char* command_name(CommandKind k);

struct Command {
    CommandKind kind = CommandKind::Rerun;
    demos::Scenario scenario;
    std::string preset;
    bool keep_backend = false;
    bool force_layer = false;
    std::string path;
    ImVec4 rect{0, 0, 0, 0};
    int index = 0, variation = 0;
    demos::LessonAnswer answer;
    bool presenter = false;
    std::vector<int> votes;
    std::string text;
    double confidence = 0;
};

// What came of a command the app carried out (scripts and tests check these).
struct Outcome {
    CommandKind kind;
    bool ok = true;
    std::string message;
};

class Commands {
  public:
    void push(Command c) { queue_.push_back(std::move(c)); }
    void set_scenario(const demos::Scenario& s, const std::string& preset = "", bool keep_backend = false) {
        Command c;
        c.kind = CommandKind::SetScenario;
        c.scenario = s;
        c.preset = preset;
        c.keep_backend = keep_backend;
        push(std::move(c));
    }
    void simple(CommandKind k, const std::string& path = "") {
        Command c;
        c.kind = k;
        c.path = path;
        push(std::move(c));
    }
    void rerun(bool force_layer = false) {
        Command c;
        c.kind = CommandKind::Rerun;
        c.force_layer = force_layer;
        push(std::move(c));
    }
    void save_png(const std::string& path, ImVec4 rect) {
        Command c;
        c.kind = CommandKind::SavePng;
        c.path = path;
        c.rect = rect;
        push(std::move(c));
    }
    void start_lesson(int index, int variation) {
        Command c;
        c.kind = CommandKind::StartLesson;
        c.index = index;
        c.variation = variation;
        push(std::move(c));
    }
    bool empty() const { return queue_.empty(); }
    bool has(CommandKind k) const {
        for (const Command& c : queue_)
            if (c.kind == k) return true;
        return false;
    }
    // The app takes the queue after the frame.
    std::vector<Command> take() {
        std::vector<Command> q;
        q.swap(queue_);
        return q;
    }
    const std::vector<Command>& queued() const { return queue_; }

    void record(Outcome o) { outcomes_.push_back(std::move(o)); }
    std::vector<Outcome> take_outcomes() {
        std::vector<Outcome> o;
        o.swap(outcomes_);
        return o;
    }

  private:
    std::vector<Command> queue_;
    std::vector<Outcome> outcomes_;
};

}  // namespace moelab_gui
