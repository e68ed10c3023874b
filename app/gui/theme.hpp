// Look and feel: fonts (DejaVu Sans, rebuilt at each size rather than scaled), dark / high-contrast styles,
// the Okabe–Ito colour-blind-safe palette, provenance colours, and the small shared widgets (HelpMarker, badges).
#pragma once
#include <imgui.h>

#include <string>

#include "demos/lesson_numbers.hpp"
#include "demos/result.hpp"

namespace moelab_gui {

struct Palette {
    bool light = false;
    ImU32 series[8] = {};  // categorical: micro-batches, strategies, ranks
    int series_count = 7;
    ImU32 bar = 0, bar_hot = 0, dropped = 0, mean = 0, capacity = 0;
    ImU32 axis = 0, grid = 0, text = 0, text_dim = 0, band = 0, panel = 0;
    ImU32 ok = 0, bad = 0, warn = 0;
    ImU32 prov_gpu = 0, prov_cpu = 0, prov_emulated = 0, prov_modeled = 0;
    ImU32 series_at(int i) const { return series[((i % series_count) + series_count) % series_count]; }
};

struct Fonts {
    ImFont* body = nullptr;
    ImFont* bold = nullptr;
    ImFont* big = nullptr;    // the straggler factor and other headline numbers
    ImFont* small = nullptr;  // axis ticks
    float body_px = 16, big_px = 40, small_px = 13;
    bool dejavu = false;  // false: ImGui's built-in font (ASCII only) is the fallback
    std::string path;
};

enum class ThemeKind { Dark, Light, HighContrast };
enum class PaletteKind { OkabeIto, Classic };

struct Look {
    ThemeKind theme = ThemeKind::Dark;
    PaletteKind palette = PaletteKind::OkabeIto;
    float ui_scale = 1.0f;  // DPI content scale × the user's zoom × presenter factor
};

// The look resource: the fonts and the chart palette built for the current theme, size and mode. One per process,
// as ImGui's style and font atlas are; the app rebuilds it before a frame, views only read it.
struct Skin {
    Palette pal;
    Fonts fonts;
    Look look;  // what it was built for (presenter mode forces high contrast and Okabe–Ito)
    bool presenter = false;
    bool built = false;
};
const Skin& skin();
// Rebuilds the fonts and the palette when `look` (its ui_scale included) or presenter mode differ from the last
// build. Returns true when it did; the renderer must then upload the font texture again.
bool update_skin(const Look& look, bool presenter);

// Clears the atlas and adds the fonts at `scale` (16 px body at 1.0). The caller re-uploads the texture.
void build_fonts(Fonts* fonts, float scale);
// Sets ImGui's style from scratch (so scaling never compounds) and returns the matching chart palette.
Palette apply_look(const Look& look);

ImU32 provenance_color(const Palette& pal, demos::Provenance p);
const char* provenance_help(demos::Provenance p);
// A small coloured tag, e.g. [measured-cpu], with a tooltip saying what it means.
void provenance_badge(const Palette& pal, demos::Provenance p);
// The same for a lesson number's source; an input shows as a plain [input].
void source_badge(const Palette& pal, demos::lesson::Source s);
// "(?)" that shows `text` in a wrapped tooltip.
void help_marker(const char* text);
// A tooltip with wrapped text.
void wrapped_tooltip(const char* text);
ImU32 with_alpha(ImU32 c, float a);
ImU32 mix(ImU32 a, ImU32 b, float t);

}  // namespace moelab_gui
