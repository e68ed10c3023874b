// The lesson player in the desktop app, under its own Xvfb: a script plays lessons to the end (locked reveal,
// prediction, commit, ghost, feedback, try-next into the controls), then presenter mode with a class tally.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "demos/lesson_progress.hpp"
#include "tests/gui/script_gui.hpp"
#include "tests/support/test_support.hpp"

namespace {

using moelab_test::shell;
using moelab_test::Shell;
using moelab_test::Xvfb;

// Plays one choice lesson right, a bars lesson wrong (typed bars), loads a try-next into the controls, and
// checks along the way that nothing is revealed before the prediction and the confidence are committed.
const char* kPlay = R"(# lesson player: play to the end
full_layer off
wait_idle 3000
set_view dispatch off
key F3
wait 3
wait_anchor lesson:item:dispatch-bytes 600
click lesson:item:dispatch-bytes
wait 2
click lesson:commit
wait 3
expect_no_anchor lesson:score
click lesson:choice:b
wait 2
click lesson:commit
wait 3
expect_no_anchor lesson:score
click lesson:confidence:4
wait 2
click lesson:commit
wait 3
wait_idle 3000
wait 3
expect_anchor lesson:score
expect_anchor lesson:result:right
expect_anchor lesson:explanation
expect_scenario ranks 4
screenshot ${out}/lesson-choice.png
wheel win:lesson@0.7,0.5 -40
wait 3
click lesson:load:2
wait 3
wait_idle 3000
expect_scenario ranks 16
wheel win:lesson@0.7,0.5 40
wait 2
click lesson:item:straggler
wait 3
expect_anchor lesson:bars
expect_no_anchor lesson:ghost_bars
click lesson:answer
type 1*16
wait 2
click lesson:confidence:5
wait 2
click lesson:commit
wait 3
wait_idle 3000
wait 3
expect_anchor lesson:result:wrong
expect_anchor lesson:feedback
expect_anchor lesson:ghost_bars
expect_scenario experts 16
expect_scenario top_k 1
screenshot ${out}/lesson-bars.png
)";

// Presenter mode (peer instruction): the instructor types the class's first vote and its confidence; the answer
// stays hidden while the player says how many were right and suggests the next step; the class discusses and votes
// again; the player shows the shift between the two votes, then reveals.
const char* kPresenter = R"(# lesson player: presenter mode, two votes
full_layer off
wait_idle 3000
set_view dispatch off
presenter on
wait 3
key F3
wait 3
# The lessons load in the background: wait for the list before scrolling it.
wait_anchor lesson:item:decode-prefill 600
# The list wraps whole titles: the last lessons are below its fold.
wheel win:lesson@0.1,0.7 -40
wait 3
click lesson:item:decode-prefill
wait 3
wheel win:lesson@0.7,0.5 -40
wait 3
wait_anchor lesson:votes:a 600
click lesson:votes:a
type 7
click lesson:votes:c
type 2
wait 2
expect_anchor lesson:commit
wait_anchor lesson:class_confidence 600
click lesson:class_confidence@0.2,0.5
type 4
wait 2
wait_anchor lesson:commit 600
click lesson:commit
wait 3
wait_idle 3000
wait 3
expect_anchor lesson:first_vote
expect_anchor lesson:suggestion
expect_no_anchor lesson:score
expect_no_anchor lesson:explanation
expect_no_anchor lesson:shift
wait_anchor lesson:first_vote 600
wheel win:lesson@0.7,0.5 -40
wait 3
wait_anchor lesson:votes2:a 600
click lesson:votes2:a
type 1
click lesson:votes2:c
type 8
wait 2
wait_anchor lesson:second_commit 600
click lesson:second_commit
wait 3
wheel win:lesson@0.7,0.5 -40
wait 3
expect_anchor lesson:shift
expect_anchor lesson:vote_bars
expect_no_anchor lesson:score
screenshot ${out}/lesson-presenter-shift.png
wait_anchor lesson:reveal 600
click lesson:reveal
wait 3
wait_idle 3000
wait 2
expect_anchor lesson:score
expect_anchor lesson:explanation
expect_scenario tokens 64
wheel win:lesson@0.7,0.5 40
wait 3
expect_anchor lesson:shift
screenshot ${out}/lesson-presenter-revealed.png
)";

class LessonGui : public moelab_test::ScriptGui {
  protected:
    LessonGui() : ScriptGui("moelab_lesson_gui", 6000) {}
};

}  // namespace

TEST_F(LessonGui, PlaysLessonsToTheEnd) {
    Shell r = play(kPlay);
    ASSERT_TRUE(played_cleanly(r));
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/cfg/lesson-choice.png"));
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/cfg/lesson-bars.png"));
    // Progress beside the app's preferences, written atomically: no temp file left behind.
    std::string progress = read("cfg/progress.toml");
    EXPECT_NE(progress.find("[lessons.dispatch-bytes]"), std::string::npos) << progress;
    EXPECT_NE(progress.find("[lessons.straggler]"), std::string::npos) << progress;
    EXPECT_NE(progress.find("last_confidence = 5"), std::string::npos) << progress;
    for (auto& e : std::filesystem::directory_iterator(dir_ + "/cfg"))
        EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST_F(LessonGui, PresenterTwoVotesShowTheShiftAndSaveBoth) {
    Shell r = play(kPresenter);
    ASSERT_TRUE(played_cleanly(r));
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/cfg/lesson-presenter-shift.png"));
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/cfg/lesson-presenter-revealed.png"));
    // Both votes saved as the terminal's --class player saves them; a class's tally is not a student's attempt.
    demos::Progress p = demos::Progress::load(dir_ + "/cfg/progress.toml");
    ASSERT_TRUE(p.lessons.count("decode-prefill")) << read("cfg/progress.toml");
    const demos::LessonProgress& lp = p.lessons.at("decode-prefill");
    EXPECT_EQ(lp.votes_total, 9);
    EXPECT_TRUE(lp.votes_first == 0 || lp.votes_first == 2 || lp.votes_first == 7) << lp.votes_first;
    // The second vote (a: 1, c: 8) moved the same choices: whichever is right, the counts mirror the first's.
    const int want_second = lp.votes_first == 7 ? 1 : lp.votes_first == 2 ? 8 : 0;
    EXPECT_EQ(lp.votes_second, want_second);
    EXPECT_EQ(lp.attempts, 0);
}
