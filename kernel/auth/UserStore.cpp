#include "auth/UserStore.hpp"

#include <Poco/Data/Statement.h>

#include <algorithm>

#include "auth/PasswordHash.hpp"
#include "cluster/Database.hpp"
#include "cluster/Secrets.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::auth {

using cluster::detail::fromMillis;
using cluster::detail::inTransaction;
using cluster::detail::shown;
using cluster::detail::toMillis;
using cluster::detail::withSession;

namespace {

constexpr std::size_t kMaxNameLength = 64;

bool validName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || !(name[0] >= 'a' && name[0] <= 'z'))
    return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return false;
  return true;
}

// Checked against when the user does not exist, so that an unknown name costs what a wrong
// password costs. Made once per process with today's parameters.
const std::string& dummyHash() {
  static const std::string hash = hashPassword(cluster::randomSecret());
  return hash;
}

std::string forUpdate(store::Backend backend) {
  return backend == store::Backend::MySql ? " FOR UPDATE" : "";
}

std::int64_t lastInsertId(Poco::Data::Session& s, store::Backend backend) {
  Poco::Int64 id = 0;
  s << (backend == store::Backend::MySql ? "SELECT LAST_INSERT_ID()"
                                         : "SELECT last_insert_rowid()"),
      into(id), now;
  return id;
}

// Locks the user's row; NotFound when there is none.
std::int64_t lockUser(store::Transaction& tx, const std::string& name) {
  Poco::Int64 id = 0;
  std::string key = name;
  Poco::Data::Statement select(tx.session());
  select << "SELECT id FROM panel_users WHERE name = ?" + forUpdate(tx.backend()), use(key),
      into(id);
  if (select.execute() == 0)
    throw Error(ErrorCode::NotFound, "user \"" + name + "\" does not exist");
  return id;
}

void deleteSessionsOf(Poco::Data::Session& s, std::int64_t userId) {
  Poco::Int64 id = userId;
  s << "DELETE FROM panel_sessions WHERE user_id = ?", use(id), now;
}

UserKind kindOf(const std::string& stored) { return userKindFromText(stored); }

}  // namespace

UserKind userKindFromText(std::string_view stored) { return stored == "owner" ? UserKind::Owner : UserKind::Admin; }

const char* toText(UserKind kind) { return kind == UserKind::Owner ? "owner" : "admin"; }

std::size_t removeOwnersOf(store::Transaction& tx, const std::string& account) {
  auto& s = tx.session();
  std::string key = account;
  std::vector<Poco::Int64> ids;
  s << "SELECT id FROM panel_users WHERE kind = 'owner' AND account = ?" + forUpdate(tx.backend()), use(key),
      into(ids), now;
  for (auto id : ids) {
    deleteSessionsOf(s, id);
    s << "DELETE FROM panel_users WHERE id = ?", use(id), now;
  }
  return ids.size();
}

void checkUserName(std::string_view name) {
  if (!validName(name))
    throw Error(ErrorCode::InvalidArgument,
                "name \"" + shown(name) +
                    "\" is invalid: use 1 to 64 of a-z 0-9 . _ - starting with a letter");
}

UserStore::UserStore(store::Store& store, Clock clock) : store_(store), clock_(std::move(clock)) {}

TimePoint UserStore::currentTime() const {
  return clock_ ? clock_() : std::chrono::system_clock::now();
}

User UserStore::add(std::string_view name, std::string_view password) {
  return insert(name, password, UserKind::Admin, "");
}

User UserStore::addOwner(std::string_view name, std::string_view password, const std::string& account) {
  if (account.empty()) throw Error(ErrorCode::InvalidArgument, "account: an owner needs the account it owns");
  return insert(name, password, UserKind::Owner, account);
}

