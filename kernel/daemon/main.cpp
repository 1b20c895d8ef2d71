// shoald — the shoal daemon.
//
//   shoald [run]      run as configured until SIGTERM/SIGINT
//   shoald plugins    load the plugin directory and report each plugin file
//   shoald migrate    apply pending store migrations and exit
#include <boost/program_options.hpp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "common/Error.hpp"
#include "daemon/Config.hpp"
#include "daemon/Daemon.hpp"
#include "daemon/Logging.hpp"
#include "shoal/BuildInfo.hpp"
#include <shoal/abi.h>

namespace po = boost::program_options;
using namespace shoal;

namespace {

const char* kUsage =
    "usage: shoald [run|plugins|migrate] [options]\n"
    "  run       run the daemon until SIGTERM or SIGINT (default)\n"
    "  plugins   load every plugin in the plugin directory and report each file\n"
    "            (exit 0: all loaded, 3: some refused)\n"
    "  migrate   apply pending store migrations and exit\n";

// Overwrites `secret` where it stands in argv ("--join TOKEN" or "--join=TOKEN"), so that
// ps and /proc/PID/cmdline, which anyone on the host can read, stop showing it once it has
// been read. Boost's parser keeps its own copy, so nothing still needs the original.
void hideArgument(int argc, char** argv, const std::string& secret) {
  if (secret.empty()) return;
  for (int i = 1; i < argc; ++i) {
    const std::size_t length = std::strlen(argv[i]);
    if (length < secret.size()) continue;
    char* tail = argv[i] + length - secret.size();
    const bool whole = tail == argv[i];
    if (std::strcmp(tail, secret.c_str()) == 0 && (whole || tail[-1] == '='))
      std::memset(tail, 'x', secret.size());
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Signals are taken by sigwait in the main thread: block them before any thread starts,
  // so every thread inherits the mask and none of them is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  po::options_description options("options");
  std::string configFile;
  std::vector<std::string> sets;
  options.add_options()
      ("help,h", "show this help")
      ("version", "print shoald's version and plugin ABI version")
      ("config,c", po::value(&configFile), "configuration file (default /etc/shoal/shoald.conf)")
      ("role", po::value<std::string>(), "override shoald.role")
      ("data-dir", po::value<std::string>(), "override shoald.data_dir")
      ("plugin-dir", po::value<std::string>(), "override shoald.plugin_dir")
      ("store", po::value<std::string>(), "override shoald.store (sqlite | sqlite:/path | mysql://...)")
      ("log-level", po::value<std::string>(), "override shoald.log_level")
      ("set", po::value(&sets), "override any setting: SECTION.KEY=VALUE (repeatable)")
      ("join", po::value<std::string>(), "node: enrol with this join token (shoalctl node join-token); "
                                         "hidden from ps once read")
      ("join-token-file", po::value<std::string>(), "node: enrol with the join token in this file "
                                                    "(override shoald.join_token_file)")
      ("advertise-address", po::value<std::string>(), "override shoald.advertise_address")
      ("json", "plugins: print one JSON object per plugin file");
  po::options_description hidden;
  std::string command = "run";
  hidden.add_options()("command", po::value(&command));
  po::options_description all;
  all.add(options).add(hidden);
  po::positional_options_description positional;
  positional.add("command", 1);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "shoald: " << e.what() << "\n" << kUsage << options;
    return daemon::kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << kUsage << options;
    return daemon::kExitOk;
  }
  if (vm.count("version")) {
    std::cout << "shoald " << build::kVersion << " (plugin ABI " << SHOAL_ABI_VERSION_MAJOR << "."
              << SHOAL_ABI_VERSION_MINOR << ")\n";
    return daemon::kExitOk;
  }
  if (command != "run" && command != "plugins" && command != "migrate") {
    std::cerr << "shoald: unknown command '" << command << "'\n" << kUsage;
    return daemon::kExitUsage;
  }

  std::map<std::string, std::string> overrides;
  const std::pair<const char*, const char*> flags[] = {{"role", "shoald.role"},
                                                       {"data-dir", "shoald.data_dir"},
                                                       {"plugin-dir", "shoald.plugin_dir"},
                                                       {"store", "shoald.store"},
                                                       {"log-level", "shoald.log_level"},
                                                       {"advertise-address", "shoald.advertise_address"},
                                                       {"join-token-file", "shoald.join_token_file"}};
  for (const auto& set : sets) {
    auto eq = set.find('=');
    if (eq == std::string::npos) {
      std::cerr << "shoald: --set " << set << ": expected SECTION.KEY=VALUE\n";
      return daemon::kExitUsage;
    }
    overrides[set.substr(0, eq)] = set.substr(eq + 1);
  }
  for (const auto& [flag, key] : flags)
    if (vm.count(flag)) overrides[key] = vm[flag].as<std::string>();

  daemon::LoadedConfig config;
  try {
    const bool explicitFile = vm.count("config") > 0;
    config = daemon::loadConfig(explicitFile ? configFile : build::kDefaultConfigPath,
                                explicitFile, overrides);
    // The token opens the cluster until it is used or expires: keep it out of the
    // environment of every program the daemon runs, and out of ps.
    // The variable's text is overwritten in place too: /proc/PID/environ shows the
    // environment block the process started with, not the variables left.
    char* fromEnvironment = std::getenv("SHOAL_JOIN_TOKEN");
    std::string environmentToken = fromEnvironment ? fromEnvironment : "";
    if (fromEnvironment) std::memset(fromEnvironment, 'x', environmentToken.size());
    ::unsetenv("SHOAL_JOIN_TOKEN");
    if (vm.count("join")) {
      config.joinToken = vm["join"].as<std::string>();
      hideArgument(argc, argv, config.joinToken);
      if (config.settings.role != "node") {
        std::cerr << "shoald: --join is for the node role (add --role node)\n";
        return daemon::kExitUsage;
      }
      if (!config.settings.joinTokenFile.empty()) {
        std::cerr << "shoald: give the join token once: --join or a join token file, not both\n";
        return daemon::kExitUsage;
      }
      config.joinTokenSource = "--join";
    } else if (!config.settings.joinTokenFile.empty()) {
      config.joinToken = daemon::readJoinTokenFile(config.settings.joinTokenFile);
      config.joinTokenSource = config.settings.joinTokenFile.string();
    } else if (!environmentToken.empty() && config.settings.role == "node") {
      config.joinToken = environmentToken;
      config.joinTokenSource = "SHOAL_JOIN_TOKEN";
    }
  } catch (const Error& e) {
    std::cerr << "shoald: " << e.what() << "\n";
    return daemon::kExitUsage;
  }
  // `plugins` prints its report on stdout; keep the log for problems only unless asked.
  daemon::setupLogging(command == "plugins" && !overrides.count("shoald.log_level")
                           ? "warning"
                           : config.settings.logLevel);

  try {
    if (command == "plugins") return daemon::listPlugins(config, vm.count("json") > 0, std::cout);
    if (command == "migrate") return daemon::migrateStore(config, std::cout);
    return daemon::runDaemon(config);
  } catch (const Error& e) {
    std::cerr << "shoald: " << e.what() << "\n";
    return e.code() == ErrorCode::InvalidArgument ? daemon::kExitUsage : daemon::kExitFailure;
  } catch (const std::exception& e) {
    std::cerr << "shoald: " << e.what() << "\n";
    return daemon::kExitFailure;
  }
}
