#pragma once
// The store's timestamps: UTC, ISO-8601 with milliseconds, e.g. "2024-05-01T12:00:00.123Z".
// Text sorts in time order and reads the same on every backend and server time zone.
#include <string>

namespace shoal::store {

std::string utcTimestampNow();

}  // namespace shoal::store
