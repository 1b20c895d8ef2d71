#pragma once
// The audit log: who did what to what, when, from where, and how it ended. The panel and the
// API record every state-changing request and every login attempt.
//
// Its size is bounded against what an outside party can cause: refusals anyone can repeat
// cheaply (throttled sign-ins, requests without credentials) are recorded with
// recordRepeated, one row per source address, kind and minute with a count; prune() drops
// rows past their retention and beyond a row cap (the manager runs it at start and every
// minute).
//
// Text is stored as given, markup included: escaping belongs to whatever renders it.
// Every method is thread-safe (its own pooled session). Needs the store at schema version 6.
#include <cstddef>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cluster/Clock.hpp"
#include "store/Store.hpp"

namespace shoal::auth {

struct AuditEntry {
  std::int64_t id = 0;      // assigned by record
  cluster::TimePoint at;    // assigned by record (the clock's now)
  std::string actor;        // 1..128 printable ASCII: "user:alice", "token:admin", "node:3"
  std::string action;       // 1..64 printable ASCII: "POST /v1/plugins/lvs/services", "login"
  std::string target;       // any text; at most kMaxTextChars characters are kept
  std::string outcome;      // "ok", "refused" or "failed"
  int status = 0;           // 0..999, the HTTP status when there is one
  std::string detail;       // any text; at most kMaxTextChars characters are kept
  std::string peerAddress;  // 0..255 printable ASCII without blanks
  // How many events the row stands for: 1 for a row of record, the number of refusals it
  // aggregates for one of recordRepeated (assigned by the log).
  std::int64_t count = 1;
};

// How long rows are kept and how many at most (AuditLog::prune).
struct AuditRetention {
  std::chrono::hours maxAge{90 * 24};
  std::size_t maxRows = 1000000;
};

class AuditLog {
 public:
  // target and detail longer than this keep their first kMaxTextChars - 1 characters and "…";
  // bytes that are not UTF-8 become U+FFFD.
  static constexpr std::size_t kMaxTextChars = 4000;
  static constexpr std::size_t kMaxListLimit = 1000;

  explicit AuditLog(store::Store& store, cluster::Clock clock = {});

  // Stores the entry and returns it as stored (id, at, cut text). Error(InvalidArgument) naming
  // the field for an actor, action, outcome, status or peer address outside the rules above;
  // Error(Internal) when the store fails: the caller decides whether the action may proceed
  // unaudited.
  AuditEntry record(const AuditEntry& entry);

  // For a refusal anyone can repeat without a credential (a throttled sign-in, a request
  // without or with a forged credential): the first in a clock minute (UTC) of its peer
  // address, action, outcome and status is stored as record does, with count 1; each later
  // one of the same minute adds 1 to that row's count and changes nothing else (it keeps the
  // first one's time, actor, target and detail). Returns the row as stored now. Errors as
  // record's.
  AuditEntry recordRepeated(const AuditEntry& entry);

  // Deletes the rows older than `retention.maxAge`, then the oldest beyond
  // `retention.maxRows`. Returns how many rows were deleted. Error(InvalidArgument) for a
  // maxAge or maxRows that is not positive; Error(Internal) when the store fails.
  std::size_t prune(const AuditRetention& retention);

  // Newest first: up to `limit` (1..1000) entries, only those with id < beforeId when given
  // (pass the last id of a page to get the next one). Error(InvalidArgument) for a limit out of
  // range or a beforeId that is not positive.
  std::vector<AuditEntry> list(std::size_t limit, std::optional<std::int64_t> beforeId = {});

 private:
  cluster::TimePoint currentTime() const;
  // Validated and cut as stored, stamped with `atMs`.
  AuditEntry checked(const AuditEntry& entry, std::int64_t atMs) const;
  std::int64_t insert(const AuditEntry& stored, std::optional<std::int64_t> count);

  store::Store& store_;
  cluster::Clock clock_;
  // recordRepeated's look-up and insert in one step, so two repeats never make two rows.
  std::mutex repeatedMutex_;
};

}  // namespace shoal::auth
