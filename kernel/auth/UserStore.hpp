#pragma once
// The web panel's users. A user has a name and a password, stored only as a salted scrypt hash
// (auth/PasswordHash.hpp); no method ever returns the hash.
//
// Names: 1 to 64 of a-z 0-9 . _ - starting with a letter ("alice", "ops.bob"). Passwords follow
// checkPasswordStrength. Every method is thread-safe (its own pooled session and, when it
// writes, its own store transaction). Hashing takes about a tenth of a second and happens
// outside any transaction. Needs the store at schema version 5 or later (Store::migrate()).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/Clock.hpp"
#include "store/Store.hpp"

namespace shoal::auth {

using cluster::Clock;
using cluster::TimePoint;

struct User {
  std::int64_t id = 0;
  std::string name;
  TimePoint createdAt;
  bool disabled = false;
};

// Throws Error(InvalidArgument, "name \"...\" is invalid: ...") unless the name follows the rule
// above.
void checkUserName(std::string_view name);

class UserStore {
 public:
  explicit UserStore(store::Store& store, Clock clock = {});

  // Error(InvalidArgument) naming `name` or `password`; Error(Conflict) when the name is taken.
  User add(std::string_view name, std::string_view password);

  // A new password (checked like add's). Ends every session of the user, in the same
  // transaction: whoever changes a password creates a fresh session for themselves afterwards.
  // Error(NotFound) for an unknown user.
  void setPassword(std::string_view name, std::string_view password);

  // A disabled user cannot log in; disabling ends the user's sessions. Error(NotFound) for an
  // unknown user.
  void setDisabled(std::string_view name, bool disabled);

  // Deletes the user and the user's sessions. Error(NotFound) for an unknown user;
  // Error(Conflict) for the last user, since nobody could sign in to the panel after it. The
  // check and the delete are one transaction, so concurrent removals (from any number of
  // threads or processes) always leave at least one user.
  void remove(std::string_view name);

  std::vector<User> list();                         // by name
  std::optional<User> find(std::string_view name);  // nullopt also for an invalid name
  std::int64_t count();

  // The user when the name and password match and the user is not disabled; nullopt otherwise,
  // in about the same time whether or not the user exists (an unknown name is verified against
  // a dummy hash). A hash weaker than today's defaults is replaced on success.
  // Throttling failed attempts is the caller's job (auth/LoginThrottle.hpp).
  std::optional<User> authenticate(std::string_view name, std::string_view password);

 private:
  TimePoint currentTime() const;

  store::Store& store_;
  Clock clock_;
};

}  // namespace shoal::auth
