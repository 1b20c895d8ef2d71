#include "common/Platform.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>

namespace shoal {
namespace {
std::string unquote(std::string value) {
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
    return value.substr(1, value.size() - 2);
  return value;
}
}  // namespace

PlatformFacts detectPlatform(const std::string& osReleasePath) {
  PlatformFacts facts{"unknown", "unknown", "unknown", "unknown"};
  std::ifstream in(osReleasePath);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = unquote(line.substr(eq + 1));
    if (key == "ID" && !value.empty()) facts.osId = value;
    if (key == "VERSION_ID" && !value.empty()) facts.osVersion = value;
  }
  struct utsname uts {};
  if (::uname(&uts) == 0) {
    facts.arch = uts.machine;
    facts.hostname = uts.nodename;
  }
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0 && host[0] != '\0') facts.hostname = host;
  return facts;
}

}  // namespace shoal
