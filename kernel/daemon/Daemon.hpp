#pragma once
// shoald's commands. Each returns the process exit code.
#include <iosfwd>

#include "daemon/Config.hpp"

namespace shoal::daemon {

// Exit codes shared by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;        // could not do its job (store unreachable, ...)
inline constexpr int kExitUsage = 2;          // bad command line or configuration
inline constexpr int kExitPluginsRefused = 3; // `plugins`: listed, but some were refused

// Runs the daemon until SIGTERM or SIGINT: opens and migrates the store, loads plugins,
// then waits. SIGTERM, SIGINT and SIGHUP must already be blocked in every thread.
int runDaemon(const LoadedConfig& config);

// Loads every plugin of the plugin directory (without a store) and prints one line per
// plugin file: JSON objects with --json, readable text otherwise.
int listPlugins(const LoadedConfig& config, bool json, std::ostream& out);

// Opens the store, applies pending migrations and reports the schema version.
int migrateStore(const LoadedConfig& config, std::ostream& out);

}  // namespace shoal::daemon
