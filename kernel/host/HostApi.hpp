#pragma once
// The host's function table handed to every plugin's entry point.
#include <shoal/abi.h>

#include <string>

namespace shoal::host {

// The one table; static, valid for the life of the process.
const shoal_host_api* hostApiTable();

// Name of a status for messages, e.g. "SHOAL_ERR_CONFLICT".
std::string statusName(shoal_status status);

}  // namespace shoal::host
