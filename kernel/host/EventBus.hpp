#pragma once
// Delivers kernel events (health.changed, node.joined, ...) to the hooks plugins registered.
//
// Hooks run synchronously on the caller's thread, one event at a time across the process
// (a mutex), so every hook sees events in the order they were dispatched, and every hook
// sees each event once. A hook's failure is logged with its message and does not stop the
// others. An event dispatched from inside a hook (a hook that removes a node, say) is
// delivered at once, nested, rather than deadlocking.
//
// dispatch() also returns the ids of the commands hooks enqueued while handling the event:
// a rolling restart waits for those (a drain that must be in force before the restart).
// Enqueue code reports each new command with noteEnqueued(), which adds it to the
// collection of the dispatch running on the same thread, if any.
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace shoal::host {

class Registries;

class EventBus {
 public:
  explicit EventBus(const Registries& registries) : registries_(registries) {}

  std::vector<std::int64_t> dispatch(const std::string& event, const std::string& payloadJson);

  static void noteEnqueued(std::int64_t commandId);

 private:
  const Registries& registries_;
  std::recursive_mutex mutex_;
};

}  // namespace shoal::host
