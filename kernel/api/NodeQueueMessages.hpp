#pragma once
// The Command Queue between the manager and a node, as JSON on the wire: the delivery list
// that GET /v1/node/deliveries answers (read by the node agent) and the results batch that
// POST /v1/node/results takes (read by the manager). One reader per message, shared by the
// code that serves it and the fuzz targets that attack it.
#include <Poco/JSON/Object.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/CommandQueue.hpp"

namespace shoal::api {

// A delivery as the node is offered it.
struct OfferedDelivery {
  std::int64_t id = 0;         // the delivery's id, positive
  std::int64_t commandId = 0;  // positive
  std::string kind;            // non-empty
  std::string payload;         // the command's payload, as JSON text
  std::string orderingKey;     // "" when the manager sent none
  std::uint32_t attempts = 1;  // this attempt's number, from 1
};

// {"deliveries": [{"id", "command_id", "kind", "payload", "ordering_key"?, "attempts"?}...]}.
// Throws Error(InvalidArgument) naming the first field that is missing or of the wrong type
// ("deliveries[2].command_id: must be a positive integer").
std::vector<OfferedDelivery> parseDeliveryList(const Poco::JSON::Object::Ptr& body);

// {"results": [{"delivery_id": ID, "succeeded": BOOL, "output"?: TEXT}...]}. Throws
// Error(InvalidArgument) naming the first field that is missing or of the wrong type
// ("results[0].delivery_id: must be a positive integer").
std::vector<cluster::DeliveryResult> parseResultsBatch(const Poco::JSON::Object::Ptr& body);

}  // namespace shoal::api
