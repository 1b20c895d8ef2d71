#pragma once
// What this machine is, as enrolment reports it: the cluster requires one OS and one CPU
// architecture across all its servers.
#include <string>

namespace shoal {

struct PlatformFacts {
  std::string hostname;
  std::string osId;       // ID= of /etc/os-release, e.g. "debian", "rocky"
  std::string osVersion;  // VERSION_ID= of /etc/os-release, e.g. "12", "9.4"
  std::string arch;       // uname -m, e.g. "x86_64"
};

// Reads /etc/os-release (or `osReleasePath`) and uname. Missing fields read as "unknown".
PlatformFacts detectPlatform(const std::string& osReleasePath = "/etc/os-release");

}  // namespace shoal