User UserStore::insert(std::string_view name, std::string_view password, UserKind kind, const std::string& account) {
  checkUserName(name);
  checkPasswordStrength(password);
  std::string hash = hashPassword(password);
  std::string key(name);
  const std::string action = "adding user \"" + key + "\"";
  const Poco::Int64 atMs = toMillis(currentTime());
  try {
    return inTransaction(store_, action, [&](store::Transaction& tx) {
      auto& s = tx.session();
      Poco::Int64 existing = 0;
      Poco::Data::Statement select(s);
      select << "SELECT id FROM panel_users WHERE name = ?" + forUpdate(tx.backend()), use(key),
          into(existing);
      if (select.execute() != 0)
        throw Error(ErrorCode::Conflict, "user \"" + key + "\" already exists");
      if (kind == UserKind::Owner) {
        // Held until the owner is in: removing the account waits for this transaction and then
        // removes the owner with it (removeOwnersOf).
        std::string accountKey = account, found;
        Poco::Data::Statement exists(s);
        exists << "SELECT name FROM hosting_accounts WHERE name = ?" + forUpdate(tx.backend()), use(accountKey),
            into(found);
        if (exists.execute() == 0) throw Error(ErrorCode::NotFound, "no account '" + shown(account) + "'");
      }
      Poco::Int64 created = atMs, updated = atMs;
      std::string kindText = toText(kind), accountKey = account;
      s << "INSERT INTO panel_users (name, password_hash, created_at_ms, updated_at_ms, disabled, kind, account)"
           " VALUES (?, ?, ?, ?, 0, ?, ?)",
          use(key), use(hash), use(created), use(updated), use(kindText), use(accountKey), now;
      return User{lastInsertId(s, tx.backend()), key, fromMillis(atMs), false, kind, account};
    });
  } catch (const Error& e) {
    // Of two concurrent adds of one name, the second fails on the unique key (a failed insert,
    // or on MySQL possibly a lost lock): say so as the check above would have.
    if (e.code() == ErrorCode::InvalidArgument || e.code() == ErrorCode::NotFound) throw;
    if (find(key)) throw Error(ErrorCode::Conflict, "user \"" + key + "\" already exists");
    throw;
  }
}

void UserStore::setPassword(std::string_view name, std::string_view password) {
  checkUserName(name);
  checkPasswordStrength(password);
  std::string hash = hashPassword(password);
  const std::string key(name);
  inTransaction(
      store_, "setting the password of user \"" + key + "\"", [&](store::Transaction& tx) {
        Poco::Int64 id = lockUser(tx, key);
        Poco::Int64 updated = toMillis(currentTime());
        tx.session() << "UPDATE panel_users SET password_hash = ?, updated_at_ms = ? WHERE id = ?",
            use(hash), use(updated), use(id), now;
        deleteSessionsOf(tx.session(), id);
      });
}

void UserStore::setDisabled(std::string_view name, bool disabled) {
  checkUserName(name);
  const std::string key(name);
  inTransaction(
      store_, std::string(disabled ? "disabling" : "enabling") + " user \"" + key + "\"",
      [&](store::Transaction& tx) {
        Poco::Int64 id = lockUser(tx, key);
        Poco::Int64 updated = toMillis(currentTime());
        int flag = disabled ? 1 : 0;
        tx.session() << "UPDATE panel_users SET disabled = ?, updated_at_ms = ? WHERE id = ?",
            use(flag), use(updated), use(id), now;
        if (disabled) deleteSessionsOf(tx.session(), id);
      });
}

void UserStore::remove(std::string_view name) {
  checkUserName(name);
  const std::string key(name);
  inTransaction(store_, "removing user \"" + key + "\"", [&](store::Transaction& tx) {
    // The count and the delete in one transaction that holds every user: SQLite's BEGIN
    // IMMEDIATE already serialises writers; on MySQL the locking read makes a concurrent
    // removal wait here and then count what this one left.
    std::vector<Poco::Int64> ids;
    std::vector<std::string> names, kinds;
    tx.session() << "SELECT id, name, kind FROM panel_users ORDER BY id" + forUpdate(tx.backend()), into(ids),
        into(names), into(kinds), now;
    const auto found = std::find(names.begin(), names.end(), key);
    if (found == names.end()) throw Error(ErrorCode::NotFound, "user \"" + key + "\" does not exist");
    const auto index = static_cast<std::size_t>(found - names.begin());
    if (kindOf(kinds[index]) == UserKind::Admin &&
        std::count_if(kinds.begin(), kinds.end(), [](const std::string& k) { return kindOf(k) == UserKind::Admin; }) == 1)
      throw Error(ErrorCode::Conflict,
                  "user \"" + key + "\" is the last admin and cannot be removed: add another admin first");
    Poco::Int64 id = ids[index];
    deleteSessionsOf(tx.session(), id);
    tx.session() << "DELETE FROM panel_users WHERE id = ?", use(id), now;
  });
}

