// Helpers of the windowless Session and Runner tests (label gui): a scenario small enough for the CPU reference to
// run in milliseconds, and polling a Session until something holds.
#pragma once
#include <chrono>
#include <thread>

#include "app/gui/session.hpp"

namespace moelab_gui_test {

inline demos::Scenario tiny() {
    demos::Scenario s;
    s.tokens = 256;
    s.hidden = 64;
    s.ffn = 128;
    s.backend = "cpu";
    return s;
}

// Polls `s` every 10 ms until `done()` holds (true) or `seconds` pass (false).
template <class F>
bool poll_until(moelab_gui::Session& s, F done, int seconds = 120) {
    for (int i = 0; i < seconds * 100; ++i) {
        s.poll();
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

}  // namespace moelab_gui_test
