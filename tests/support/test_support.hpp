// Helpers the test suites share: run a command line and capture its output and exit code, find a tool on
// PATH, and start a private Xvfb on a free display for the window tests.
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

namespace moelab_test {

struct Shell {
    int rc = -1;
    std::string out;
};

// Runs a shell command line and captures stdout and stderr together.
inline Shell shell(const std::string& cmd) {
    Shell r;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf;
    std::size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    int st = pclose(p);
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

inline std::string find_on_path(const std::string& tool) {
    const char* path = std::getenv("PATH");
    std::stringstream ss(path ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(ss, dir, ':');) {
        std::string p = dir + "/" + tool;
        if (access(p.c_str(), X_OK) == 0) return p;
    }
    return "";
}

// Our own X server on a free display: Xvfb picks the number and reports it through -displayfd, so parallel
// tests never collide. ok() is false, with why(), when Xvfb is missing or does not start.
class Xvfb {
  public:
    explicit Xvfb(const std::string& screen = "1600x1000x24") {
        std::string xvfb = find_on_path("Xvfb");
        if (xvfb.empty()) {
            why_ = "Xvfb not found on PATH (install xvfb, e.g. with scripts/setup)";
            return;
        }
        int fds[2];
        if (pipe(fds) != 0) {
            why_ = "pipe failed";
            return;
        }
        pid_ = fork();
        if (pid_ == 0) {
            close(fds[0]);
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            dup2(devnull, 2);
            std::string fd = std::to_string(fds[1]);
            execl(xvfb.c_str(), "Xvfb", "-displayfd", fd.c_str(), "-screen", "0", screen.c_str(), "-nolisten", "tcp",
                  static_cast<char*>(nullptr));
            _exit(127);
        }
        close(fds[1]);
        std::string num;
        pollfd pfd{fds[0], POLLIN, 0};
        while (poll(&pfd, 1, 15000) > 0) {
            char c;
            if (read(fds[0], &c, 1) != 1 || c == '\n') break;
            num += c;
        }
        close(fds[0]);
        if (num.empty()) {
            why_ = "Xvfb did not start within 15 s";
            return;
        }
        display_ = ":" + num;
    }
    ~Xvfb() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            waitpid(pid_, nullptr, 0);
        }
    }
    Xvfb(const Xvfb&) = delete;
    Xvfb& operator=(const Xvfb&) = delete;
    bool ok() const { return !display_.empty(); }
    const std::string& why() const { return why_; }
    const std::string& display() const { return display_; }

  private:
    pid_t pid_ = -1;
    std::string display_, why_;
};

}  // namespace moelab_test
