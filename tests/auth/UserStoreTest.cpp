#include <atomic>
#include <chrono>
#include <latch>
#include <thread>
#include <string>
#include <vector>

#include <Poco/Data/Session.h>

#include "AuthTest.hpp"
#include "auth/PasswordHash.hpp"
#include "auth/SessionStore.hpp"
#include "auth/UserStore.hpp"
#include "store/Transaction.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::auth::test {
namespace {

constexpr const char* kAlicePassword = "alice's long password";
constexpr const char* kBobPassword = "bob's long password";

class Users : public AuthTest {
 protected:
  void SetUp() override {
    AuthTest::SetUp();
    if (HasFatalFailure()) return;
    users_ = std::make_unique<UserStore>(store(), clock());
    sessions_ = std::make_unique<SessionStore>(store(), SessionPolicy{}, clock());
  }

  UserStore& users() { return *users_; }
  SessionStore& sessions() { return *sessions_; }

  std::string storedHash(const std::string& name) {
    auto session = store().session();
    std::string hash, key = name;
    session << "SELECT password_hash FROM panel_users WHERE name = ?", use(key), into(hash),
        Poco::Data::Keywords::now;
    return hash;
  }

 private:
  std::unique_ptr<UserStore> users_;
  std::unique_ptr<SessionStore> sessions_;
};

TEST_P(Users, AddedUsersAreFoundListedByNameAndCounted) {
  EXPECT_EQ(users().count(), 0);
  EXPECT_TRUE(users().list().empty());
  const User bob = users().add("bob", kBobPassword);
  advance(std::chrono::seconds(5));
  const User alice = users().add("alice", kAlicePassword);
  EXPECT_GT(bob.id, 0);
  EXPECT_GT(alice.id, bob.id);
  EXPECT_EQ(alice.name, "alice");
  EXPECT_EQ(alice.createdAt, now());
  EXPECT_FALSE(alice.disabled);

  EXPECT_EQ(users().count(), 2);
  const std::vector<User> list = users().list();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "alice");
  EXPECT_EQ(list[1].name, "bob");
  EXPECT_EQ(list[1].id, bob.id);
  EXPECT_EQ(list[1].createdAt, now() - std::chrono::seconds(5));

  const auto found = users().find("alice");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, alice.id);
  EXPECT_EQ(found->createdAt, alice.createdAt);
  EXPECT_FALSE(users().find("carol").has_value());
  EXPECT_FALSE(users().find("Alice").has_value());
  EXPECT_FALSE(users().find("").has_value());
}

TEST_P(Users, OnlyASaltedHashOfThePasswordIsStored) {
  users().add("alice", kAlicePassword);
  const std::string hash = storedHash("alice");
  EXPECT_EQ(hash.rfind("scrypt$N=32768,r=8,p=1$", 0), 0u) << hash;
  EXPECT_EQ(hash.find(kAlicePassword), std::string::npos);
  EXPECT_TRUE(verifyPassword(kAlicePassword, hash));
}

TEST_P(Users, ATakenNameIsAConflict) {
  users().add("alice", kAlicePassword);
  const std::string message =
      errorMessageOf(ErrorCode::Conflict, [&] { users().add("alice", "another password"); });
  EXPECT_EQ(message, "user \"alice\" already exists");
  EXPECT_EQ(users().count(), 1);
  EXPECT_TRUE(users().authenticate("alice", kAlicePassword).has_value());
}

TEST_P(Users, BadNamesAreRefusedNamingTheField) {
  for (const std::string& name :
       {std::string(""), std::string("Alice"), std::string("1alice"), std::string(65, 'a'),
        std::string("a b"), std::string("<script>"), std::string("_alice"), std::string("al/ice"),
        std::string("al\0ice", 6), std::string("\xC3\xA9ve")}) {
    const std::string message =
        errorMessageOf(ErrorCode::InvalidArgument, [&] { users().add(name, kAlicePassword); });
    EXPECT_EQ(message.rfind("name \"", 0), 0u) << message;
    EXPECT_NE(message.find("a-z 0-9 . _ - starting with a letter"), std::string::npos) << message;
  }
  EXPECT_EQ(users().count(), 0);
  // The longest name and the other characters are fine.
  EXPECT_NO_THROW(users().add(std::string(64, 'a'), kAlicePassword));
  EXPECT_NO_THROW(users().add("ops.bob_2-x", kBobPassword));
  EXPECT_EQ(users().count(), 2);
}

TEST_P(Users, WeakPasswordsAreRefusedNamingTheField) {
  EXPECT_EQ(errorMessageOf(ErrorCode::InvalidArgument, [&] { users().add("alice", "short"); }),
            "password: must be at least 10 characters");
  EXPECT_EQ(users().count(), 0);
  users().add("alice", kAlicePassword);
  EXPECT_EQ(errorMessageOf(ErrorCode::InvalidArgument,
                           [&] { users().setPassword("alice", std::string(1025, 'p')); }),
            "password: must be at most 1024 bytes");
  EXPECT_TRUE(users().authenticate("alice", kAlicePassword).has_value());
}

