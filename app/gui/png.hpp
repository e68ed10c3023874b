// Reading pixels back from the current GL framebuffer and writing PNG files (stb_image_write from libstb).
// Shared by the window (Save PNG, --screenshot) and the windowless snapshot.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moelab_gui {

// Reads the rectangle (x, y from the top-left, in framebuffer pixels) of the bound read framebuffer as RGBA rows,
// top row first.
std::vector<std::uint8_t> read_pixels(int x, int y, int w, int h, int fb_height);
// Writes RGBA pixels (top row first) as a PNG; the file appears atomically. Returns false with `err` set.
bool write_png(const std::string& path, const std::vector<std::uint8_t>& rgba, int w, int h, std::string* err);

}  // namespace moelab_gui

namespace moelab_gui {
// GL_RENDERER and GL_VERSION of the current context, for reports ("llvmpipe (LLVM 15…), 4.5 (Core Profile) Mesa…").
std::string gl_renderer();
}  // namespace moelab_gui
