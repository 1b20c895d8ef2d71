#include "FirewallMarks.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

extern char** environ;

namespace shoal::lvs {
namespace {

constexpr const char* kTable = "inet shoal_lvs";

// Canonical text of an IP address, or DataplaneError.
std::string canonical(const std::string& address, int& family) {
  unsigned char buffer[16];
  char text[INET6_ADDRSTRLEN];
  for (int f : {AF_INET, AF_INET6}) {
    if (inet_pton(f, address.c_str(), buffer) == 1 && inet_ntop(f, buffer, text, sizeof text)) {
      family = f;
      return text;
    }
  }
  throw DataplaneError("listener address '" + address + "' is not an IP address");
}

// Runs `argv` with stdout+stderr captured; returns the exit status (-1 when it could not run).
int run(const std::vector<std::string>& argv, std::string& output) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw DataplaneError(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (spawned != 0) {
    ::close(fds[0]);
    output = std::strerror(spawned);
    return -1;
  }
  char buffer[1024];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) output.append(buffer, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

std::string firewallMarkRuleset(const std::vector<VirtualService>& table) {
  std::ostringstream rules;
  for (const auto& service : table) {
    if (service.fwmark == 0) continue;
    char mark[16];
    std::snprintf(mark, sizeof mark, "0x%08x", service.fwmark);
    for (const auto& listener : service.listeners) {
      int family = 0;
      const auto address = canonical(listener.address, family);
      rules << "    " << (family == AF_INET6 ? "ip6" : "ip") << " daddr " << address << ' '
            << protocolName(service.protocol) << " dport " << listener.port << " meta mark set " << mark << '\n';
    }
  }
  // "add table" then "delete table" makes the delete succeed whether or not it existed; the
  // whole script is one transaction.
  std::string script = std::string("add table ") + kTable + "\ndelete table " + kTable + "\n";
  if (rules.str().empty()) return script;
  return script + "table " + kTable + " {\n  chain prerouting {\n" +
         "    type filter hook prerouting priority mangle; policy accept;\n" + rules.str() + "  }\n}\n";
}

FirewallMarkedDataplane::FirewallMarkedDataplane(std::unique_ptr<Dataplane> inner, std::string nft)
    : inner_(std::move(inner)), nft_(std::move(nft)) {}

ApplyReport FirewallMarkedDataplane::apply(const std::vector<VirtualService>& desired) {
  const auto report = inner_->apply(desired);
  bool marks = false;
  for (const auto& s : desired) marks = marks || s.fwmark != 0;
  if (!marks && !marksInstalled_) return report;
  const std::string script = firewallMarkRuleset(desired);
  char path[] = "/tmp/shoal-lvs-nft-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) throw DataplaneError(std::string("cannot write the nft script: ") + std::strerror(errno));
  const bool written = ::write(fd, script.data(), script.size()) == static_cast<ssize_t>(script.size());
  ::close(fd);
  std::string output;
  const int status = written ? run({nft_, "-f", path}, output) : -1;
  ::unlink(path);
  if (!written) throw DataplaneError("cannot write the nft script");
  if (status != 0)
    throw DataplaneError(status == -1 && !output.empty() && output.find("No such file") != std::string::npos
                             ? "firewall-mark services need nftables to mark their packets: cannot run " + nft_ +
                                   " (" + output + "); install nftables"
                             : "nft refused the firewall marks (exit " + std::to_string(status) + "): " + output);
  marksInstalled_ = marks;
  return report;
}

}  // namespace shoal::lvs
