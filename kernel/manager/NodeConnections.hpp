#pragma once
// How many connections the balancer still holds open to a node, from every plugin that
// counts them (ABI 1.3 callback_register_connections): what `GET /v1/nodes/{id}/connections`
// answers and `shoalctl node drain --wait` follows down to zero.
//
//   {"node_id": 3, "draining": true, "serving": ["https"], "connections": 3 | null,
//    "detail": [{"plugin": "lvs", "service": "http", "where": "tcp:10.0.0.1:80",
//                "active": 2, "inactive": 1}],
//    "unknown": [{"plugin": "lvs", "reason": "..."}]}
//
// "connections" is the sum of every plugin's count, or null when any plugin could not
// count (its dataplane runs in another process, it failed, it answered nonsense) or no
// plugin counts at all: an unknown count is never reported as 0. "serving" lists the node's
// services still in rotation (not yet drained): a node is empty only when it is draining,
// none of its services serves, and "connections" is 0.
#include <Poco/JSON/Object.h>

#include <string>
#include <vector>

#include "cluster/NodeRegistry.hpp"

namespace shoal::host {
class Registries;
}

namespace shoal::manager {

Poco::JSON::Object::Ptr countNodeConnections(const host::Registries* registries, const cluster::Node& node,
                                             const std::vector<std::string>& servingServices);

}  // namespace shoal::manager
