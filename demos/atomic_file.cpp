// Writing a file through a temporary beside it and a rename: readers see the old file or the new one,
// never half of one, even when the writer crashes. Reading only regular files of bounded size. And a cheap
// structural check of TOML text that bounds its nesting before the recursive parser runs.
#include "demos/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/common/error.hpp"

namespace demos {

namespace {

std::string dir_of(const std::string& p) {
    auto slash = p.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return p.substr(0, slash);
}

std::string base_of(const std::string& p) {
    auto slash = p.rfind('/');
    return slash == std::string::npos ? p : p.substr(slash + 1);
}

// Follows symlinks (dangling ones too) so the rename replaces the target, not the link. At most 40 hops.
std::string resolve_links(std::string path) {
    for (int hop = 0; hop < 40; ++hop) {
        struct stat st;
        if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
        std::vector<char> buf(PATH_MAX + 1);
        ssize_t n = ::readlink(path.c_str(), buf.data(), PATH_MAX);
        if (n <= 0) return path;
        std::string target(buf.data(), static_cast<std::size_t>(n));
        path = target[0] == '/' ? target : dir_of(path) + "/" + target;
    }
    return path;
}

bool write_all(int fd, const std::string& content) {
    std::size_t at = 0;
    while (at < content.size()) {
        ssize_t n = ::write(fd, content.data() + at, content.size() - at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        at += static_cast<std::size_t>(n);
    }
    return true;
}

const char* kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a folder";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a plain file";
}

}  // namespace

bool write_file_atomic(const std::string& path, const std::string& content, std::string* err) {
    auto fail = [&](const std::string& what) {
        if (err) *err = what;
        return false;
    };
    if (path.empty()) return fail("an empty file name");
    struct stat st;
    bool exists = ::stat(path.c_str(), &st) == 0;  // follows links
    if (exists && S_ISDIR(st.st_mode)) return fail(path + " is a folder; give a file name");
    if (exists && !S_ISREG(st.st_mode)) {
        // /dev/stdout, a FIFO or a terminal: no rename is possible, so write straight through.
        int fd = ::open(path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) return fail("cannot write " + path + ": " + std::strerror(errno));
        bool ok = write_all(fd, content);
        int e = errno;
        ::close(fd);
        return ok ? true : fail("cannot write " + path + ": " + std::strerror(e));
    }
    // A symlink is kept and its target replaced.
    std::string target = resolve_links(path);
    remove_stale_temps(target);
    std::string tmp = target + ".tmp." + std::to_string(::getpid());
    ::unlink(tmp.c_str());  // our own leftover, if any
    mode_t mode = exists ? (st.st_mode & 07777) : 0666;
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) return fail("cannot write " + tmp + ": " + std::strerror(errno));
    if (exists) (void)::fchmod(fd, mode);
    bool ok = write_all(fd, content);
    int e = errno;
    if (::close(fd) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok) {
        ::unlink(tmp.c_str());
        return fail("cannot write " + tmp + ": " + std::strerror(e));
    }
    if (std::rename(tmp.c_str(), target.c_str()) != 0) {
        e = errno;
        ::unlink(tmp.c_str());
        return fail("cannot rename " + tmp + " to " + target + ": " + std::strerror(e));
    }
    return true;
}

void write_file_atomic(const std::string& path, const std::string& content) {
    std::string err;
    if (!write_file_atomic(path, content, &err)) throw moe::Error(moe::ErrorKind::Runtime, err);
}

