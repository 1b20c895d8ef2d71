#pragma once
// The enqueue request: one format for POST /v1/commands and the ABI's callback_enqueue
// (abi.h documents it), either one command or {"commands": [...]}.
#include <Poco/JSON/Object.h>

#include <vector>

#include "cluster/CommandQueue.hpp"

namespace shoal::manager {

struct EnqueueRequest {
  std::vector<cluster::CommandRequest> commands;
  bool batch = false;  // {"commands": [...]}
};

// Checks every field; throws Error(InvalidArgument) naming the field, prefixed with the
// request's place in a batch ("enqueue request: commands[2].target: ...").
EnqueueRequest parseEnqueueRequest(const Poco::JSON::Object::Ptr& body);

}  // namespace shoal::manager
