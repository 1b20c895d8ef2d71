#include "cluster/Database.hpp"

#include <cstdio>
#include <ctime>

namespace shoal::cluster::detail {

std::int64_t toMillis(TimePoint t) {
  return std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

TimePoint fromMillis(std::int64_t ms) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::milliseconds(ms)));
}

std::optional<TimePoint> fromNullableMillis(std::int64_t ms) {
  if (ms < 0) return std::nullopt;
  return fromMillis(ms);
}

std::string isoUtc(TimePoint t) {
  const std::int64_t ms = toMillis(t);
  std::int64_t seconds = ms / 1000;
  std::int64_t milli = ms % 1000;
  if (milli < 0) {
    milli += 1000;
    seconds -= 1;
  }
  const std::time_t tt = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(milli));
  return buffer;
}


void requirePositiveId(std::int64_t id, const char* field) {
  if (id <= 0)
    throw Error(ErrorCode::InvalidArgument,
                std::string(field) + " " + std::to_string(id) + " is invalid: ids are positive");
}

void rethrowDatabaseError(const std::string& action, const Poco::Exception& e) {
  const std::string reason = store::DatabaseError::reason(e);
  if (store::DatabaseError::classify(e) == store::DatabaseError::Kind::Contention)
    throw Error(ErrorCode::Conflict,
                action + " lost a lock against concurrent transactions: " + reason);
  throw Error(ErrorCode::Internal, action + " failed: " + reason);
}

}  // namespace shoal::cluster::detail
