#pragma once
// The host's function table handed to every plugin's entry point.
#include <shoal/abi.h>

#include <cstdint>
#include <string>

#include "common/Error.hpp"

namespace shoal::host {

// The one table; static, valid for the life of the process.
const shoal_host_api* hostApiTable();

// The status a kernel error becomes at the ABI: InvalidArgument → INVALID_ARGUMENT, NotFound →
// NOT_FOUND, Conflict → CONFLICT, Unsupported → UNSUPPORTED, Failed → FAILED, Internal →
// INTERNAL. The kernel's own handlers in the registries answer with it too.
shoal_status toStatus(ErrorCode code);

// Name of a status for messages, e.g. "SHOAL_ERR_CONFLICT".
std::string statusName(shoal_status status);

// What a plugin callback answered, as the kernel's error: returns for SHOAL_OK, else throws
// Error with the matching code (INVALID_ARGUMENT → InvalidArgument, NOT_FOUND → NotFound,
// CONFLICT → Conflict, UNSUPPORTED → Unsupported, FAILED → Failed, anything else Internal)
// and the plugin's message (or the status's name when it gave none).
// SHOAL_ERR_METHOD_NOT_ALLOWED (ABI 1.3) becomes Unsupported.
void throwUnlessOk(shoal_status status, const std::string& plugin, const std::string& message);

// The HTTP statuses a plugin's API reply may choose (ABI 1.3 callback_reply_set_http_status):
// 200 201 202 204 with SHOAL_OK, 400 403 404 405 409 410 412 422 429 503 with an error.
bool pluginHttpStatusAllowed(std::uint32_t httpStatus);

// The HTTP answer to a plugin's API reply: `status` as on_request returned it, `chosen` the
// status it set (0 = none), `post` whether the request was a POST. The 1.1 mapping (OK 200 or
// 201 for POST, INVALID_ARGUMENT 400, NOT_FOUND 404, CONFLICT 409, UNSUPPORTED 501, FAILED
// 422, anything else 500) plus METHOD_NOT_ALLOWED 405; a chosen status of the outcome's
// kind (2xx for OK, 4xx/5xx for an error) replaces the mapped one. `code` is the error's
// name ("method_not_allowed"), empty for a success.
struct PluginHttpAnswer {
  int status = 200;
  std::string code;
};
PluginHttpAnswer pluginHttpAnswer(shoal_status status, std::uint32_t chosen, bool post);

}  // namespace shoal::host
