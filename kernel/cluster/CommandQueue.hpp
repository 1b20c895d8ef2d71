#pragma once
// The command queue: every per-server configuration change travels to the nodes as a command.
//
// A command has a kind ("nginx.site.apply"), a JSON payload, an ordering key and a target (one
// node, the nodes having a role, or all nodes). The target is resolved when the command is
// enqueued: every matching node that is not removed gets a delivery; a node that joins later
// gets nothing of earlier commands.
//
// Delivery states:  pending -> running -> done
//                              running -> pending (failed, attempts left; retried after backoff)
//                              running -> failed  (failed on the last attempt)
//                   pending/failed -> skipped (admin), failed/pending -> pending (admin retry)
// On each node, the deliveries of one ordering key run strictly one after another in command
// order: only the oldest delivery of a key that is not done or skipped (the key's head) can be
// claimed. A failed head blocks its key on that node until an admin retries or skips it; other
// keys and other nodes carry on. A running delivery holds a lease: if its node does not report
// within policy.lease, the delivery is handed out again.
//
// Every method is thread-safe (its own pooled session and transaction) and validates its input
// with Error(InvalidArgument) naming the field. Needs the store at schema version 4 or later.
// See docs/adr/0005-command-queue.md.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/Clock.hpp"
#include "store/Store.hpp"

namespace shoal::cluster {

enum class DeliveryState { Pending, Running, Done, Failed, Skipped };
std::string toString(DeliveryState state);  // "pending", "running", "done", "failed", "skipped"
std::optional<DeliveryState> deliveryStateFromString(std::string_view text);

struct Target {
  enum class Kind { Node, Role, All } kind = Kind::All;
  std::int64_t nodeId = 0;  // Kind::Node only
  std::string role;         // Kind::Role only

  static Target node(std::int64_t id) { return Target{Kind::Node, id, {}}; }
  static Target withRole(std::string role) { return Target{Kind::Role, 0, std::move(role)}; }
  static Target all() { return Target{Kind::All, 0, {}}; }
};

struct Delivery {
  std::int64_t id = 0, commandId = 0, nodeId = 0;
  DeliveryState state = DeliveryState::Pending;
  int attempts = 0;    // attempts started since the delivery was created or last retried
  std::string output;  // of the last attempt (at most kMaxOutputBytes)
  std::optional<TimePoint> nextAttemptAt;  // pending: not before this
  std::optional<TimePoint> startedAt;      // the last attempt's start (its lease runs from it)
  std::optional<TimePoint> finishedAt;     // the last report, skip or removal
  TimePoint createdAt;
  // The command, for the node:
  std::string kind, payloadJson, orderingKey;
};

struct Command {
  std::int64_t id = 0;
  std::string kind, payloadJson, orderingKey;
  Target target;
  TimePoint createdAt;
  std::vector<Delivery> deliveries;  // by node id
};

// One command to enqueue (enqueueAll).
struct CommandRequest {
  std::string kind, payloadJson, orderingKey;
  Target target;
  // 0..kMaxStagger: the command's deliveries, in node id order, become due at now + i * stagger
  // (i = 0, 1, ...), so a change to every node of a role is applied (and reloaded) by one node
  // after another rather than by all of them in the same second.
  std::chrono::milliseconds stagger{0};
};

// One result of a node (reportResults).
struct DeliveryResult {
  std::int64_t deliveryId = 0;
  bool succeeded = false;
  std::string output;
};

struct QueuePolicy {
  int maxAttempts = 5;                             // 1..1000
  std::chrono::milliseconds firstBackoff{500};     // > 0; doubles after every failed attempt
  std::chrono::milliseconds maxBackoff{30000};     // >= firstBackoff
  std::chrono::seconds lease{60};                  // >= 1 s
  std::chrono::hours idempotencyKeyRetention{24};  // >= 1 h: how long enqueueOnce() keys hold
};

class CommandQueue {
 public:
  static constexpr std::size_t kMaxPayloadBytes = 1024 * 1024;
  static constexpr std::size_t kMaxOutputBytes = 65535;  // longer output is cut (UTF-8 safe)
  static constexpr std::size_t kMaxLimit = 1000;  // claimReady, list, enqueueAll, reportResults
  static constexpr std::chrono::milliseconds kMaxStagger{60000};  // CommandRequest::stagger

  // Throws Error(InvalidArgument) for a policy outside the ranges above.
  explicit CommandQueue(store::Store& store, QueuePolicy policy = {}, Clock clock = {});

  // kind: dotted names, [a-z0-9_-]+(\.[a-z0-9_-]+)+, up to 128 characters.
  // payloadJson: one JSON value, valid UTF-8, up to kMaxPayloadBytes.
  // orderingKey: [A-Za-z0-9_.:/-]{1,128}.
  // target: Node (nodeId > 0, role empty), Role (a role name, nodeId 0), All (neither).
  // A target that matches no node that is not removed is Error(InvalidArgument, "target ...
  // matches no node"). The command and its deliveries are written in one transaction; on any
  // error nothing is written.
  Command enqueue(const std::string& kind, const std::string& payloadJson,
                  const std::string& orderingKey, const Target& target);

