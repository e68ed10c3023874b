// The charts module's plain helpers (label gui, no display): readable ticks, number formats, the colour ramp,
// and the preferences file round trip with its atomic write.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "app/gui/charts.hpp"
#include "app/gui/prefs.hpp"
#include "tests/support/scratch.hpp"

using namespace moelab_gui;

TEST(GuiCharts, TicksAreRoundNumbersCoveringTheRange) {
    auto t = charts::nice_ticks(0, 2200, 5);
    ASSERT_GE(t.size(), 3u);
    EXPECT_EQ(t.front(), 0.0);
    EXPECT_GE(t.back(), 2000.0);
    const double step = t[1] - t[0];
    for (double s : {1.0, 2.0, 2.5, 5.0}) {
        double mag = step / s;
        double l = std::log10(mag);
        if (std::fabs(l - std::round(l)) < 1e-9) return;  // step = s·10^n
    }
    FAIL() << "step " << step << " is not 1, 2, 2.5 or 5 times a power of ten";
}

TEST(GuiCharts, TicksOfADegenerateRangeDoNotLoop) {
    EXPECT_EQ(charts::nice_ticks(5, 5, 4).size(), 1u);
    EXPECT_EQ(charts::nice_ticks(0, 1, 0).size(), 1u);
    EXPECT_LE(charts::nice_ticks(0, 1e-12, 4).size(), 10u);
}

TEST(GuiCharts, NumbersReadLikeAPersonWouldWriteThem) {
    EXPECT_EQ(charts::fmt_bytes(33554432), "33.6 MB");
    EXPECT_EQ(charts::fmt_bytes(512), "512 B");
    EXPECT_EQ(charts::fmt_ms(0.812), "812 µs");
    EXPECT_EQ(charts::fmt_ms(12.34), "12.3 ms");
    EXPECT_EQ(charts::fmt_ms(1200), "1.2 s");
    EXPECT_EQ(charts::fmt_count(1234567), "1,234,567");
    EXPECT_EQ(charts::fmt_si(2000), "2000");
    EXPECT_EQ(charts::fmt_si(25000), "25k");
}

TEST(GuiCharts, TheRampRunsDarkToLight) {
    auto luma = [](ImU32 c) { return 0.299 * (c & 0xFF) + 0.587 * ((c >> 8) & 0xFF) + 0.114 * ((c >> 16) & 0xFF); };
    double prev = -1;
    for (float t = 0; t <= 1.0f; t += 0.125f) {
        double y = luma(charts::ramp(t));
        EXPECT_GT(y, prev) << "at " << t;
        prev = y;
    }
}

TEST(GuiPrefs, RoundTripThroughAnAtomicWrite) {
    const std::string dir = moelab_test::scratch_dir("moelab-prefs");
    const std::string path = dir + "/prefs.toml";
    Prefs p;
    p.presenter = true;
    p.theme = "high-contrast";
    p.palette = "classic";
    p.ui_scale = 1.5f;
    p.sweep_axis = "tokens";
    p.views[static_cast<int>(ViewId::Comm)] = false;
    std::string err;
    ASSERT_TRUE(write_file_atomic(path, prefs_to_toml(p), &err)) << err;
    std::string warn;
    Prefs q = load_prefs(path, &warn);
    EXPECT_TRUE(warn.empty()) << warn;
    EXPECT_TRUE(q.presenter);
    EXPECT_EQ(q.theme, "high-contrast");
    EXPECT_EQ(q.palette, "classic");
    EXPECT_FLOAT_EQ(q.ui_scale, 1.5f);
    EXPECT_EQ(q.sweep_axis, "tokens");
    EXPECT_FALSE(q.views[static_cast<int>(ViewId::Comm)]);
    EXPECT_TRUE(q.views[static_cast<int>(ViewId::Loads)]);
    // No temporary file is left behind.
    std::ifstream left(path + ".tmp." + std::to_string(::getpid()));
    EXPECT_FALSE(left.good());
}

TEST(GuiPrefs, ABrokenFileFallsBackToDefaultsAndSaysWhy) {
    const std::string dir = moelab_test::scratch_dir("moelab-prefs");
    const std::string path = dir + "/prefs.toml";
    std::ofstream(path) << "presenter = [not toml\n";
    std::string warn;
    Prefs q = load_prefs(path, &warn);
    EXPECT_FALSE(q.presenter);
    EXPECT_NE(warn.find(path), std::string::npos) << warn;
}
