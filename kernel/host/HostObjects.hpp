#pragma once
// The host-side definitions of the ABI's opaque handles. Kernel-private.
#include <shoal/abi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "host/Registries.hpp"

namespace Poco {
class Logger;
namespace Util {
class AbstractConfiguration;
}
}  // namespace Poco

namespace shoal::host {
class HostRuntime;
}

namespace shoal::store {
class DocumentStore;
class DocumentTransaction;
}  // namespace shoal::store

// One per loaded plugin; lives until the plugin host shuts down.
struct shoal_plugin_ctx {
  std::string pluginName;
  Poco::Logger* logger = nullptr;
  const Poco::Util::AbstractConfiguration* config = nullptr;  // may be null
  shoal::store::DocumentStore* documents = nullptr;           // may be null (no store open)
  shoal::host::Registries* registries = nullptr;
  // Set by the daemon once it runs (PluginHost::setRuntime); null until then.
  const std::atomic<shoal::host::HostRuntime*>* runtime = nullptr;
  // Registration is open only while on_init runs; contributions are staged here.
  bool initializing = false;
  shoal::host::Contributions staged;
  std::string firstRegistrationError;  // a refused registration refuses the plugin
};

// The answer a plugin callback writes; owned by the kernel code that made the call.
struct shoal_reply {
  std::string output;
  std::string error;
  // Only the reply of an API request (shoal_api_desc.on_request) takes an HTTP status
  // (ABI 1.3 callback_reply_set_http_status); 0 = the one its shoal_status maps to.
  bool forApiRequest = false;
  std::uint32_t httpStatus = 0;
};

struct shoal_txn {
  std::unique_ptr<shoal::store::DocumentTransaction> transaction;
};
