// Fonts, styles and palettes. Okabe & Ito (2008) is the categorical palette; viridis-like ramps live in charts.
// Font sizes are rasterised at their final pixel size so presenter mode stays sharp on a projector.
#include "app/gui/theme.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace moelab_gui {
namespace {

constexpr ImU32 rgb(unsigned r, unsigned g, unsigned b, unsigned a = 255) { return IM_COL32(r, g, b, a); }

bool file_exists(const std::string& p) {
    struct stat st;
    return !p.empty() && ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Latin-1, Greek, punctuation, super/subscripts, arrows, maths, technical, box and shapes: what our labels use.
const ImWchar kGlyphRanges[] = {0x0020, 0x00FF, 0x0370, 0x03FF, 0x2000, 0x206F, 0x2070, 0x209F, 0x2190, 0x21FF, 0x2200,
                                0x22FF, 0x2300, 0x23FF, 0x25A0, 0x25FF, 0x2600, 0x26FF, 0x2713, 0x2717, 0};

std::string find_font(const char* env, const char* file) {
    if (const char* e = std::getenv(env)) {
        if (file_exists(e)) return e;
    }
    const char* dirs[] = {"/usr/share/fonts/truetype/dejavu/", "/usr/share/fonts/TTF/", "/usr/share/fonts/dejavu/",
                          "/usr/local/share/fonts/"};
    for (const char* d : dirs) {
        std::string p = std::string(d) + file;
        if (file_exists(p)) return p;
    }
    return "";
}

}  // namespace

void build_fonts(Fonts* f, float scale) {
    ImGuiIO& io = ImGui::GetIO();
    io.Fonts->Clear();
    f->body_px = 16.0f * scale;
    f->big_px = 40.0f * scale;
    f->small_px = 13.0f * scale;
    f->path = find_font("MOELAB_FONT", "DejaVuSans.ttf");
    std::string bold = find_font("MOELAB_FONT_BOLD", "DejaVuSans-Bold.ttf");
    if (bold.empty()) bold = f->path;
    f->dejavu = !f->path.empty();
    if (f->dejavu) {
        ImFontConfig cfg;
        cfg.OversampleH = 2;  // enough for UI text; halves the atlas against the default 3
        cfg.OversampleV = 1;
        f->body = io.Fonts->AddFontFromFileTTF(f->path.c_str(), f->body_px, &cfg, kGlyphRanges);
        f->bold = io.Fonts->AddFontFromFileTTF(bold.c_str(), f->body_px, &cfg, kGlyphRanges);
        f->small = io.Fonts->AddFontFromFileTTF(f->path.c_str(), f->small_px, &cfg, kGlyphRanges);
        ImFontConfig big = cfg;
        f->big = io.Fonts->AddFontFromFileTTF(bold.c_str(), f->big_px, &big, io.Fonts->GetGlyphRangesDefault());
    }
    if (!f->body || !f->bold || !f->small || !f->big) {
        // DejaVu missing or unreadable: ImGui's own font, scaled by whole steps where we can.
        io.Fonts->Clear();
        f->dejavu = false;
        ImFontConfig cfg;
        cfg.SizePixels = 13.0f * scale;
        f->body = io.Fonts->AddFontDefault(&cfg);
        f->bold = f->body;
        f->small = f->body;
        ImFontConfig big;
        big.SizePixels = 26.0f * scale;
        f->big = io.Fonts->AddFontDefault(&big);
        f->body_px = f->small_px = cfg.SizePixels;
        f->big_px = big.SizePixels;
    }
    io.FontDefault = f->body;
    io.Fonts->Build();
}

Palette apply_look(const Look& look) {
    ImGuiStyle style;
    Palette p;
    const bool light = look.theme != ThemeKind::Dark;
    p.light = light;
    if (light) {
        ImGui::StyleColorsLight(&style);
    } else {
        ImGui::StyleColorsDark(&style);
    }
    style.WindowRounding = 4;
    style.FrameRounding = 3;
    style.GrabRounding = 3;
    style.PopupRounding = 3;
    style.ScrollbarRounding = 3;
    style.WindowPadding = ImVec2(10, 8);
    style.FramePadding = ImVec2(6, 3);
    style.ItemSpacing = ImVec2(8, 5);
    style.WindowTitleAlign = ImVec2(0.0f, 0.5f);
    ImVec4* c = style.Colors;
    if (look.theme == ThemeKind::Dark) {
        c[ImGuiCol_WindowBg] = ImVec4(0.105f, 0.11f, 0.125f, 1.0f);
        c[ImGuiCol_ChildBg] = ImVec4(0.09f, 0.095f, 0.11f, 1.0f);
        c[ImGuiCol_TitleBg] = ImVec4(0.13f, 0.14f, 0.17f, 1.0f);
        c[ImGuiCol_TitleBgActive] = ImVec4(0.17f, 0.22f, 0.32f, 1.0f);
        c[ImGuiCol_MenuBarBg] = ImVec4(0.13f, 0.14f, 0.16f, 1.0f);
        c[ImGuiCol_FrameBg] = ImVec4(0.18f, 0.19f, 0.22f, 1.0f);
        c[ImGuiCol_Header] = ImVec4(0.20f, 0.26f, 0.36f, 1.0f);
        c[ImGuiCol_Border] = ImVec4(0.26f, 0.27f, 0.31f, 1.0f);
    } else if (look.theme == ThemeKind::HighContrast) {
        // Projector-friendly: white ground, black text, strong borders and focus.
        c[ImGuiCol_Text] = ImVec4(0, 0, 0, 1);
        c[ImGuiCol_TextDisabled] = ImVec4(0.25f, 0.25f, 0.25f, 1);
        c[ImGuiCol_WindowBg] = ImVec4(1, 1, 1, 1);
        c[ImGuiCol_ChildBg] = ImVec4(1, 1, 1, 1);
        c[ImGuiCol_PopupBg] = ImVec4(1, 1, 1, 1);
        c[ImGuiCol_Border] = ImVec4(0, 0, 0, 1);
        c[ImGuiCol_FrameBg] = ImVec4(0.92f, 0.92f, 0.92f, 1);
        c[ImGuiCol_FrameBgHovered] = ImVec4(0.80f, 0.88f, 1.0f, 1);
        c[ImGuiCol_TitleBg] = ImVec4(0.85f, 0.85f, 0.85f, 1);
        c[ImGuiCol_TitleBgActive] = ImVec4(0.0f, 0.45f, 0.70f, 1);  // Okabe–Ito blue
        c[ImGuiCol_MenuBarBg] = ImVec4(0.9f, 0.9f, 0.9f, 1);
        c[ImGuiCol_SliderGrab] = ImVec4(0.0f, 0.45f, 0.70f, 1);
        c[ImGuiCol_CheckMark] = ImVec4(0.0f, 0.0f, 0.0f, 1);
        style.WindowBorderSize = 2;
        style.FrameBorderSize = 1;
    }
    style.ScaleAllSizes(look.ui_scale);
    ImGui::GetStyle() = style;

    // Okabe–Ito: orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple.
    const ImU32 oi[7] = {rgb(230, 159, 0), rgb(86, 180, 233), rgb(0, 158, 115),  rgb(240, 228, 66),
                         rgb(0, 114, 178), rgb(213, 94, 0),   rgb(204, 121, 167)};
    const ImU32 classic[7] = {rgb(31, 119, 180),  rgb(255, 127, 14), rgb(44, 160, 44),  rgb(214, 39, 40),
                              rgb(148, 103, 189), rgb(140, 86, 75),  rgb(227, 119, 194)};
    const ImU32* cat = look.palette == PaletteKind::OkabeIto ? oi : classic;
    for (int i = 0; i < 7; ++i) p.series[i] = cat[i];
    if (light && look.palette == PaletteKind::OkabeIto) p.series[3] = rgb(190, 170, 0);  // yellow on white
    p.series_count = 7;
    if (look.palette == PaletteKind::OkabeIto) {
        p.bar = light ? rgb(0, 114, 178) : rgb(86, 180, 233);
        p.bar_hot = rgb(213, 94, 0);
        p.dropped = rgb(204, 121, 167);
        p.capacity = light ? rgb(0, 0, 0) : rgb(240, 228, 66);
        p.mean = light ? rgb(0, 120, 90) : rgb(0, 190, 140);
    } else {
        p.bar = rgb(31, 119, 180);
        p.bar_hot = rgb(214, 39, 40);
        p.dropped = rgb(148, 103, 189);
        p.capacity = light ? rgb(0, 0, 0) : rgb(255, 200, 40);
        p.mean = rgb(44, 160, 44);
    }
    const bool hc = look.theme == ThemeKind::HighContrast;
    p.text = light ? rgb(0, 0, 0) : rgb(230, 232, 236);
    p.text_dim = light ? (hc ? rgb(50, 50, 50) : rgb(90, 90, 90)) : rgb(150, 155, 165);
    p.axis = light ? rgb(0, 0, 0) : rgb(170, 175, 185);
    p.grid = light ? rgb(0, 0, 0, hc ? 60 : 35) : rgb(255, 255, 255, 28);
    p.band = light ? rgb(0, 0, 0, 14) : rgb(255, 255, 255, 12);
    p.panel = light ? rgb(245, 245, 245) : rgb(22, 24, 28);
    p.ok = light ? rgb(0, 120, 80) : rgb(0, 190, 130);
    p.bad = light ? rgb(190, 60, 0) : rgb(240, 110, 40);
    p.warn = light ? rgb(160, 110, 0) : rgb(230, 159, 0);
    p.prov_gpu = light ? rgb(0, 130, 90) : rgb(0, 190, 140);
    p.prov_cpu = light ? rgb(0, 100, 170) : rgb(86, 180, 233);
    p.prov_emulated = light ? rgb(180, 110, 0) : rgb(230, 159, 0);
    p.prov_modeled = light ? rgb(170, 70, 130) : rgb(214, 140, 185);
    return p;
}

ImU32 provenance_color(const Palette& pal, demos::Provenance p) {
    switch (p) {
        case demos::Provenance::MeasuredGpu:
            return pal.prov_gpu;
        case demos::Provenance::MeasuredCpu:
            return pal.prov_cpu;
        case demos::Provenance::Emulated:
            return pal.prov_emulated;
        case demos::Provenance::Modeled:
            return pal.prov_modeled;
    }
    return pal.text;
}

const char* provenance_help(demos::Provenance p) {
    switch (p) {
        case demos::Provenance::MeasuredGpu:
            return "measured-gpu: timed on this machine's GPU with CUDA events (median of the repeats).";
        case demos::Provenance::MeasuredCpu:
            return "measured-cpu: computed or timed by the CPU reference on this machine. Counts (loads, bytes) are "
                   "exact; times are CPU times and say nothing about a GPU.";
        case demos::Provenance::Emulated:
            return "emulated: several ranks played by one device; copies stand in for the links, so link times are "
                   "not those of a real network.";
        case demos::Provenance::Modeled:
            return "modeled: computed by a formula or the pipeline simulator, not measured. Drawn hatched or as a "
                   "ghost so it is never mistaken for a measurement.";
    }
    return "";
}

void provenance_badge(const Palette& pal, demos::Provenance p) {
    const char* name = demos::provenance_name(p);
    ImU32 col = provenance_color(pal, p);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    ImVec2 ts = ImGui::CalcTextSize(name);
    ImVec2 pad(4, 1);
    ImVec2 pos = ImGui::GetCursorScreenPos();
    float y_off = (ImGui::GetFrameHeight() - ts.y - 2 * pad.y) * 0.5f;
    if (y_off < 0) y_off = 0;
    ImVec2 a(pos.x, pos.y + y_off), b(pos.x + ts.x + 2 * pad.x, pos.y + y_off + ts.y + 2 * pad.y);
    dl->AddRectFilled(a, b, with_alpha(col, 0.18f), 3);
    if (p == demos::Provenance::Modeled) {
        // Dashed outline: modelled numbers look different from measured ones everywhere.
        for (float x = a.x; x < b.x; x += 6) {
            dl->AddLine(ImVec2(x, a.y), ImVec2(std::min(x + 3, b.x), a.y), col);
            dl->AddLine(ImVec2(x, b.y), ImVec2(std::min(x + 3, b.x), b.y), col);
        }
    } else {
        dl->AddRect(a, b, col, 3);
    }
    dl->AddText(ImVec2(a.x + pad.x, a.y + pad.y), col, name);
    ImGui::Dummy(ImVec2(b.x - a.x, ImGui::GetFrameHeight()));
    if (ImGui::IsItemHovered()) wrapped_tooltip(provenance_help(p));
}

void source_badge(const Palette& pal, demos::lesson::Source s) {
    switch (s) {
        case demos::lesson::Source::Input:
            ImGui::TextDisabled("[input]");
            return;
        case demos::lesson::Source::MeasuredGpu:
            return provenance_badge(pal, demos::Provenance::MeasuredGpu);
        case demos::lesson::Source::MeasuredCpu:
            return provenance_badge(pal, demos::Provenance::MeasuredCpu);
        case demos::lesson::Source::Emulated:
            return provenance_badge(pal, demos::Provenance::Emulated);
        case demos::lesson::Source::Modeled:
            return provenance_badge(pal, demos::Provenance::Modeled);
    }
}

void wrapped_tooltip(const char* text) {
    ImGui::BeginTooltip();
    ImGui::PushTextWrapPos(ImGui::GetFontSize() * 32.0f);
    ImGui::TextUnformatted(text);
    ImGui::PopTextWrapPos();
    ImGui::EndTooltip();
}

void help_marker(const char* text) {
    ImGui::SameLine();
    ImGui::TextDisabled("(?)");
    if (ImGui::IsItemHovered()) wrapped_tooltip(text);
}

ImU32 with_alpha(ImU32 c, float a) {
    ImVec4 v = ImGui::ColorConvertU32ToFloat4(c);
    v.w *= a;
    return ImGui::ColorConvertFloat4ToU32(v);
}

ImU32 mix(ImU32 a, ImU32 b, float t) {
    ImVec4 x = ImGui::ColorConvertU32ToFloat4(a), y = ImGui::ColorConvertU32ToFloat4(b);
    return ImGui::ColorConvertFloat4ToU32(
        ImVec4(x.x + (y.x - x.x) * t, x.y + (y.y - x.y) * t, x.z + (y.z - x.z) * t, x.w + (y.w - x.w) * t));
}

namespace {
Skin& skin_store() {
    static Skin s;
    return s;
}
}  // namespace

const Skin& skin() { return skin_store(); }

bool update_skin(const Look& want, bool presenter) {
    Skin& s = skin_store();
    if (s.built && s.presenter == presenter && s.look.theme == want.theme && s.look.palette == want.palette &&
        std::fabs(s.look.ui_scale - want.ui_scale) < 1e-3f)
        return false;
    build_fonts(&s.fonts, want.ui_scale);
    Look look = want;
    if (presenter) {
        look.theme = ThemeKind::HighContrast;
        look.palette = PaletteKind::OkabeIto;
    }
    s.pal = apply_look(look);
    s.look = want;
    s.presenter = presenter;
    s.built = true;
    return true;
}

}  // namespace moelab_gui