TEST_P(Users, AuthenticateAcceptsOnlyTheRightNameAndPassword) {
  const User alice = users().add("alice", kAlicePassword);
  users().add("bob", kBobPassword);

  const auto ok = users().authenticate("alice", kAlicePassword);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->id, alice.id);
  EXPECT_EQ(ok->name, "alice");

  EXPECT_FALSE(users().authenticate("alice", kBobPassword).has_value());
  EXPECT_FALSE(users().authenticate("alice", "").has_value());
  EXPECT_FALSE(users().authenticate("alice", std::string(kAlicePassword) + "x").has_value());
  EXPECT_FALSE(users().authenticate("Alice", kAlicePassword).has_value());
  EXPECT_FALSE(users().authenticate("carol", kAlicePassword).has_value());
  EXPECT_FALSE(users().authenticate("", kAlicePassword).has_value());
  EXPECT_FALSE(users().authenticate("alice' OR '1'='1", kAlicePassword).has_value());
  EXPECT_FALSE(users().authenticate("alice", std::string(5000, 'x')).has_value());
}

TEST_P(Users, AnUnknownNameCostsAPasswordVerification) {
  users().add("alice", kAlicePassword);
  users().authenticate("nobody", "warm up the dummy hash");
  // A wrong password costs one scrypt; an unknown user must cost about the same, not a bare
  // lookup (well under a millisecond). One scrypt of 32 MiB takes far more than 5 ms.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(users().authenticate("nobody", kAlicePassword).has_value());
  const auto unknown = std::chrono::steady_clock::now() - start;
  EXPECT_GT(unknown, std::chrono::milliseconds(5));
}

TEST_P(Users, ADisabledUserCannotLogInAndLosesItsSessions) {
  const User alice = users().add("alice", kAlicePassword);
  const NewSession session = sessions().create(alice.id, "192.0.2.7");
  users().setDisabled("alice", true);
  EXPECT_TRUE(users().find("alice")->disabled);
  EXPECT_TRUE(users().list()[0].disabled);
  EXPECT_FALSE(users().authenticate("alice", kAlicePassword).has_value());
  EXPECT_FALSE(sessions().resume(session.token).has_value());
  errorMessageOf(ErrorCode::Failed, [&] { sessions().create(alice.id, "192.0.2.7"); });

  users().setDisabled("alice", false);
  EXPECT_FALSE(users().find("alice")->disabled);
  EXPECT_TRUE(users().authenticate("alice", kAlicePassword).has_value());
  EXPECT_FALSE(sessions().resume(session.token).has_value()) << "enabling revives no session";
  errorMessageOf(ErrorCode::NotFound, [&] { users().setDisabled("carol", true); });
}

TEST_P(Users, ANewPasswordReplacesTheOldOneAndEndsTheSessions) {
  const User alice = users().add("alice", kAlicePassword);
  const User bob = users().add("bob", kBobPassword);
  const NewSession aliceSession = sessions().create(alice.id, "192.0.2.7");
  const NewSession bobSession = sessions().create(bob.id, "192.0.2.8");
  const std::string before = storedHash("alice");

  users().setPassword("alice", "a brand new password");
  EXPECT_NE(storedHash("alice"), before);
  EXPECT_FALSE(users().authenticate("alice", kAlicePassword).has_value());
  EXPECT_TRUE(users().authenticate("alice", "a brand new password").has_value());
  EXPECT_FALSE(sessions().resume(aliceSession.token).has_value());
  EXPECT_TRUE(sessions().resume(bobSession.token).has_value());

  errorMessageOf(ErrorCode::NotFound,
                 [&] { users().setPassword("carol", "a brand new password"); });
  errorMessageOf(ErrorCode::InvalidArgument,
                 [&] { users().setPassword("Carol", "a brand new password"); });
}

TEST_P(Users, RemovingAUserEndsItsSessions) {
  const User alice = users().add("alice", kAlicePassword);
  const User bob = users().add("bob", kBobPassword);
  const NewSession a1 = sessions().create(alice.id, "192.0.2.7");
  const NewSession a2 = sessions().create(alice.id, "192.0.2.9");
  const NewSession b1 = sessions().create(bob.id, "192.0.2.8");
  EXPECT_EQ(countRows("panel_sessions"), 3);

  users().remove("alice");
  EXPECT_FALSE(users().find("alice").has_value());
  EXPECT_EQ(users().count(), 1);
  EXPECT_FALSE(users().authenticate("alice", kAlicePassword).has_value());
  EXPECT_FALSE(sessions().resume(a1.token).has_value());
  EXPECT_FALSE(sessions().resume(a2.token).has_value());
  EXPECT_TRUE(sessions().resume(b1.token).has_value());
  EXPECT_EQ(countRows("panel_sessions"), 1);

  errorMessageOf(ErrorCode::NotFound, [&] { users().remove("alice"); });
  // The name is free again, for a new user with a new id.
  const User again = users().add("alice", "yet another password");
  EXPECT_NE(again.id, alice.id);
}

