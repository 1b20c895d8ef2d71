#pragma once
// Running a program by argv (restart nginx, reload postfix, useradd, lego...): never through
// a shell, stdin from /dev/null, stdout and stderr together into one pipe of which the last
// 8 KiB are kept, with a time limit past which the program is killed. One runner for the
// plugins and the kernel. Header-only; needs only libc (POSIX spawn) and the C++ library.
//
// Not async-signal-safe and not meant for a forked child; safe to call from several threads
// at once (each call has its own pipe and child).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace shoal {

// How a program ended, and what it wrote.
struct ProgramResult {
  static constexpr std::size_t kKeptOutputBytes = 8192;

  int exitCode = -1;       // -1 when killed by a signal (see `signal`) or timed out
  int signal = 0;          // the signal that ended it, 0 when it exited
  bool timedOut = false;   // killed (SIGKILL) because it outlived its limit
  std::string output;      // the last kKeptOutputBytes of stdout+stderr
  bool succeeded() const { return exitCode == 0 && !timedOut; }
  std::string describe() const {
    if (timedOut) return "timed out";
    if (signal != 0) return "killed by signal " + std::to_string(signal);
    return "exited with status " + std::to_string(exitCode);
  }
};

// Splits a configured command line on blanks ("systemctl restart nginx"). No quoting, no
// expansion: what is written is what runs. Throws std::invalid_argument on an empty line or
// on characters a shell would have interpreted, so nobody mistakes it for a shell line.
inline std::vector<std::string> splitCommand(const std::string& line) {
  if (line.find_first_of("|;&$`<>\"'\\*?(){}\n\r") != std::string::npos)
    throw std::invalid_argument("'" + line + "' contains shell syntax; write the program and its arguments only");
  std::vector<std::string> argv;
  std::istringstream in(line);
  for (std::string word; in >> word;) argv.push_back(word);
  if (argv.empty()) throw std::invalid_argument("the command is empty");
  return argv;
}

namespace detail {

// `envp` is the child's whole environment (NULL-terminated), borrowed for the call.
inline ProgramResult runProgramWithEnvironment(const std::vector<std::string>& argv, std::chrono::milliseconds limit,
                                               char* const* envp) {
  if (argv.empty() || argv.front().empty()) throw std::invalid_argument("no program to run: argv is empty");
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipeFds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipeFds[1], 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  // Nothing of the caller's (API connections, probe sockets, the store) leaks into the
  // program or into a daemon it leaves running.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipeFds[1]);
  if (spawned != 0) {
    ::close(pipeFds[0]);
    throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(spawned));
  }
  ProgramResult result;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  char buffer[4096];
  auto keep = [&](ssize_t n) {
    result.output.append(buffer, static_cast<std::size_t>(n));
    if (result.output.size() > ProgramResult::kKeptOutputBytes)
      result.output.erase(0, result.output.size() - ProgramResult::kKeptOutputBytes);
  };
  ::fcntl(pipeFds[0], F_SETFL, O_NONBLOCK);
  int status = 0;
  bool exited = false;
  bool pipeOpen = true;
  // The program may leave a daemon behind that keeps the pipe open (nginx keeps stderr):
  // the program's own exit, not the pipe's end, says when it is done.
  while (!exited) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timedOut = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (pipeOpen) {
      pollfd p{pipeFds[0], POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 50)));
      ssize_t n = 0;
      while ((n = ::read(pipeFds[0], buffer, sizeof buffer)) > 0) keep(n);
      if (n == 0) pipeOpen = false;  // every writer closed it; -1 (EAGAIN) = nothing yet
    } else {
      ::usleep(20000);
    }
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
  }
  for (ssize_t n; (n = ::read(pipeFds[0], buffer, sizeof buffer)) > 0;) keep(n);
  ::close(pipeFds[0]);
  if (!exited) {
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (WIFEXITED(status)) result.exitCode = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

}  // namespace detail

// Runs `argv` (argv[0] looked up in the caller's PATH) with `environment` ("NAME=value"
// entries) as its whole environment, and waits up to `limit`; kills it (SIGKILL) past that.
// Throws std::invalid_argument on an empty argv, std::runtime_error when the program cannot
// be started at all (not found, not executable); a program that starts and fails is a
// ProgramResult, not an exception.
inline ProgramResult runProgram(const std::vector<std::string>& argv, std::chrono::milliseconds limit,
                                const std::vector<std::string>& environment) {
  std::vector<char*> envp;
  envp.reserve(environment.size() + 1);
  for (const auto& entry : environment) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);
  return detail::runProgramWithEnvironment(argv, limit, envp.data());
}

// As above, with the caller's own environment.
inline ProgramResult runProgram(const std::vector<std::string>& argv, std::chrono::milliseconds limit) {
  return detail::runProgramWithEnvironment(argv, limit, environ);
}

}  // namespace shoal
