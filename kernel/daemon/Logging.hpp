#pragma once
#include <string>

namespace shoal::daemon {

// Sends every logger's output to stderr as "time level source: text" at `level`
// (error | warning | information | debug). Under systemd, stderr goes to the journal.
void setupLogging(const std::string& level);

}  // namespace shoal::daemon
