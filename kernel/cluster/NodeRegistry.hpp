#pragma once
// The cluster's members. A node joins with a one-time join token that an admin created on the
// manager, and receives a credential that identifies it from then on. Tokens and credentials are
// stored only as hashes (cluster/Secrets.hpp).
//
// Every method is thread-safe: each call takes its own pooled session and, when it writes, its
// own store transaction. Ids must be positive (Error(InvalidArgument) otherwise); a node id that
// does not exist is Error(NotFound), changing a removed node is Error(Conflict).
// Needs the store at schema version 4 or later (Store::migrate()).
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/Clock.hpp"
#include "store/Store.hpp"

namespace shoal::cluster {

enum class NodeState { Online, Offline, Draining, Removed };
std::string toString(NodeState state);  // "online", "offline", "draining", "removed"
std::optional<NodeState> nodeStateFromString(std::string_view text);

// What a node says about itself when it joins (and what the manager says about itself).
//   hostname      1..253 of A-Z a-z 0-9 . - (a DNS name, punycode for IDN)
//   osId          1..32 of a-z 0-9 . _ -   (os-release ID: "debian", "rocky")
//   osVersion     1..32 of A-Z a-z 0-9 . _ ~ + -  (os-release VERSION_ID: "12", "9.3");
//                 its major version is the part before the first '.'
//   arch          1..32 of a-z 0-9 _       ("x86_64", "aarch64")
//   shoalVersion  MAJOR.MINOR[.PATCH][-suffix or +suffix], up to 64 characters
//   address       1..255 printable ASCII characters without blanks (how the manager reaches it)
struct PlatformReport {
  std::string hostname, osId, osVersion, arch, shoalVersion, address;
};

struct Node {
  std::int64_t id = 0;
  std::string hostname, address, osId, osVersion, arch, shoalVersion;
  std::vector<std::string> roles;  // sorted
  NodeState state = NodeState::Online;
  std::optional<TimePoint> lastSeen;
  TimePoint joinedAt;
};

struct JoinTokenIssue {
  std::string secret;  // shown once; only its hash is stored
  TimePoint expiresAt;
};

struct Enrolment {
  Node node;
  std::string credential;  // shown once; only its hash is stored
};

// A node entering or leaving the cluster as the manager sees it (the node.joined and
// node.left events). Joined: "enrolled" (enrol) or "returned" (an offline node was heard
// from again). Left: "offline" (markOffline found it silent) or "removed" (remove; also
// for a node that had gone offline before, so it may follow "offline"). A draining node
// counts as present: draining and undraining are neither.
struct NodeEvent {
  enum class Kind { Joined, Left };
  Kind kind = Kind::Joined;
  std::string reason;
  Node node;  // as it is after the change
};

class NodeRegistry {
 public:
  explicit NodeRegistry(store::Store& store, Clock clock = {});

  // Called after each membership change has been committed, on the thread that made it.
  // Changes and their calls are serialised, so the observer sees them in the order they
  // were committed. The observer must not throw and must not call back into the methods
  // that report events (enrol, heartbeat, markOffline, remove). Set it before use.
  using Observer = std::function<void(const NodeEvent&)>;
  void setObserver(Observer observer) { observer_ = std::move(observer); }

  // The cluster's platform is the manager's: recorded once, on the first call, in cluster_meta
  // (platform.os_id, platform.os_version, platform.arch); later calls change nothing. Returns
  // the recorded platform (osId, osVersion, arch; the other fields empty). Only those three
  // fields of `manager` are validated and used.
  PlatformReport ensureClusterPlatform(const PlatformReport& manager);

  static constexpr std::chrono::seconds kMinJoinTokenTtl{60};
  static constexpr std::chrono::seconds kMaxJoinTokenTtl{7 * 24 * 3600};
  // A new one-time token valid for ttl (kMinJoinTokenTtl to kMaxJoinTokenTtl, 60 s to 7 days,
  // else Error(InvalidArgument)).
  JoinTokenIssue createJoinToken(std::chrono::seconds ttl);

  // Checks and consumes the token and creates the node, in one transaction:
  //   empty or malformed inputs      Error(InvalidArgument) naming the field
  //   unknown token                  Error(NotFound)
  //   token already used             Error(Conflict, "join token was already used ...")
  //   token expired                  Error(Failed, "join token expired at ...")
  //   no cluster platform recorded   Error(Failed)
  //   os id, os major version or architecture differ from the cluster platform, or shoalVersion
  //   differs from managerVersion in major.minor: Error(InvalidArgument), saying which (e.g.
  //   "node reports os debian 11 but the cluster runs debian 12")
  // The token is checked before the platform, so a caller without a valid token learns nothing
  // about the cluster. On any failure nothing is written and the token stays usable.
  // The new node is Online, lastSeen = joinedAt = now, without roles.
  Enrolment enrol(const std::string& joinSecret, const PlatformReport& report,
                  const std::string& managerVersion);

  // Throws what enrol would for the token alone (NotFound unknown, Conflict used, Failed
  // expired), without consuming it: the API's check that a join call is authenticated.
  void checkJoinToken(const std::string& joinSecret);

  // The node whose unrevoked credential this is; nullopt for anything else (including empty or
  // oversized input, and removed nodes, whose credentials are revoked).
  std::optional<Node> authenticate(const std::string& credential);

  // lastSeen = now; an Offline node becomes Online (Draining stays Draining).
  void heartbeat(std::int64_t nodeId);

  // Online nodes not seen for longer than `after` (at least 1 s) become Offline; returns their
  // ids, ascending. Draining nodes keep their state.
  std::vector<std::int64_t> markOffline(std::chrono::seconds after);

  std::vector<Node> list(bool includeRemoved = false);  // by id
  std::optional<Node> find(std::int64_t id);

  // Role names match [a-z][a-z0-9_-]{0,31}; at most 64 roles; stored deduplicated and sorted.
  Node setRoles(std::int64_t id, const std::vector<std::string>& roles);

  // draining: Online/Offline -> Draining; not draining: Draining -> Online (markOffline corrects
  // that if the node is in fact silent). Setting the state it already has changes nothing.
  Node setDraining(std::int64_t id, bool draining);

  // Revokes the credential, sets Removed, and fails the node's pending and running deliveries
  // with output "node removed", so nothing waits on it. Removing a removed node does nothing.
  void remove(std::int64_t id);

 private:
  TimePoint currentTime() const;
  void report(NodeEvent::Kind kind, const std::string& reason, std::int64_t id);

  store::Store& store_;
  Clock clock_;
  Observer observer_;
  std::mutex membershipMutex_;  // a membership change and its report, one at a time
};

}  // namespace shoal::cluster
