#pragma once
// The audit log: who did what to what, when, from where, and how it ended. Append-only; the
// panel and the API record every state-changing request and every login attempt.
//
// Text is stored as given, markup included: escaping belongs to whatever renders it.
// Every method is thread-safe (its own pooled session). Needs the store at schema version 5.
#include <cstddef>
#include <cstdint>
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

  // Newest first: up to `limit` (1..1000) entries, only those with id < beforeId when given
  // (pass the last id of a page to get the next one). Error(InvalidArgument) for a limit out of
  // range or a beforeId that is not positive.
  std::vector<AuditEntry> list(std::size_t limit, std::optional<std::int64_t> beforeId = {});

 private:
  cluster::TimePoint currentTime() const;

  store::Store& store_;
  cluster::Clock clock_;
};

}  // namespace shoal::auth
