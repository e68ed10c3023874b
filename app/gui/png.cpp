// glReadPixels → flip → stb_image_write PNG, written to a temporary name and renamed into place.
// Uses only GL 1.1 entry points, which every libGL / libOpenGL exports.
#include "app/gui/png.hpp"

#include <GL/gl.h>
#include <stb_image_write.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace moelab_gui {

std::vector<std::uint8_t> read_pixels(int x, int y, int w, int h, int fb_height) {
    std::vector<std::uint8_t> px(static_cast<std::size_t>(w) * h * 4);
    if (w <= 0 || h <= 0) return px;
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadPixels(x, fb_height - y - h, w, h, GL_RGBA, GL_UNSIGNED_BYTE, px.data());
    // GL's rows go bottom-up; PNG's top-down.
    const std::size_t row = static_cast<std::size_t>(w) * 4;
    std::vector<std::uint8_t> tmp(row);
    for (int i = 0; i < h / 2; ++i) {
        std::uint8_t* a = px.data() + row * i;
        std::uint8_t* b = px.data() + row * (h - 1 - i);
        std::memcpy(tmp.data(), a, row);
        std::memcpy(a, b, row);
        std::memcpy(b, tmp.data(), row);
    }
    for (std::size_t i = 3; i < px.size(); i += 4) px[i] = 255;  // the framebuffer's alpha is not the picture's
    return px;
}

bool write_png(const std::string& path, const std::vector<std::uint8_t>& rgba, int w, int h, std::string* err) {
    if (w <= 0 || h <= 0 || rgba.size() < static_cast<std::size_t>(w) * h * 4) {
        if (err) *err = "nothing to write";
        return false;
    }
    std::string tmp = path + ".tmp";
    if (!stbi_write_png(tmp.c_str(), w, h, 4, rgba.data(), w * 4)) {
        if (err) *err = "cannot write " + tmp + ": " + std::strerror(errno);
        return false;
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        if (err) *err = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
        std::remove(tmp.c_str());
        return false;
    }
    return true;
}

}  // namespace moelab_gui

namespace moelab_gui {
std::string gl_renderer() {
    const char* r = reinterpret_cast<const char*>(glGetString(GL_RENDERER));
    const char* v = reinterpret_cast<const char*>(glGetString(GL_VERSION));
    return std::string(r ? r : "?") + ", GL " + (v ? v : "?");
}
}  // namespace moelab_gui