  // Several commands in one transaction (one commit for all), with ids ascending in the given
  // order; each is checked and resolved as enqueue() does, and an error names the command by its
  // index ("commands[3]: ...") with nothing written. 1..kMaxLimit commands.
  std::vector<Command> enqueueAll(const std::vector<CommandRequest>& requests);

  // An enqueue its client may repeat (after a timeout, say). The first call with a key
  // enqueues `requests` as enqueue() (batch false, one request) or enqueueAll() (batch true)
  // does, and keeps the key with the ids of the commands, in the same transaction. A later call
  // with the same key and the same requests enqueues nothing and returns those commands as they
  // are now, `replayed` true; concurrent calls with one key enqueue once. The same key with
  // other requests (or batch) is Error(Conflict) naming the key. A key is kept for
  // policy.idempotencyKeyRetention, then may be used anew; expired keys are pruned at most once
  // a minute by any enqueue. idempotencyKey: 1 to 128 visible ASCII characters (! to ~), else
  // Error(InvalidArgument).
  struct Enqueued {
    std::vector<Command> commands;
    bool replayed = false;
  };
  Enqueued enqueueOnce(const std::string& idempotencyKey, const std::vector<CommandRequest>& requests,
                       bool batch);

  // Up to `limit` (1..kMaxLimit) deliveries for the node that are ready, by command id, each
  // moved to Running (startedAt = now, attempts + 1) in one transaction. Ready: the head of its
  // key on this node and either Pending with nextAttemptAt <= now, or Running with an expired
  // lease. A Running delivery with a live lease is never handed out again, also not to a
  // concurrent caller.
  std::vector<Delivery> claimReady(std::int64_t nodeId, std::size_t limit);

  // The node's result for a delivery it claimed. Only the owning node may report: any other is
  // Error(NotFound). Running + succeeded -> Done. Running + failed -> Pending with nextAttemptAt
  // = now + backoff while attempts < maxAttempts, else Failed. Either way finishedAt = now and
  // output is kept (cut to kMaxOutputBytes, invalid UTF-8 replaced by U+FFFD). A report on a
  // Done delivery changes nothing and returns it (acknowledgements may be repeated). A report on
  // a delivery in another state (failed, skipped, or pending after a reported attempt) is
  // Error(Conflict) naming the state. A Pending delivery whose last attempt was started and
  // never reported (releaseRunning(), perhaps retried since) takes the result as
  // Running does: the node applied it, and must not be handed it again as new work.
  Delivery reportResult(std::int64_t deliveryId, std::int64_t nodeId, bool succeeded,
                        const std::string& output);

  // Several results of one node in one transaction (one commit for all), each applied as
  // reportResult() applies it; returns the deliveries in the given order. All or nothing: a
  // result that reportResult() would refuse ends the call with that error, naming the delivery,
  // and nothing is recorded. 1..kMaxLimit results, each delivery at most once.
  std::vector<Delivery> reportResults(std::int64_t nodeId,
                                      const std::vector<DeliveryResult>& results);

  // Admin. retry: Failed or Pending -> Pending, attempts 0, nextAttemptAt now (not for a removed
  // node's delivery). skip: Pending or Failed -> Skipped, which unblocks its key. Any other state
  // is Error(Conflict) naming it; an unknown id is Error(NotFound).
  Delivery retry(std::int64_t deliveryId);
  Delivery skip(std::int64_t deliveryId);

  std::optional<Command> find(std::int64_t commandId);

  // Newest first, up to `limit` (1..kMaxLimit). With a state: the commands having at least one
  // delivery in that state.
  std::vector<Command> list(std::size_t limit, std::optional<DeliveryState> state = std::nullopt);

  // Deliveries of nodes that are not removed, by state.
  struct Depth {
    std::int64_t pending = 0, running = 0, failed = 0;
  };
  Depth depth();

  // The earliest moment after now when one of this node's key heads becomes ready: a pending
  // head's nextAttemptAt, or a running head's lease expiry. nullopt when there is none (heads
  // that are ready now are claimReady's business).
  std::optional<TimePoint> nextWakeup(std::int64_t nodeId);

  // A node that (re)starts holds no delivery: its Running deliveries become Pending and ready
  // at once instead of waiting out their lease. Their attempts stay counted, and a result the
  // node reports for one afterwards is still taken (see reportResult). Returns how many.
  std::size_t releaseRunning(std::int64_t nodeId);

  // The wait after the given number of failed attempts (1 = the first failure):
  // firstBackoff * 2^(attempts-1), at most maxBackoff.
  std::chrono::milliseconds backoff(int attempts) const;

  const QueuePolicy& policy() const { return policy_; }

 private:
  TimePoint currentTime() const;
  // enqueue(), enqueueAll() and enqueueOnce() (with a key); `indexed` prefixes errors with
  // "commands[i]: ".
  Enqueued enqueueBatch(const std::vector<CommandRequest>& requests, bool indexed,
                        const std::string* idempotencyKey);
  void pruneIdempotencyKeys();

  store::Store& store_;
  QueuePolicy policy_;
  Clock clock_;
  std::atomic<std::int64_t> lastKeyPruneMs_{0};
};

}  // namespace shoal::cluster