TEST_P(Users, TheLastUserCannotBeRemoved) {
  users().add("alice", kAlicePassword);
  users().add("bob", kBobPassword);
  users().remove("alice");
  const std::string message = errorMessageOf(ErrorCode::Conflict, [&] { users().remove("bob"); });
  EXPECT_NE(message.find("\"bob\" is the last admin"), std::string::npos) << message;
  EXPECT_TRUE(users().find("bob").has_value());
  errorMessageOf(ErrorCode::NotFound, [&] { users().remove("alice"); });
}

TEST_P(Users, ConcurrentRemovalsOfEveryUserAlwaysLeaveOne) {
  constexpr int kTrials = 12;
  const std::vector<std::string> names{"alice", "bob", "carol"};
  constexpr std::size_t kRemovers = 6;  // two for each user
  // Each remover has a store of its own (its own pool and connections), as concurrent
  // requests on one manager or several processes have.
  std::vector<std::unique_ptr<store::Store>> stores;
  std::vector<std::unique_ptr<UserStore>> removers;
  for (std::size_t i = 0; i < kRemovers; ++i) {
    stores.push_back(openStore());
    removers.push_back(std::make_unique<UserStore>(*stores.back(), clock()));
  }
  const std::string hash = hashPassword(kAlicePassword);
  for (int trial = 0; trial < kTrials; ++trial) {
    {
      auto s = store().session();
      for (std::string name : names) {
        std::string h = hash;
        s << "INSERT INTO panel_users (name, password_hash, created_at_ms, updated_at_ms, disabled)"
             " VALUES (?, ?, 0, 0, 0)",
            use(name), use(h), Poco::Data::Keywords::now;
      }
    }
    ASSERT_EQ(users().count(), 3);
    std::latch go(static_cast<std::ptrdiff_t>(kRemovers));
    std::atomic<int> removed{0}, refusedAsLast{0}, alreadyGone{0};
    std::vector<std::string> unexpected(kRemovers);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < kRemovers; ++i)
      threads.emplace_back([&, i] {
        go.arrive_and_wait();
        try {
          removers[i]->remove(names[i % names.size()]);
          ++removed;
        } catch (const Error& e) {
          if (e.code() == ErrorCode::Conflict && std::string(e.what()).find("last admin") != std::string::npos)
            ++refusedAsLast;
          else if (e.code() == ErrorCode::NotFound)
            ++alreadyGone;
          else
            unexpected[i] = e.what();
        }
      });
    for (auto& t : threads) t.join();
    for (const auto& message : unexpected) EXPECT_EQ(message, "") << "trial " << trial;
    ASSERT_EQ(users().count(), 1) << "trial " << trial << ": " << removed << " removed, " << refusedAsLast
                                  << " refused as the last, " << alreadyGone << " already gone";
    EXPECT_EQ(removed.load(), 2) << "trial " << trial;
    EXPECT_GE(refusedAsLast.load(), 1) << "trial " << trial;
    auto s = store().session();
    s << "DELETE FROM panel_users", Poco::Data::Keywords::now;
  }
}

TEST_P(Users, AWeakHashIsReplacedAtTheNextLogin) {
  users().add("alice", kAlicePassword);
  {
    auto session = store().session();
    std::string weak = hashPassword(kAlicePassword, ScryptParams{1024, 8, 1});
    session << "UPDATE panel_users SET password_hash = ? WHERE name = 'alice'", use(weak),
        Poco::Data::Keywords::now;
  }
  ASSERT_EQ(storedHash("alice").rfind("scrypt$N=1024,", 0), 0u);
  EXPECT_FALSE(users().authenticate("alice", kBobPassword).has_value());
  EXPECT_EQ(storedHash("alice").rfind("scrypt$N=1024,", 0), 0u) << "a failed login changes nothing";
  EXPECT_TRUE(users().authenticate("alice", kAlicePassword).has_value());
  const std::string upgraded = storedHash("alice");
  EXPECT_EQ(upgraded.rfind("scrypt$N=32768,r=8,p=1$", 0), 0u) << upgraded;
  EXPECT_TRUE(users().authenticate("alice", kAlicePassword).has_value());
}

