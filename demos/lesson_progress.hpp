// Lesson progress: which lessons a student has played, how it went, and how sure they were. Saved as TOML
// with an atomic write (temp file + rename), so a crash mid-save never leaves a corrupt file behind.
#pragma once
#include <map>
#include <string>

namespace demos {

struct LessonProgress {
    int attempts = 0;
    int correct = 0;            // attempts that were right
    bool last_correct = false;
    double best_score = 0;      // 0..1
    int last_confidence = 0;    // 1..5
    std::string last_answer;
    std::string last_played;    // ISO 8601, UTC
    std::string why;            // the student's one-line "why?" after the last reveal (self-explanation)
    bool confident_miss = false;  // the last attempt was wrong at confidence 4 or 5
    int retest_try = 0;           // a confident miss comes back as this try-next variation (0: none due)
    int votes_first = -1, votes_second = -1, votes_total = 0;  // presenter: right answers in vote 1 and 2
};

struct Progress {
    std::map<std::string, LessonProgress> lessons;  // by lesson id

    // Records one attempt. A confident miss schedules a delayed re-test: the next variation after `played_try`
    // (of `variations`), wrapping round; a right answer clears it.
    void record(const std::string& id, bool correct, double score, int confidence, const std::string& answer,
                int played_try = 0, int variations = 0);
    void record_why(const std::string& id, const std::string& why);
    // Presenter mode: how many of `total` votes were right before and after discussion.
    void record_votes(const std::string& id, int first_right, int second_right, int total);
    bool done(const std::string& id) const;  // played at least once
    // A missing file is empty progress; a malformed one throws BadInput naming the file and line.
    static Progress load(const std::string& path);
    // Writes PATH.tmp.PID, flushes it, then renames it over PATH; creates the folder. Throws Runtime.
    void save(const std::string& path) const;
};

// $MOELAB_CONFIG_DIR/progress.toml, else $XDG_CONFIG_HOME/moelab/progress.toml, else ~/.config/moelab/progress.toml.
std::string default_progress_path();

}  // namespace demos
