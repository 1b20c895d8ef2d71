#pragma once
// The host's function table handed to every plugin's entry point.
#include <shoal/abi.h>

#include <string>

namespace shoal::host {

// The one table; static, valid for the life of the process.
const shoal_host_api* hostApiTable();

// Name of a status for messages, e.g. "SHOAL_ERR_CONFLICT".
std::string statusName(shoal_status status);

// What a plugin callback answered, as the kernel's error: returns for SHOAL_OK, else throws
// Error with the matching code (INVALID_ARGUMENT → InvalidArgument, NOT_FOUND → NotFound,
// CONFLICT → Conflict, UNSUPPORTED → Unsupported, FAILED → Failed, anything else Internal)
// and the plugin's message (or the status's name when it gave none).
void throwUnlessOk(shoal_status status, const std::string& plugin, const std::string& message);

}  // namespace shoal::host
