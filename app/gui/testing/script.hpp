// Scripted input for tests and measurements: a small line-based language that moves the mouse onto named
// widgets, clicks, drags, scrolls, types and presses keys by writing ImGuiIO before NewFrame (1.86 has no
// event queue), and checks what the last frame showed. `moelab --script FILE|builtin:NAME` runs one.
#pragma once
#include <imgui.h>

#include <string>
#include <vector>

namespace moelab_gui {

class App;

class Script {
  public:
    // `spec` is a file path or builtin:tour | builtin:invalid-topk | builtin:perf. ${out} in arguments becomes
    // `out_dir`. Returns false with `err` set when the script cannot be read or has an unknown command.
    bool load(const std::string& spec, const std::string& out_dir, std::string* err);
    bool active() const { return !cmds_.empty(); }
    bool finished() const { return pc_ >= cmds_.size(); }
    // Between the platform backend's NewFrame and ImGui::NewFrame: runs commands and writes the input state.
    void before_frame(App& app);
    int failures() const { return failures_; }
    const std::vector<std::string>& failure_messages() const { return messages_; }
    bool quit_requested() const { return quit_; }
    // The label of the last `mark` command: frame statistics are reported per mark.
    const std::string& mark() const { return mark_; }

    static const char* builtin(const std::string& name);  // the text of a built-in script, or nullptr

  private:
    struct Cmd {
        std::string op;
        std::vector<std::string> args;
        int line = 0;
    };
    bool target(App& app, const std::string& spec, ImVec2* p);
    void fail(const Cmd& c, const std::string& why);
    void next();

    std::vector<Cmd> cmds_;
    std::size_t pc_ = 0;
    int phase_ = 0;
    int counter_ = 0;
    ImVec2 mouse_{-1e30f, -1e30f};
    ImVec2 drag_from_{0, 0};
    bool down_ = false;
    bool ctrl_ = false, shift_ = false, alt_ = false;
    int key_ = -1;
    int failures_ = 0;
    std::vector<std::string> messages_;
    bool quit_ = false;
    std::string mark_;
};

}  // namespace moelab_gui