int remove_stale_temps(const std::string& path) {
    std::string dir = dir_of(path), prefix = base_of(path) + ".tmp.";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return 0;
    int removed = 0;
    std::vector<std::string> stale;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        std::string pid = name.substr(prefix.size());
        if (pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
        long p = std::strtol(pid.c_str(), nullptr, 10);
        if (p <= 0 || p == ::getpid()) continue;
        if (::kill(static_cast<pid_t>(p), 0) == 0 || errno == EPERM) continue;  // that writer is still running
        stale.push_back(dir + "/" + name);
    }
    ::closedir(d);
    for (auto& s : stale) {
        struct stat st;
        if (::lstat(s.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::unlink(s.c_str()) == 0) ++removed;
    }
    return removed;
}

bool read_regular_file(const std::string& path, std::size_t max_bytes, std::string* out, std::string* err) {
    auto fail = [&](const std::string& what) {
        if (err) *err = what;
        return false;
    };
    // O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer.
    int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return fail(std::string("cannot open (") + std::strerror(errno) + ")");
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        return fail(std::string("cannot read (") + std::strerror(e) + ")");
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return fail(std::string("not a regular file (") + kind_of(st.st_mode) + ")");
    }
    auto too_big = [&](std::size_t n) {
        return fail("is " + std::to_string(n) + " bytes; the limit is " + std::to_string(max_bytes));
    };
    if (static_cast<std::size_t>(st.st_size) > max_bytes) {
        ::close(fd);
        return too_big(static_cast<std::size_t>(st.st_size));
    }
    std::string data;
    data.resize(static_cast<std::size_t>(st.st_size) + 1);
    std::size_t got = 0;
    for (;;) {
        if (got == data.size()) {
            if (data.size() > max_bytes) break;
            data.resize(std::min(max_bytes + 1, data.size() * 2 + 4096));
        }
        ssize_t n = ::read(fd, &data[got], data.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            return fail(std::string("cannot read (") + std::strerror(e) + ")");
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (got > max_bytes) return too_big(got);
    data.resize(got);
    *out = std::move(data);
    return true;
}

std::string toml_limits_problem(const std::string& text, std::size_t max_bytes, int max_depth) {
    if (text.size() > max_bytes)
        return "line 1: the file is " + std::to_string(text.size()) + " bytes; the limit is " +
               std::to_string(max_bytes);
    // A small scanner that knows strings, comments, keys and brackets. The depth of a point is the number of
    // open arrays and inline tables plus the dotted parts of every key that leads to it; a table header's depth
    // is its dotted parts. Over-counting is harmless (the limit is far above real files); under-counting is not.
    struct Level {
        char kind;  // 0: top, '[': array, '{': inline table
        int key_dots;
    };
    std::vector<Level> levels{{0, 0}};
    bool key_mode = true, header = false;
    int header_dots = 0, line = 1, key_sum = 0;
    std::size_t i = 0, n = text.size();
    auto too_deep = [&]() {
        return "line " + std::to_string(line) + ": nested more than " + std::to_string(max_depth) +
               " levels deep (tables, dotted keys, arrays)";
    };
    auto depth = [&]() { return static_cast<int>(levels.size()) - 1 + key_sum; };
    while (i < n) {
        char c = text[i];
        if (c == '\n') {
            ++line;
            ++i;
            header = false;
            if (levels.size() == 1) {
                key_sum -= levels[0].key_dots;
                levels[0].key_dots = 0;
                key_mode = true;
            }
            continue;
        }
        if (c == '#') {
            while (i < n && text[i] != '\n') ++i;
            continue;
        }
        if (c == '"' || c == '\'') {
            bool multi = text.compare(i, 3, std::string(3, c)) == 0;
            i += multi ? 3 : 1;
            while (i < n) {
                if (c == '"' && text[i] == '\\') {
                    if (i + 1 < n && text[i + 1] == '\n') ++line;
                    i += 2;
                    continue;
                }
                if (text[i] == '\n') {
                    if (!multi) break;  // an unterminated string: the parser reports it
                    ++line;
                }
                if (text[i] == c && (!multi || text.compare(i, 3, std::string(3, c)) == 0)) {
                    i += multi ? 3 : 1;
                    while (multi && i < n && text[i] == c) ++i;  // """a"""" ends with a quote inside
                    break;
                }
                ++i;
            }
            continue;
        }
        if (header) {
            if (c == '.' && ++header_dots + 1 > max_depth) return too_deep();
            if (c == ']') header = false;
            ++i;
            continue;
        }
        if (key_mode) {
            if (c == '[' && levels.size() == 1 && levels[0].key_dots == 0) {
                header = true;
                header_dots = 0;
                ++i;
                continue;
            }
            if (c == '.') {
                ++levels.back().key_dots;
                ++key_sum;
                if (depth() > max_depth) return too_deep();
            } else if (c == '=') {
                key_mode = false;
            } else if (c == '}' && levels.back().kind == '{') {
                key_sum -= levels.back().key_dots;
                levels.pop_back();
                key_mode = false;
            }
            ++i;
            continue;
        }
        // A value.
        if (c == '[' || c == '{') {
            levels.push_back({c, 0});
            if (depth() > max_depth) return too_deep();
            key_mode = c == '{';
        } else if ((c == ']' && levels.back().kind == '[') || (c == '}' && levels.back().kind == '{')) {
            key_sum -= levels.back().key_dots;
            levels.pop_back();
            key_mode = false;
        } else if (c == ',' && levels.back().kind == '{') {
            key_sum -= levels.back().key_dots;
            levels.back().key_dots = 0;
            key_mode = true;
        }
        ++i;
    }
    return "";
}

}  // namespace demos
