#pragma once
// Internal helpers of the cluster classes: time as stored, messages, and running statements
// against the store with the store's error conventions.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <Poco/Data/Session.h>
#include <Poco/Exception.h>

#include "cluster/Clock.hpp"
#include "common/Error.hpp"
#include "common/Text.hpp"
#include "store/DatabaseError.hpp"
#include "store/Store.hpp"
#include "store/Transaction.hpp"

namespace shoal::cluster::detail {

// Times are stored as integer milliseconds since the Unix epoch. A NULL time is read as -1
// (COALESCE(column, -1)); stored times are never negative.
std::int64_t toMillis(TimePoint t);
TimePoint fromMillis(std::int64_t ms);
std::optional<TimePoint> fromNullableMillis(std::int64_t ms);
// "2024-05-01T12:00:00.123Z"
std::string isoUtc(TimePoint t);

// A value for a message: control bytes escaped, long values cut.
inline std::string shown(std::string_view value) { return shownValue(value); }

// The SQL list "1,2,3" of integers (ids are inlined: they are numbers we produced).
template <typename Range>
std::string idList(const Range& ids) {
  std::string out;
  for (const auto id : ids) {
    if (!out.empty()) out += ',';
    out += std::to_string(id);
  }
  return out;
}

void requirePositiveId(std::int64_t id, const char* field);

// What a SELECT appends to lock the rows it reads for the transaction: MySQL's FOR UPDATE.
// SQLite needs none (BEGIN IMMEDIATE holds the one write lock already).
inline std::string forUpdate(store::Backend backend) {
  return backend == store::Backend::MySql ? " FOR UPDATE" : "";
}

// Turns a driver exception into the store's error: lock contention is Conflict, everything else
// Internal, both prefixed by what was being done.
[[noreturn]] void rethrowDatabaseError(const std::string& action, const Poco::Exception& e);

inline constexpr int kTransactionAttempts = 5;

// Runs body(tx) in a store transaction and commits. When the database gives up on a lock
// (deadlock, lock wait timeout) the whole transaction is run again, up to kTransactionAttempts
// times. A shoal::Error thrown by body ends it at once (rolled back).
template <typename Body>
auto inTransaction(store::Store& store, const std::string& action, Body&& body)
    -> std::invoke_result_t<Body&, store::Transaction&> {
  using Result = std::invoke_result_t<Body&, store::Transaction&>;
  for (int attempt = 1;; ++attempt) {
    bool committing = false;
    try {
      store::Transaction tx(store.session(), store.backend());
      if constexpr (std::is_void_v<Result>) {
        body(tx);
        committing = true;
        tx.commit();
        return;
      } else {
        Result result = body(tx);
        committing = true;
        tx.commit();
        return result;
      }
    } catch (const Poco::Exception& e) {
      if (store::DatabaseError::classify(e) == store::DatabaseError::Kind::Contention &&
          attempt < kTransactionAttempts)
        continue;
      rethrowDatabaseError(action, e);
    } catch (const Error& e) {
      // Only the commit's own Conflict (a lost lock) is worth another attempt.
      if (committing && e.code() == ErrorCode::Conflict && attempt < kTransactionAttempts)
        continue;
      throw;
    }
  }
}

// Runs body(session) on a pooled session without a transaction (single-statement reads, or
// reads that tolerate changes between their statements).
template <typename Body>
auto withSession(store::Store& store, const std::string& action, Body&& body)
    -> std::invoke_result_t<Body&, Poco::Data::Session&> {
  Poco::Data::Session session = store.session();
  try {
    return body(session);
  } catch (const Poco::Exception& e) {
    rethrowDatabaseError(action, e);
  }
}

}  // namespace shoal::cluster::detail
