#pragma once
// The plugin host: finds plugin libraries, loads them with Boost.DLL, negotiates the ABI,
// runs their init and commits what they register into the kernel's registries.
//
// A plugin that cannot be used is refused with a reason that names the file and the cause;
// the host goes on with the others. Libraries stay loaded until shutdown(), also those
// refused after their init ran, so no code of theirs can be unmapped while referenced.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "host/HostRuntime.hpp"
#include "host/Registries.hpp"

namespace Poco {
class Logger;
namespace Util {
class AbstractConfiguration;
}
}  // namespace Poco

namespace shoal::store {
class DocumentStore;
}

namespace shoal::host {

enum class PluginState { Loaded, Refused };

struct PluginRecord {
  std::filesystem::path file;  // absolute
  PluginState state = PluginState::Refused;
  std::string reason;          // why it was refused; empty when loaded
  // Identity as the plugin declared it (empty when refused before it could say).
  std::string name, version, description;
  std::uint16_t abiMajor = 0, abiMinor = 0;
  Contributions contributions;  // what it registered (empty when refused)
};

// What plugins may reach through the host table. Both may be null; then the matching
// callbacks answer SHOAL_ERR_NOT_FOUND / SHOAL_ERR_UNSUPPORTED.
struct HostServices {
  const Poco::Util::AbstractConfiguration* config = nullptr;
  store::DocumentStore* documents = nullptr;
};

class PluginHost {
 public:
  explicit PluginHost(HostServices services);
  ~PluginHost();  // shutdown()
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  // Adds the kernel's own contributions (the account identity's queue handlers) to the
  // registries. Call before loading plugins, so a plugin that claims one of their kinds is
  // the one refused. Entries name plugin "kernel", a name no plugin may take. Throws
  // Error(Conflict) like Registries::commit.
  void registerBuiltIns(const Contributions& builtIns);

  // Loads every regular file named *.so in `directory`, in name order. Throws
  // Error(InvalidArgument) when the directory does not exist or cannot be read.
  std::vector<PluginRecord> loadDirectory(const std::filesystem::path& directory);

  // Loads one file. Never throws for a bad plugin: the record says why it was refused.
  PluginRecord load(const std::filesystem::path& file);

  // Calls every loaded plugin's on_shutdown in reverse load order, clears the registries,
  // then unloads the libraries. Idempotent.
  void shutdown();

  const Registries& registries() const { return registries_; }

  // What plugins reach through ABI 1.1's runtime callbacks (host info, enqueue, health).
  // `runtime` must outlive every call into plugins; set it to null before it goes away.
  void setRuntime(HostRuntime* runtime) { runtime_.store(runtime); }
  // The account side of ABI 1.5's callback_limit_check (see LimitChecker in Registries.hpp),
  // installed by the part of the daemon that owns accounts; until then, and in processes
  // without accounts, the check answers SHOAL_ERR_UNSUPPORTED. Whatever `checker` captures
  // must outlive every call into plugins; install an empty one before it goes away.
  void setLimitChecker(LimitChecker checker) { registries_.setLimitChecker(std::move(checker)); }
  const std::vector<PluginRecord>& records() const { return records_; }

 private:
  struct Library;

  PluginRecord refuse(PluginRecord record, std::string reason);

  HostServices services_;
  Poco::Logger& logger_;
  Registries registries_;
  std::atomic<HostRuntime*> runtime_{nullptr};
  std::vector<PluginRecord> records_;
  std::vector<std::unique_ptr<Library>> libraries_;  // load order
};

}  // namespace shoal::host