std::vector<User> UserStore::list() {
  return withSession(store_, "listing users", [&](Poco::Data::Session& s) {
    std::vector<Poco::Int64> ids, created;
    std::vector<std::string> names, kinds, accounts;
    std::vector<int> disabled;
    s << "SELECT id, name, created_at_ms, disabled, kind, account FROM panel_users ORDER BY name", into(ids),
        into(names), into(created), into(disabled), into(kinds), into(accounts), now;
    std::vector<User> out;
    out.reserve(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i)
      out.push_back(User{ids[i], std::move(names[i]), fromMillis(created[i]), disabled[i] != 0, kindOf(kinds[i]),
                         std::move(accounts[i])});
    return out;
  });
}

std::optional<User> UserStore::find(std::string_view name) {
  if (!validName(name)) return std::nullopt;
  std::string key(name);
  return withSession(
      store_, "reading user \"" + key + "\"", [&](Poco::Data::Session& s) -> std::optional<User> {
        Poco::Int64 id = 0, created = 0;
        int disabled = 0;
        std::string kind, account;
        Poco::Data::Statement select(s);
        select << "SELECT id, created_at_ms, disabled, kind, account FROM panel_users WHERE name = ?", use(key),
            into(id), into(created), into(disabled), into(kind), into(account);
        if (select.execute() == 0) return std::nullopt;
        return User{id, key, fromMillis(created), disabled != 0, kindOf(kind), account};
      });
}

std::int64_t UserStore::count() {
  return withSession(store_, "counting users", [&](Poco::Data::Session& s) {
    Poco::Int64 n = 0;
    s << "SELECT COUNT(*) FROM panel_users", into(n), now;
    return static_cast<std::int64_t>(n);
  });
}

std::optional<User> UserStore::authenticate(std::string_view name, std::string_view password) {
  // Nothing that could be a stored name or password: refused without touching the store.
  if (!validName(name) || password.empty() || password.size() > kMaxPasswordBytes)
    return std::nullopt;
  std::string key(name);
  struct Row {
    std::int64_t id = 0, createdMs = 0;
    bool disabled = false;
    std::string hash, kind, account;
  };
  auto row = withSession(
      store_, "reading user \"" + key + "\"", [&](Poco::Data::Session& s) -> std::optional<Row> {
        Poco::Int64 id = 0, created = 0;
        int disabled = 0;
        std::string hash, kind, account;
        Poco::Data::Statement select(s);
        select << "SELECT id, created_at_ms, disabled, password_hash, kind, account FROM panel_users"
                  " WHERE name = ?",
            use(key), into(id), into(created), into(disabled), into(hash), into(kind), into(account);
        if (select.execute() == 0) return std::nullopt;
        return Row{id, created, disabled != 0, std::move(hash), std::move(kind), std::move(account)};
      });
  if (!row) {
    verifyPassword(password, dummyHash());
    return std::nullopt;
  }
  // A disabled user's password is still checked, so the time does not tell that either.
  if (!verifyPassword(password, row->hash) || row->disabled) return std::nullopt;

  if (passwordNeedsRehash(row->hash)) {
    std::string fresh = hashPassword(password), old = row->hash;
    Poco::Int64 id = row->id, updated = toMillis(currentTime());
    // Only if nobody changed the password meanwhile.
    withSession(store_, "upgrading the password hash of user \"" + key + "\"",
                [&](Poco::Data::Session& s) {
                  s << "UPDATE panel_users SET password_hash = ?, updated_at_ms = ?"
                       " WHERE id = ? AND password_hash = ?",
                      use(fresh), use(updated), use(id), use(old), now;
                });
  }
  return User{row->id, key, fromMillis(row->createdMs), false, kindOf(row->kind), row->account};
}

}  // namespace shoal::auth
