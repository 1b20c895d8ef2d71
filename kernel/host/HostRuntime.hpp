#pragma once
// What the running daemon offers plugins beyond their own registrations (ABI 1.1 to 1.4):
// facts about the process, the Command Queue, the health of services and statistics. The daemon implements
// it once its manager and node parts exist and hands it to the plugin host; until then,
// and in processes that have no such part (`shoald plugins`), the matching callbacks
// answer SHOAL_ERR_UNSUPPORTED.
#include <cstdint>
#include <string>
#include <vector>

#include "host/StatsSample.hpp"

namespace shoal::host {

class HostRuntime {
 public:
  virtual ~HostRuntime() = default;
  // {"role": ..., "node_id": ..., "data_dir": ..., "host_version": ...}
  virtual std::string hostInfoJson() = 0;
  // Enqueues the command(s) `requestJson` describes (see abi.h callback_enqueue) and returns
  // {"id": N, "deliveries": M} (a batch: {"commands": [...]}). Throws Error: InvalidArgument
  // for a bad request, naming the field; Unsupported where there is no queue (not a manager).
  virtual std::string enqueue(const std::string& requestJson) = 0;
  // One command and its deliveries (ABI 1.3 callback_command_get): the object
  // GET /v1/commands/{id} answers. Throws Error: NotFound, Unsupported off a manager.
  virtual std::string commandJson(std::int64_t commandId) = 0;
  // The JSON array callback_health_list describes. Throws Error(Unsupported) off a manager.
  virtual std::string healthJson() = 0;
  // Records samples (ABI 1.2 callback_stats_emit, already validated): on the manager into its
  // RRD files, on a node by forwarding them to the manager in the background. Must not
  // block on the network. Throws Error(Unsupported) where neither exists.
  virtual void emitStats(std::vector<StatsSample> samples) = 0;
  // The JSON array of series names `plugin` declares its nodes may report (ABI 1.4
  // callback_stats_declare, not parsed yet). Throws Error: InvalidArgument for a bad list,
  // naming the entry; Unsupported off a manager (the default).
  virtual void declareStats(const std::string& plugin, const std::string& seriesJson);
};

}  // namespace shoal::host