// A hosting account's row as kernel/hosting/AccountStore writes it; the auth layer only reads its
// name, so the other columns are whatever the schema needs.
void addAccountRow(store::Store& store, const std::string& name, std::int64_t uid) {
  auto s = store.session();
  std::string key = name, home = "/srv/shoal/" + name;
  Poco::Int64 id = uid;
  s << "INSERT INTO hosting_accounts (name, uid, gid, home, state, suspend_reason, plan, limits_json, revision,"
       " created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, 'active', '', '', '{}', 1, 0, 0)",
      use(key), use(id), use(id), use(home), Poco::Data::Keywords::now;
}

TEST_P(Users, AnOwnerIsBoundToAnAccountThatExists) {
  const std::string message =
      errorMessageOf(ErrorCode::NotFound, [&] { users().addOwner("olivia", kAlicePassword, "acme"); });
  EXPECT_EQ(message, "no account 'acme'");
  EXPECT_FALSE(users().find("olivia").has_value()) << "nothing of the refused owner is written";
  errorMessageOf(ErrorCode::InvalidArgument, [&] { users().addOwner("olivia", kAlicePassword, ""); });

  addAccountRow(store(), "acme", 20001);
  users().add("alice", kAlicePassword);
  const User olivia = users().addOwner("olivia", kBobPassword, "acme");
  EXPECT_EQ(olivia.kind, UserKind::Owner);
  EXPECT_EQ(olivia.account, "acme");
  errorMessageOf(ErrorCode::Conflict, [&] { users().addOwner("alice", kBobPassword, "acme"); });

  const auto list = users().list();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "alice");
  EXPECT_EQ(list[0].kind, UserKind::Admin);
  EXPECT_EQ(list[0].account, "");
  EXPECT_EQ(list[1].name, "olivia");
  EXPECT_EQ(list[1].kind, UserKind::Owner);
  EXPECT_EQ(list[1].account, "acme");
  EXPECT_EQ(users().find("olivia")->account, "acme");

  const auto signedIn = users().authenticate("olivia", kBobPassword);
  ASSERT_TRUE(signedIn.has_value());
  EXPECT_EQ(signedIn->kind, UserKind::Owner);
  EXPECT_EQ(signedIn->account, "acme");
  const auto session = sessions().resume(sessions().create(signedIn->id, "192.0.2.1").token);
  ASSERT_TRUE(session.has_value());
  EXPECT_EQ(session->userKind, UserKind::Owner);
  EXPECT_EQ(session->userAccount, "acme");
  const auto admin = sessions().resume(sessions().create(users().find("alice")->id, "192.0.2.1").token);
  ASSERT_TRUE(admin.has_value());
  EXPECT_EQ(admin->userKind, UserKind::Admin);
  EXPECT_EQ(admin->userAccount, "");
}

TEST_P(Users, RemovingAnAccountsOwnersEndsTheirSessionsAndNoOneElses) {
  addAccountRow(store(), "acme", 20001);
  addAccountRow(store(), "beta", 20002);
  const User alice = users().add("alice", kAlicePassword);
  const User olivia = users().addOwner("olivia", kBobPassword, "acme");
  const User oscar = users().addOwner("oscar", kBobPassword, "acme");
  const User bella = users().addOwner("bella", kBobPassword, "beta");
  std::vector<std::string> tokens;
  for (const auto& u : {alice, olivia, oscar, bella}) tokens.push_back(sessions().create(u.id, "192.0.2.1").token);

  {
    store::Transaction tx(store().session(), store().backend());
    EXPECT_EQ(removeOwnersOf(tx, "acme"), 2u);
    tx.commit();
  }
  EXPECT_TRUE(sessions().resume(tokens[0]).has_value());
  EXPECT_FALSE(sessions().resume(tokens[1]).has_value());
  EXPECT_FALSE(sessions().resume(tokens[2]).has_value());
  EXPECT_TRUE(sessions().resume(tokens[3]).has_value());
  EXPECT_FALSE(users().find("olivia").has_value());
  EXPECT_FALSE(users().authenticate("oscar", kBobPassword).has_value());
  EXPECT_TRUE(users().find("bella").has_value());
  {
    store::Transaction tx(store().session(), store().backend());
    EXPECT_EQ(removeOwnersOf(tx, "acme"), 0u);
    tx.rollback();
  }
}

TEST_P(Users, OwnersDoNotCountAsAdminsForTheLastAdmin) {
  addAccountRow(store(), "acme", 20001);
  users().add("alice", kAlicePassword);
  users().addOwner("olivia", kBobPassword, "acme");
  const std::string message = errorMessageOf(ErrorCode::Conflict, [&] { users().remove("alice"); });
  EXPECT_NE(message.find("\"alice\" is the last admin"), std::string::npos) << message;
  users().remove("olivia");
  EXPECT_EQ(users().count(), 1);
}

SHOAL_INSTANTIATE_FOR_BOTH_BACKENDS(Users);

}  // namespace
}  // namespace shoal::auth::test
