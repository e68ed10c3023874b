// GUI tests (label gui): `moelab snapshot` of every view through windowless EGL, and the real app under its own
// Xvfb, driven by scripted mouse and keyboard input. Window tests skip with a reason when Xvfb is missing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stb_image.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/scratch.hpp"
#include "tests/support/test_support.hpp"

namespace {

using moelab_test::Xvfb;

const std::string kBin = MOELAB_BIN;
// A small scenario keeps the background runs short on a CPU-only CI machine.
const std::string kSmall = " --tokens 1024 --hidden 256 --ffn 512";

using Proc = moelab_test::Shell;
Proc sh(const std::string& cmd) { return moelab_test::shell(cmd); }

std::string temp_dir() { return moelab_test::scratch_dir("moelab-gui"); }

bool exists(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && st.st_size > 0;
}

std::string slurp(const std::string& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

struct Image {
    int w = 0, h = 0;
    std::size_t colours = 0;  // distinct colours (capped)
    double luma_sd = 0;       // standard deviation of the luminance
};

Image inspect_png(const std::string& path) {
    Image im;
    int n = 0;
    unsigned char* px = stbi_load(path.c_str(), &im.w, &im.h, &n, 3);
    if (!px) return im;
    std::set<unsigned> colours;
    double sum = 0, sum2 = 0;
    const std::size_t count = static_cast<std::size_t>(im.w) * im.h;
    for (std::size_t i = 0; i < count; ++i) {
        const unsigned char* p = px + 3 * i;
        if (colours.size() < 5000) colours.insert(unsigned(p[0]) << 16 | unsigned(p[1]) << 8 | p[2]);
        double y = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
        sum += y;
        sum2 += y * y;
    }
    stbi_image_free(px);
    im.colours = colours.size();
    double mean = sum / count;
    im.luma_sd = std::sqrt(std::max(0.0, sum2 / count - mean * mean));
    return im;
}

void expect_picture(const std::string& path, int w, int h) {
    ASSERT_TRUE(exists(path)) << path << " was not written";
    Image im = inspect_png(path);
    EXPECT_EQ(im.w, w) << path;
    EXPECT_EQ(im.h, h) << path;
    // A blank or single-colour frame has a handful of colours and no contrast; a drawn view has text and charts.
    EXPECT_GT(im.colours, 40u) << path << " looks blank";
    EXPECT_GT(im.luma_sd, 8.0) << path << " looks blank";
}

// The command prefix that runs a program on a display with Mesa's software GL.
std::string env_of(const Xvfb& x) { return "env DISPLAY=" + x.display() + " LIBGL_ALWAYS_SOFTWARE=1 "; }

const char* kNoDisplay = "env -u DISPLAY -u WAYLAND_DISPLAY ";

}  // namespace

TEST(GuiSnapshot, EveryViewIsAPngOfTheRightSizeThatIsNotBlank) {
    const std::string dir = temp_dir();
    for (const char* view : {"loads", "comm", "dispatch", "timeline", "device", "controls", "overview"}) {
        const std::string out = dir + "/" + view + ".png";
        Proc p = sh(kNoDisplay + kBin + " snapshot -q --view " + view + " --out " + out + " --width 900 --height 600" +
                    kSmall);
        ASSERT_EQ(p.rc, 0) << view << ":\n" << p.out;
        expect_picture(out, 900, 600);
    }
}

TEST(GuiSnapshot, PresenterModeAndRanksRender) {
    const std::string dir = temp_dir();
    const std::string out = dir + "/presenter.png";
    Proc p = sh(kNoDisplay + kBin + " snapshot -q --view overview --presenter --out " + out +
                " --width 1600 --height 1000 --ranks 4 --skew hot:6 --capacity-factor 1.25" + kSmall);
    ASSERT_EQ(p.rc, 0) << p.out;
    expect_picture(out, 1600, 1000);
    const std::string loads = dir + "/loads.png";
    p = sh(kNoDisplay + kBin + " snapshot -q --view loads --out " + loads + " --ranks 4 --skew zipf:1.2 --preset DBRX" +
           " --tokens 2048");
    ASSERT_EQ(p.rc, 0) << p.out;
    expect_picture(loads, 1280, 800);
}

// A Result saved with --json on a GPU machine (tests/data: `moelab run pipeline --backend cuda --layers 4 -m 4 --json`,
// one H200, 2026-12-02, at the default split) draws its measured timeline on a machine without one; a file cut short is
// bad input that names it.
TEST(GuiSnapshot, SavedMeasuredPipelineDrawsAnywhere) {
    const std::string dir = temp_dir();
    const std::string saved = std::string(MOELAB_SOURCE_DIR) + "/tests/data/measured-pipeline-h200.json";
    const std::string out = dir + "/measured.png";
    Proc p = sh(kNoDisplay + kBin + " snapshot -q --view timeline --result " + saved + " --out " + out +
                " --width 1400 --height 620");
    ASSERT_EQ(p.rc, 0) << p.out;
    expect_picture(out, 1400, 620);
    const std::string text = slurp(saved);
    ASSERT_GT(text.size(), 1000u);
    const std::string cut = dir + "/cut.json";
    std::ofstream(cut) << text.substr(0, text.size() / 2);
    p = sh(kNoDisplay + kBin + " snapshot -q --view timeline --result " + cut + " --out " + dir + "/never.png");
    EXPECT_EQ(p.rc, 2) << p.out;
    EXPECT_NE(p.out.find("cut.json"), std::string::npos) << p.out;
}

TEST(GuiSnapshot, BadInputExitsTwoAndNamesTheFlag) {
    Proc p = sh(kNoDisplay + kBin + " snapshot -q --view loads --out /tmp/never.png --experts 16 --top-k 20");
    EXPECT_EQ(p.rc, 2) << p.out;
    EXPECT_NE(p.out.find("--top-k"), std::string::npos) << p.out;
    p = sh(kNoDisplay + kBin + " snapshot --view nosuchview --out /tmp/never.png");
    EXPECT_EQ(p.rc, 2) << p.out;
}

TEST(GuiWindow, WithoutADisplayItSaysSoAndPointsToTheTerminal) {
    Proc p = sh(kNoDisplay + kBin);
    EXPECT_EQ(p.rc, 1) << p.out;
    EXPECT_NE(p.out.find("no display"), std::string::npos) << p.out;
    EXPECT_NE(p.out.find("moelab run"), std::string::npos) << p.out;
    EXPECT_NE(p.out.find("moelab lesson"), std::string::npos) << p.out;
    EXPECT_NE(p.out.find("moelab snapshot"), std::string::npos) << p.out;
}

TEST(GuiWindow, ScriptedTourDrivesEveryView) {
    Xvfb x;
    if (!x.ok()) GTEST_SKIP() << x.why();
    const std::string dir = temp_dir();
    Proc p = sh(env_of(x) + kBin + " --frames 20000 --script builtin:tour --config-dir " + dir + " --screenshot " +
                dir + "/final.png" + kSmall);
    ASSERT_EQ(p.rc, 0) << p.out;
    expect_picture(dir + "/final.png", 1280, 800);
    expect_picture(dir + "/tour-loads.png", inspect_png(dir + "/tour-loads.png").w,
                   inspect_png(dir + "/tour-loads.png").h);
    EXPECT_NE(slurp(dir + "/tour-result.json").find("\"expert_loads\""), std::string::npos);
    const std::string csv = slurp(dir + "/tour-result.csv");
    EXPECT_NE(csv.find("provenance"), std::string::npos);
    EXPECT_NE(csv.find("dispatch,scan,median"), std::string::npos) << "the strategy rows of the dispatch run";
    EXPECT_NE(slurp(dir + "/tour-result.json").find("\"strategies\""), std::string::npos);
    EXPECT_NE(slurp(dir + "/tour-scenario.toml").find("ranks = 2"), std::string::npos);
    // Layout in imgui.ini, preferences in their own file.
    EXPECT_NE(slurp(dir + "/imgui.ini").find("[Window][Expert loads]"), std::string::npos);
    EXPECT_NE(slurp(dir + "/prefs.toml").find("presenter = false"), std::string::npos);
}

TEST(GuiWindow, InvalidTopKIsShownUnderItsControlAndTheAppSurvives) {
    Xvfb x;
    if (!x.ok()) GTEST_SKIP() << x.why();
    const std::string dir = temp_dir();
    Proc p = sh(env_of(x) + kBin + " --frames 8000 --script builtin:invalid-topk --config-dir " + dir + kSmall);
    ASSERT_EQ(p.rc, 0) << p.out;
    EXPECT_NE(p.out.find("error shown under --top-k"), std::string::npos) << p.out;
    // Runtime errors too: a run too big for memory is refused and the message sits under tokens.
    EXPECT_NE(p.out.find("error shown under --tokens"), std::string::npos) << p.out;
}

TEST(GuiWindow, PresenterModeStartsAndReportsFrameTimes) {
    Xvfb x;
    if (!x.ok()) GTEST_SKIP() << x.why();
    const std::string dir = temp_dir();
    Proc p = sh(env_of(x) + kBin + " --presenter --frames 40 --config-dir " + dir + " --screenshot " + dir +
                "/presenter.png --report-json " + dir + "/frames.json" + kSmall);
    ASSERT_EQ(p.rc, 0) << p.out;
    expect_picture(dir + "/presenter.png", 1280, 800);
    std::string j = slurp(dir + "/frames.json");
    EXPECT_NE(j.find("\"median_ms\""), std::string::npos) << j;
    EXPECT_NE(j.find("\"startup_exec_ms\""), std::string::npos) << j;
}

TEST(GuiWindow, AScriptThatFailsAChecksExitsNonZero) {
    Xvfb x;
    if (!x.ok()) GTEST_SKIP() << x.why();
    const std::string dir = temp_dir();
    std::ofstream(dir + "/fail.txt") << "wait 2\nexpect_anchor no_such_widget\n";
    Proc p = sh(env_of(x) + kBin + " --frames 100 --script " + dir + "/fail.txt --config-dir " + dir + kSmall);
    EXPECT_EQ(p.rc, 1) << p.out;
    EXPECT_NE(p.out.find("no_such_widget"), std::string::npos) << p.out;
}

TEST(GuiWindow, ResultsArriveWhileASliderIsDragged) {
    Xvfb x;
    if (!x.ok()) GTEST_SKIP() << x.why();
    const std::string dir = temp_dir();
    // builtin:drag holds the button on the capacity-factor slider for 90 frames and fails unless new loads, for
    // at least three of the values passed through, were shown before the release.
    Proc p = sh(env_of(x) + kBin + " --frames 3000 --script builtin:drag --config-dir " + dir +
                " --report-frame-times --report-json " + dir + "/frames.json" + kSmall);
    ASSERT_EQ(p.rc, 0) << p.out;
    EXPECT_NE(p.out.find("arrived during the drag"), std::string::npos) << p.out;
    // Edit to result is measured and reported.
    const std::string j = slurp(dir + "/frames.json");
    const std::string key = "\"edit_to_result\": {\"count\": ";
    const auto at = j.find(key);
    ASSERT_NE(at, std::string::npos) << j;
    EXPECT_GE(std::atoi(j.c_str() + at + key.size()), 3) << j;  // the count's first digit is at + key.size()
    EXPECT_NE(p.out.find("edit to result: median"), std::string::npos) << p.out;
}

// A directory whose libGL.so.1 is an empty file: on LD_LIBRARY_PATH it is found first, and the dynamic loader
// refuses it ("file too short"), exactly as when libGL.so.1 is missing.
std::string broken_libgl_dir() {
    const std::string dir = temp_dir();
    std::ofstream(dir + "/libGL.so.1").flush();
    return dir;
}

void expect_gl_message(const Proc& p, const std::string& what) {
    EXPECT_EQ(p.rc, 1) << p.out;  // not a signal: a crash would give -1 here
    EXPECT_NE(p.out.find(what), std::string::npos) << p.out;
    EXPECT_NE(p.out.find("apt install"), std::string::npos) << "names what to install:\n" << p.out;
    EXPECT_NE(p.out.find("README.md"), std::string::npos) << "points to the README:\n" << p.out;
    EXPECT_EQ(p.out.find("../"), std::string::npos) << "no paths outside the repo:\n" << p.out;
    EXPECT_EQ(p.out.find("Failed to initialize OpenGL loader"), std::string::npos) << p.out;
}

TEST(GuiGlFailure, SnapshotWithoutTheOpenGLLoaderExitsOneAndSaysWhatToInstall) {
    const std::string lib = broken_libgl_dir();
    Proc p = sh(kNoDisplay + std::string("LD_LIBRARY_PATH=") + lib + " " + kBin + " snapshot -q --view loads --out " +
                lib + "/never.png" + kSmall);
    expect_gl_message(p, "libGL.so.1");
    EXPECT_FALSE(exists(lib + "/never.png"));
}

// The review's own reproduction: libGL.so.1 replaced by an empty file in a private mount namespace. Returns the
// command prefix that runs a command line there, or "" (with `why`) where that cannot be done.
std::string hide_libgl(std::string* why) {
    if (sh("unshare -rm true").rc != 0) {
        *why = "unprivileged mount namespaces are not available here";
        return "";
    }
    Proc where = sh("ldconfig -p | awk '/libGL.so.1 /{print $NF; exit}'");
    const std::string libgl = where.out.substr(0, where.out.find('\n'));
    if (libgl.empty()) {
        *why = "libGL.so.1 is not installed, so there is nothing to hide";
        return "";
    }
    const std::string dir = temp_dir();
    std::ofstream(dir + "/empty").flush();
    return "unshare -rm sh -c 'mount --bind " + dir + "/empty " + libgl + " && exec \"$0\" \"$@\"' ";
}

TEST(GuiGlFailure, SnapshotWithLibGLHiddenInAMountNamespace) {
    std::string why;
    const std::string hidden = hide_libgl(&why);
    if (hidden.empty()) GTEST_SKIP() << why;
    const std::string dir = temp_dir();
    Proc p = sh(hidden + "env -u DISPLAY " + kBin + " snapshot -q --view loads --out " + dir + "/never.png" + kSmall);
    expect_gl_message(p, "libGL.so.1");
}

TEST(GuiGlFailure, AnIncompleteFramebufferExitsOneAndSaysSo) {
    Proc p = sh(kNoDisplay + std::string("MOELAB_TEST_GL_FAIL=framebuffer ") + kBin +
                " snapshot -q --view loads --out /tmp/never.png" + kSmall);
    expect_gl_message(p, "framebuffer");
}

TEST(GuiGlFailure, TheWindowWithLibGLHiddenExitsOneAndSaysWhatToInstall) {
    Xvfb x;
    if (!x.ok()) GTEST_SKIP() << x.why();
    std::string why;
    const std::string hidden = hide_libgl(&why);
    if (hidden.empty()) GTEST_SKIP() << why;
    const std::string dir = temp_dir();
    Proc p = sh(hidden + env_of(x) + kBin + " --frames 5 --config-dir " + dir + kSmall);
    expect_gl_message(p, "libGL.so.1");
}

TEST(GuiWindow, EverySliderOffersTheRangeThatValidationAccepts) {
    Xvfb x;
    if (!x.ok()) GTEST_SKIP() << x.why();
    const std::string dir = temp_dir();
    // builtin:ranges compares the range each slider was drawn with against validation, from the same table:
    // both ends validate, one step past either end is refused naming the flag.
    Proc p = sh(env_of(x) + kBin + " --frames 500 --script builtin:ranges --config-dir " + dir + kSmall);
    ASSERT_EQ(p.rc, 0) << p.out;
    EXPECT_NE(p.out.find("slider ranges match validation"), std::string::npos) << p.out;
}

TEST(GuiWindow, PresenterModeTurnsPagesOfOneOrTwoViews) {
    Xvfb x;
    if (!x.ok()) GTEST_SKIP() << x.why();
    const std::string dir = temp_dir();
    // Page Down through the five pages at 1280×720; each page's view must be drawn (the script checks an anchor).
    Proc p = sh(env_of(x) + kBin + " --frames 3000 --width 1280 --height 720 --script builtin:presenter-pages" +
                " --config-dir " + dir + kSmall);
    ASSERT_EQ(p.rc, 0) << p.out;
    for (int i = 1; i <= 5; ++i) expect_picture(dir + "/presenter-" + std::to_string(i) + ".png", 1280, 720);
}
