#pragma once
// shoald's configuration: an INI file (default /etc/shoal/shoald.conf) under command-line
// overrides. Section [shoald] holds the daemon's settings; section [plugin.NAME] holds the
// values plugin NAME reads through callback_config_get.
#include <Poco/AutoPtr.h>
#include <Poco/Util/LayeredConfiguration.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace shoal::daemon {

struct DaemonSettings {
  std::string role;                  // "manager" or "node"
  std::filesystem::path dataDir;     // absolute
  std::filesystem::path pluginDir;   // absolute
  std::string store;                 // connection setting, see store/Store.hpp
  std::string logLevel;              // error | warning | information | debug
  std::filesystem::path configFile;  // the file read; empty when none was
  // Manager: where the HTTPS API listens, and the address nodes use to reach it (put in join
  // tokens and the server certificate; empty = this host's name).
  std::string apiListen;             // "0.0.0.0"
  std::uint16_t apiPort = 7443;
  std::string advertiseAddress;
  // How long a node may hold a claimed delivery before it is offered again.
  int queueLeaseSeconds = 60;
  // Manager: also be a node of its own cluster (AppServer0), running the node agent in-process.
  bool appServer = false;
  // Manager: the panel's static files; a panel session's idle timeout; where /metrics is also
  // served over plain HTTP without credentials (metrics_listen = ADDRESS:PORT; port 0 = only on
  // the API, authenticated); seconds between the points of the balancer's RRD files.
  std::filesystem::path webDir;
  int panelIdleTimeoutMinutes = 30;
  std::string metricsAddress;
  std::uint16_t metricsPort = 0;
  int statsStepSeconds = 10;
  // Manager: how many RRD series one plugin may have (what its nodes can make it create).
  int statsMaxSeriesPerPlugin = 10000;
  // Manager: audit rows older than this many days are removed, and the oldest beyond
  // auditMaxRows.
  int auditRetentionDays = 90;
  int auditMaxRows = 1000000;
  // Manager: hosting accounts get uid = accountUidBase + a counter that never goes back; their
  // homes are storageRoot/<name> on the shared storage.
  int accountUidBase = 20000;
  std::string storageRoot = "/srv/shoal";
  // Manager: certificates from an ACME server for every account's domains (empty directory:
  // none; the cluster CA's only). http-01 challenges are written under acmeWebroot, which every
  // web node serves at /.well-known/acme-challenge/ ([plugin.http] acme_challenge_root).
  std::string acmeDirectory, acmeEmail, acmeCaFile, acmeWebroot;
  int acmeRenewDays = 30;
  int acmeCheckSeconds = 3600;
  // Node: a file holding the join token (first enrolment only; read when the node starts).
  std::filesystem::path joinTokenFile;
};

struct LoadedConfig {
  Poco::AutoPtr<Poco::Util::LayeredConfiguration> layers;  // file + overrides
  DaemonSettings settings;
  // Node: the join token, from --join TOKEN, from shoald.join_token_file (--join-token-file)
  // or from the environment variable SHOAL_JOIN_TOKEN, in that order; never from the
  // configuration file itself. `joinTokenSource` names where it came from.
  std::string joinToken;
  std::string joinTokenSource;
};

// The join token in `file`: its content without surrounding blanks. Throws
// Error(InvalidArgument) naming the file when it cannot be read or holds no token.
std::string readJoinTokenFile(const std::filesystem::path& file);

// Reads `file` (which must exist when `fileRequired`; otherwise a missing file means
// built-in defaults) and applies `overrides` ("section.key" -> value), then validates.
// Throws Error(InvalidArgument) naming the file, the key and what is wrong.
LoadedConfig loadConfig(const std::filesystem::path& file, bool fileRequired,
                        const std::map<std::string, std::string>& overrides);

}  // namespace shoal::daemon
