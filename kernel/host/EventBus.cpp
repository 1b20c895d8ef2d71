#include "host/EventBus.hpp"

#include <Poco/Logger.h>

#include "host/HostApi.hpp"
#include "host/HostObjects.hpp"
#include "host/Registries.hpp"

namespace shoal::host {
namespace {
thread_local std::vector<std::int64_t>* tCollected = nullptr;
}

void EventBus::noteEnqueued(std::int64_t commandId) {
  if (tCollected != nullptr) tCollected->push_back(commandId);
}

std::vector<std::int64_t> EventBus::dispatch(const std::string& event, const std::string& payloadJson) {
  std::lock_guard lock(mutex_);
  std::vector<std::int64_t> collected;
  auto* outer = tCollected;
  tCollected = &collected;
  auto& log = Poco::Logger::get("shoald.events");
  for (const auto& hook : registries_.hooks(event)) {
    shoal_reply reply;
    shoal_status status = SHOAL_ERR_INTERNAL;
    try {
      status = hook.onEvent(hook.user, shoal_str{event.data(), event.size()},
                            shoal_str{payloadJson.data(), payloadJson.size()}, &reply);
    } catch (...) {
      // The SDK catches at the boundary; a plugin written without it must not take us down.
      reply.error = "exception escaped the plugin's hook";
    }
    if (status != SHOAL_OK)
      log.warning("plugin " + hook.plugin + ": hook for " + event + " failed (" + statusName(status) +
                  "): " + (reply.error.empty() ? "no message" : reply.error));
  }
  tCollected = outer;
  if (outer != nullptr) outer->insert(outer->end(), collected.begin(), collected.end());
  return collected;
}

}  // namespace shoal::host
