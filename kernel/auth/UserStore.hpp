#pragma once
// The web panel's users. A user has a name and a password, stored only as a salted scrypt hash
// (auth/PasswordHash.hpp); no method ever returns the hash.
//
// Names: 1 to 64 of a-z 0-9 . _ - starting with a letter ("alice", "ops.bob"). Passwords follow
// checkPasswordStrength.
//
// Kinds (docs/adr/0013-hosting-accounts.md, "Tenancy in one place"): an admin may do anything
// the panel and the API offer; an owner is bound to one hosting account and reaches only that
// account (the manager checks it before any handler runs). An owner's account exists while the
// owner does: addOwner checks it in the transaction that adds the owner, and removing the
// account removes its owners and their sessions in the account's own transaction
// (removeOwnersOf). Every method is thread-safe (its own pooled session and, when it
// writes, its own store transaction). Hashing takes about a tenth of a second and happens
// outside any transaction. Needs the store at schema version 9 or later (Store::migrate()).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/Clock.hpp"
#include "store/Store.hpp"
#include "store/Transaction.hpp"

namespace shoal::auth {

using cluster::Clock;
using cluster::TimePoint;

enum class UserKind { Admin, Owner };
// "admin" / "owner": the stored and the API's spelling.
const char* toText(UserKind kind);
// The kind a stored spelling names; anything but "owner" is an admin (the column's default).
UserKind userKindFromText(std::string_view stored);

struct User {
  std::int64_t id = 0;
  std::string name;
  TimePoint createdAt;
  bool disabled = false;
  UserKind kind = UserKind::Admin;
  std::string account;  // the account an owner is bound to; empty for an admin
};

// Throws Error(InvalidArgument, "name \"...\" is invalid: ...") unless the name follows the rule
// above.
void checkUserName(std::string_view name);

class UserStore {
 public:
  explicit UserStore(store::Store& store, Clock clock = {});

  // An admin. Error(InvalidArgument) naming `name` or `password`; Error(Conflict) when the name
  // is taken.
  User add(std::string_view name, std::string_view password);
  // An owner of `account`, checked like add; Error(NotFound) "no account '...'" unless the
  // hosting account exists when the owner is added (the check and the insert are one
  // transaction that holds the account's row, so a concurrent removal cannot leave an owner of
  // nothing). The caller validates the account name's grammar.
  User addOwner(std::string_view name, std::string_view password, const std::string& account);

  // A new password (checked like add's). Ends every session of the user, in the same
  // transaction: whoever changes a password creates a fresh session for themselves afterwards.
  // Error(NotFound) for an unknown user.
  void setPassword(std::string_view name, std::string_view password);

  // A disabled user cannot log in; disabling ends the user's sessions. Error(NotFound) for an
  // unknown user.
  void setDisabled(std::string_view name, bool disabled);

  // Deletes the user and the user's sessions. Error(NotFound) for an unknown user;
  // Error(Conflict) for the last admin, since nobody could administer the cluster from the
  // panel after it (owners do not count). The check and the delete are one transaction, so
  // concurrent removals (from any number of threads or processes) always leave an admin.
  void remove(std::string_view name);

  std::vector<User> list();                         // by name, admins and owners
  std::optional<User> find(std::string_view name);  // nullopt also for an invalid name
  std::int64_t count();

  // The user when the name and password match and the user is not disabled; nullopt otherwise,
  // in about the same time whether or not the user exists (an unknown name is verified against
  // a dummy hash). A hash weaker than today's defaults is replaced on success.
  // Throttling failed attempts is the caller's job (auth/LoginThrottle.hpp).
  std::optional<User> authenticate(std::string_view name, std::string_view password);

 private:
  TimePoint currentTime() const;
  User insert(std::string_view name, std::string_view password, UserKind kind, const std::string& account);

  store::Store& store_;
  Clock clock_;
};

// Removes every owner of `account` and their sessions inside `tx`, the transaction that removes
// the account, so no owner of a vanished account keeps a session or can sign in again. Returns
// how many owners there were.
std::size_t removeOwnersOf(store::Transaction& tx, const std::string& account);

}  // namespace shoal::auth
