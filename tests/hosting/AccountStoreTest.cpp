// Hosting accounts in the store and their delivery through the outbox, on SQLite and MariaDB.
// The queue is the real Command Queue on the same store; the plugins' hooks are a recorder,
// because what is tested here is the order and the exactly-once of the kernel's own part
// (tests/e2e drives the real http plugin).
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include <unistd.h>

#include "ClusterTest.hpp"
#include "auth/SessionStore.hpp"
#include "auth/UserStore.hpp"
#include "hosting/AccountService.hpp"

namespace shoal::hosting {
namespace {

using cluster::test::ClusterTest;
using store::test::errorMessageOf;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const LimitDimension kDomains{"http.domains", "Domains", "domains"};
const LimitDimension kDisk{"http.disk_mb", "Disk space (MB)", ""};

class AccountStoreTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    if (GetParam() == store::Backend::MySql) {
      // The tables outlive a test on MariaDB (IF NOT EXISTS): empty them, children first.
      auto session = store().session();
      for (const char* table : {"panel_sessions", "panel_users", "hosting_outbox", "hosting_certificates",
                                "hosting_domains", "hosting_accounts", "hosting_plans"})
        session << std::string("DELETE FROM ") + table, Poco::Data::Keywords::now;
      session << "UPDATE hosting_counters SET next_value = 0", Poco::Data::Keywords::now;
    }
    accounts_ = std::make_unique<AccountStore>(store(), AccountStoreSettings{20000, "/srv/shoal"}, clock());
  }

  AccountStore& accounts() { return *accounts_; }

  Account create(const std::string& name, const std::string& domain, const std::string& plan = "") {
    return accounts().createAccount(NewAccount{name, normalizeDomain(domain), plan, std::nullopt}, {kDomains}).account;
  }
  AccountChange add(const std::string& account, const std::string& domain, const std::string& kind = "secondary",
                    const std::string& parent = "") {
    return accounts().addDomain(account, NewDomain{normalizeDomain(domain), kind, parent, ""}, {kDomains});
  }

  std::unique_ptr<AccountStore> accounts_;
};

TEST_P(AccountStoreTest, AnAccountGetsTheNextUidItsHomeAndItsPrimaryDomainAndAnnouncesItself) {
  const auto change = accounts().createAccount(NewAccount{"acme", normalizeDomain("Bücher.Example"), "", std::nullopt},
                                               {kDomains});
  const auto& a = change.account;
  EXPECT_EQ(a.uid, 20000u);
  EXPECT_EQ(a.gid, 20000u);
  EXPECT_EQ(a.home, "/srv/shoal/acme");
  EXPECT_EQ(a.state, "active");
  EXPECT_EQ(a.revision, 1);
  ASSERT_EQ(a.domains.size(), 1u);
  EXPECT_EQ(a.domains[0].name, "xn--bcher-kva.example");
  EXPECT_EQ(a.domains[0].unicode, "bücher.example");
  EXPECT_EQ(a.domains[0].kind, "primary");
  ASSERT_TRUE(change.event);
  EXPECT_EQ(change.event->event, "account.created");
  Poco::JSON::Parser parser;
  auto payload = parser.parse(change.event->payload).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(payload->getObject("account")->getValue<std::string>("name"), "acme");
  EXPECT_EQ(payload->getObject("account")->getValue<int>("uid"), 20000);

  const auto stored = accounts().account("acme");
  ASSERT_TRUE(stored);
  EXPECT_EQ(toJsonText(*stored, true), toJsonText(a, true));
  EXPECT_EQ(accounts().accountOfDomain("xn--bcher-kva.example"), std::optional<std::string>("acme"));
  ASSERT_EQ(accounts().outbox().size(), 1u);
}

TEST_P(AccountStoreTest, UidsAreNeverReusedAfterAnAccountIsRemoved) {
  EXPECT_EQ(create("one", "one.test").uid, 20000u);
  EXPECT_EQ(create("two", "two.test").uid, 20001u);
  const auto removed = accounts().removeAccount("one");
  ASSERT_TRUE(removed.event);
  EXPECT_EQ(removed.event->event, "account.removed");
  EXPECT_EQ(removed.account.domains.size(), 1u);  // the state it had, for the plugins to undo
  EXPECT_EQ(create("three", "one.test").uid, 20002u);
  EXPECT_FALSE(accounts().account("one"));
}

TEST_P(AccountStoreTest, ConcurrentCreatesGetDistinctUidsAndOneWinsAContestedDomain) {
  std::vector<std::thread> threads;
  std::atomic<int> won{0}, refused{0};
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&, i] {
      try {
        create("racer" + std::to_string(i), "contested.test");
        ++won;
      } catch (const Error& e) {
        if (e.code() == ErrorCode::Conflict) ++refused;
      }
      create("own" + std::to_string(i), "own" + std::to_string(i) + ".test");
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), 5);
  std::set<std::uint32_t> uids;
  for (const auto& a : accounts().accounts()) uids.insert(a.uid);
  EXPECT_EQ(uids.size(), 7u);
}

TEST_P(AccountStoreTest, ADomainBelongsToOneAccountAndNobodyMayHangNamesUnderAnothersDomain) {
  create("acme", "acme.test");
  create("bob", "bob.test");
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::Conflict, [&] { add("bob", "ACME.test"); }),
                       "domain 'acme.test' belongs to account 'acme'"));
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::Conflict, [&] { add("acme", "acme.test"); }),
                       "already a domain of account 'acme'"));
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::Conflict, [&] { add("bob", "shop.acme.test"); }),
                       "is under 'acme.test', which belongs to account 'acme'"));
  add("acme", "shop.acme.test", "subdomain", "acme.test");
  // A parent above someone else's names would take their mail and certificates too.
  create("carol", "carol.example");
  add("carol", "deep.corp.example");
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::Conflict, [&] { add("bob", "corp.example"); }),
                       "is above 'deep.corp.example', which belongs to account 'carol'"));
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::Conflict, [&] { create("dave", "shop.acme.test"); }),
                       "belongs to account 'acme'"));
  EXPECT_FALSE(accounts().account("dave"));  // nothing half-written: no account without its domain
}

TEST_P(AccountStoreTest, AliasesAndSubdomainsHangUnderASiteOfTheSameAccount) {
  create("acme", "acme.test");
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::InvalidArgument, [&] { add("acme", "www.acme.test", "alias"); }),
                       "parent"));
  EXPECT_TRUE(contains(
      errorMessageOf(ErrorCode::InvalidArgument, [&] { add("acme", "parked.test", "alias", "other.test"); }),
      "'other.test' is not a domain of account 'acme'"));
  EXPECT_TRUE(contains(
      errorMessageOf(ErrorCode::InvalidArgument, [&] { add("acme", "blog.other.test", "subdomain", "acme.test"); }),
      "must end in '.acme.test'"));
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::InvalidArgument, [&] { add("acme", "x.test", "primary"); }),
                       "secondary, alias or subdomain"));
  const auto alias = add("acme", "www.acme.test", "alias", "acme.test");
  ASSERT_TRUE(alias.event);
  EXPECT_EQ(alias.event->event, "domain.added");
  EXPECT_TRUE(contains(alias.event->payload, R"("domain":"www.acme.test")"));
  EXPECT_EQ(alias.account.revision, 2);
  EXPECT_TRUE(contains(
      errorMessageOf(ErrorCode::InvalidArgument, [&] { add("acme", "m.acme.test", "alias", "www.acme.test"); }),
      "is an alias"));
  add("acme", "blog.acme.test", "subdomain", "acme.test");

  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::Conflict, [&] { accounts().removeDomain("acme", "acme.test"); }),
                       "primary domain"));
  add("acme", "second.test");
  add("acme", "www.second.test", "alias", "second.test");
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::Conflict, [&] { accounts().removeDomain("acme", "second.test"); }),
                       "has domains under it (www.second.test)"));
  const auto removed = accounts().removeDomain("acme", "www.second.test");
  ASSERT_TRUE(removed.event);
  EXPECT_EQ(removed.event->event, "domain.removed");
  EXPECT_FALSE(removed.account.domain("www.second.test"));
  EXPECT_FALSE(accounts().accountOfDomain("www.second.test"));
  EXPECT_EQ(errorMessageOf(ErrorCode::NotFound, [&] { accounts().removeDomain("acme", "gone.test"); }),
            "account 'acme' has no domain 'gone.test'");
}

TEST_P(AccountStoreTest, PlansAreCopiedIntoAccountsAndOnlyApplyChangesThem) {
  accounts().createPlan("basic", "Small sites", {{"http.domains", 2}, {"http.disk_mb", std::nullopt}});
  create("acme", "acme.test", "basic");
  EXPECT_EQ(accounts().account("acme")->limits.at("http.domains"), std::optional<std::int64_t>(2));
  add("acme", "two.test");
  const auto before = accounts().account("acme")->revision;
  EXPECT_EQ(errorMessageOf(ErrorCode::Conflict, [&] { add("acme", "three.test"); }),
            "account 'acme' is at its limit of 2 for http.domains (Domains)");
  EXPECT_EQ(accounts().account("acme")->revision, before);  // the refusal wrote nothing
  EXPECT_FALSE(accounts().accountOfDomain("three.test"));

  accounts().updatePlan("basic", std::nullopt, Limits{{"http.domains", 5}, {"http.disk_mb", 100}});
  EXPECT_EQ(accounts().account("acme")->limits.at("http.domains"), std::optional<std::int64_t>(2));
  EXPECT_EQ(accounts().plan("basic")->accounts, 1);
  const auto applied = accounts().applyPlan("basic");
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].event->event, "account.changed");
  EXPECT_EQ(accounts().account("acme")->limits.at("http.domains"), std::optional<std::int64_t>(5));
  EXPECT_TRUE(accounts().applyPlan("basic").empty());  // already equal: no event
  add("acme", "three.test");

  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::Conflict, [&] { accounts().deletePlan("basic"); }),
                       "plan of 1 account(s)"));
  accounts().changeAccount("acme", AccountEdit{std::string(), Limits{{"http.domains", std::nullopt}}, std::nullopt});
  accounts().deletePlan("basic");
  EXPECT_FALSE(accounts().plan("basic"));
  EXPECT_EQ(accounts().account("acme")->limits.at("http.domains"), std::nullopt);  // unlimited
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::NotFound, [&] { create("bob", "bob.test", "basic"); }),
                       "no plan 'basic'"));
}

TEST_P(AccountStoreTest, AnEditMadeAgainstAnOldRevisionIsRefused) {
  create("acme", "acme.test");
  add("acme", "two.test");  // revision 2
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::Conflict,
                                      [&] {
                                        accounts().changeAccount(
                                            "acme", AccountEdit{std::nullopt, Limits{{"http.domains", 9}}, 1});
                                      }),
                       "at revision 2, not 1"));
  const auto ok = accounts().changeAccount("acme", AccountEdit{std::nullopt, Limits{{"http.domains", 9}}, 2});
  EXPECT_EQ(ok.account.revision, 3);
}

TEST_P(AccountStoreTest, SuspensionCarriesItsReasonAndRepeatingItChangesNothing) {
  create("acme", "acme.test");
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::InvalidArgument, [&] { accounts().suspend("acme", ""); }), "reason"));
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::InvalidArgument, [&] { accounts().suspend("acme", "a\nb"); }),
                       "control characters"));
  const auto s = accounts().suspend("acme", "unpaid invoice 42");
  ASSERT_TRUE(s.event);
  EXPECT_EQ(s.event->event, "account.suspended");
  EXPECT_EQ(s.account.suspendReason, "unpaid invoice 42");
  EXPECT_FALSE(accounts().suspend("acme", "unpaid invoice 42").event);
  const auto u = accounts().unsuspend("acme");
  ASSERT_TRUE(u.event);
  EXPECT_EQ(u.event->event, "account.unsuspended");
  EXPECT_EQ(u.account.state, "active");
  EXPECT_FALSE(accounts().unsuspend("acme").event);
  EXPECT_EQ(errorMessageOf(ErrorCode::NotFound, [&] { accounts().suspend("nobody2", "x"); }), "no account 'nobody2'");
}

TEST_P(AccountStoreTest, TheCertificateIsStoredWithTheAccountAndItsKeyOnlyInTheFullForm) {
  create("acme", "acme.test");
  Certificate c{"cluster-ca", {"acme.test"}, "-----BEGIN CERTIFICATE-----\nx\n", "-----BEGIN PRIVATE KEY-----\ny\n",
                1790000000000, "sha256:ab"};
  const auto change = accounts().setCertificate("acme", c);
  ASSERT_TRUE(change.event);
  const auto a = *accounts().account("acme");
  ASSERT_TRUE(a.certificate);
  EXPECT_EQ(a.certificate->names, std::vector<std::string>{"acme.test"});
  EXPECT_TRUE(contains(toJsonText(a, true), "BEGIN PRIVATE KEY"));
  EXPECT_FALSE(contains(toJsonText(a, false), "BEGIN PRIVATE KEY"));
  EXPECT_FALSE(contains(toJsonText(a, false), "key_pem"));
  accounts().removeAccount("acme");
  EXPECT_EQ(countRows("hosting_certificates"), 0);
}

// ---- owners (auth/UserStore.hpp) go with their account ----

TEST_P(AccountStoreTest, RemovingAnAccountRemovesItsOwnersInTheSameTransaction) {
  create("acme", "acme.test");
  create("beta", "beta.test");
  auth::UserStore users(store(), clock());
  auth::SessionStore sessions(store(), {}, clock());
  users.add("alice", "alice's long password");
  const auto olivia = users.addOwner("olivia", "olivia's long password", "acme");
  const auto bruno = users.addOwner("bruno", "bruno's long password", "beta");
  const auto oliviaSession = sessions.create(olivia.id, "192.0.2.1").token;
  const auto brunoSession = sessions.create(bruno.id, "192.0.2.1").token;
  const auto removeOwners = [](store::Transaction& tx, const std::string& account) {
    auth::removeOwnersOf(tx, account);
  };

  // A failure after the owners went undoes the removal, owners included.
  errorMessageOf(ErrorCode::Failed, [&] {
    accounts().removeAccount("acme", [&](store::Transaction& tx, const std::string& account) {
      removeOwners(tx, account);
      throw Error(ErrorCode::Failed, "refused by the test");
    });
  });
  EXPECT_TRUE(accounts().account("acme"));
  EXPECT_TRUE(users.find("olivia"));
  EXPECT_TRUE(sessions.resume(oliviaSession));

  accounts().removeAccount("acme", removeOwners);
  EXPECT_FALSE(accounts().account("acme"));
  EXPECT_FALSE(users.find("olivia"));
  EXPECT_FALSE(sessions.resume(oliviaSession));
  EXPECT_TRUE(users.find("bruno"));
  EXPECT_TRUE(sessions.resume(brunoSession));
  EXPECT_TRUE(users.find("alice"));
}

TEST_P(AccountStoreTest, AnOwnerAddedWhileItsAccountIsRemovedNeverOutlivesIt) {
  // Each side has a store of its own, as two requests on the manager do.
  auto ownerStore = openMigratedStore();
  auth::UserStore users(*ownerStore, clock());
  users.add("alice", "alice's long password");
  constexpr int kTrials = 6;
  int addedFirst = 0, removedFirst = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    create("acme", "acme.test");
    std::atomic<int> ready{0};
    std::string addError;
    std::thread adder([&] {
      ++ready;
      while (ready.load() < 2) std::this_thread::yield();
      try {
        users.addOwner("olivia", "olivia's long password", "acme");
      } catch (const Error& e) {
        addError = e.what();
      }
    });
    ++ready;
    while (ready.load() < 2) std::this_thread::yield();
    // The password hash takes the adder ~0.1 s before its transaction; vary who comes first.
    std::this_thread::sleep_for(std::chrono::milliseconds(trial * 30));
    accounts().removeAccount("acme", [](store::Transaction& tx, const std::string& account) {
      auth::removeOwnersOf(tx, account);
    });
    adder.join();
    EXPECT_FALSE(users.find("olivia")) << "trial " << trial << ": an owner of a removed account";
    if (addError.empty())
      ++addedFirst;
    else {
      EXPECT_EQ(addError, "no account 'acme'") << "trial " << trial;
      ++removedFirst;
    }
  }
  EXPECT_EQ(addedFirst + removedFirst, kTrials);
}

// ---- delivery ----

class AccountDeliveryTest : public AccountStoreTest {
 protected:
  void SetUp() override {
    AccountStoreTest::SetUp();
    if (HasFatalFailure()) return;
    queue_ = std::make_unique<cluster::CommandQueue>(store(), cluster::QueuePolicy{}, clock());
    AccountServiceHooks hooks;
    hooks.dimensions = [] { return std::vector<LimitDimension>{kDomains, kDisk}; };
    hooks.enqueue = [this](const cluster::CommandRequest& request, const std::string& key) {
      log_.push_back("enqueue " + request.kind + " key=" + request.orderingKey);
      std::vector<std::int64_t> ids;
      for (const auto& c : queue_->enqueueOnce(key, {request}, false).commands) ids.push_back(c.id);
      return ids;
    };
    hooks.dispatch = [this](const std::string& event, const std::string& payload) {
      if (failDispatch_) throw std::runtime_error("hook store unavailable");
      log_.push_back("dispatch " + event);
      payloads_.push_back(payload);
      return std::vector<std::int64_t>{};
    };
    service_ = std::make_unique<AccountService>(store(), AccountStoreSettings{20000, "/srv/shoal"}, hooks, clock());
    enrolNode("web1", {"http"});
    enrolNode("web2", {"http"});
  }

  std::unique_ptr<cluster::CommandQueue> queue_;
  std::unique_ptr<AccountService> service_;
  std::vector<std::string> log_, payloads_;
  bool failDispatch_ = false;
};

TEST_P(AccountDeliveryTest, TheIdentityIsEnqueuedBeforeTheEventOnCreateAndAfterItOnRemoval) {
  const auto created = service_->createAccount(NewAccount{"acme", normalizeDomain("acme.test"), "", std::nullopt});
  ASSERT_EQ(created.commands.size(), 1u);
  const auto command = queue_->find(created.commands[0]);
  ASSERT_TRUE(command);
  EXPECT_EQ(command->kind, "account.identity.put");
  EXPECT_EQ(command->orderingKey, "account:acme");
  EXPECT_EQ(command->deliveries.size(), 2u);  // every node
  EXPECT_EQ(command->payloadJson, R"({"name":"acme","uid":20000,"gid":20000,"home":"/srv/shoal/acme"})");
  service_->addDomain("acme", NewDomain{normalizeDomain("www.acme.test"), "alias", "acme.test", ""});
  service_->suspend("acme", "abuse report");
  service_->removeAccount("acme");
  EXPECT_EQ(log_, (std::vector<std::string>{"enqueue account.identity.put key=account:acme", "dispatch account.created",
                                            "dispatch domain.added", "dispatch account.suspended",
                                            "dispatch account.removed",
                                            "enqueue account.identity.remove key=account:acme"}));
  EXPECT_TRUE(contains(payloads_.back(), R"("state":"suspended")"));  // the state it had
  EXPECT_TRUE(service_->store().outbox().empty());
}

TEST_P(AccountDeliveryTest, AnUndeliveredEventWaitsInTheOutboxAndItsIdentityIsEnqueuedOnce) {
  failDispatch_ = true;
  const auto created = service_->createAccount(NewAccount{"acme", normalizeDomain("acme.test"), "", std::nullopt});
  EXPECT_TRUE(contains(created.deliveryError, "hook store unavailable")) << created.deliveryError;
  EXPECT_EQ(created.account.name, "acme");  // the change itself is saved
  EXPECT_EQ(service_->store().outbox().size(), 1u);
  EXPECT_TRUE(service_->deliveryPending());
  EXPECT_EQ(service_->deliverPending(), 0u);  // still failing: kept

  // A manager that starts again (a new service on the same store) delivers it, once.
  failDispatch_ = false;
  EXPECT_EQ(service_->deliverPending(), 1u);
  EXPECT_TRUE(service_->store().outbox().empty());
  EXPECT_FALSE(service_->deliveryPending());
  EXPECT_EQ(std::count(log_.begin(), log_.end(), "dispatch account.created"), 1);
  EXPECT_EQ(std::count(log_.begin(), log_.end(), "enqueue account.identity.put key=account:acme"), 3);
  EXPECT_EQ(queue_->list(100).size(), 1u);  // three tries, one command
}

TEST_P(AccountDeliveryTest, ARequestWhoseChangeAnotherThreadDeliveredStillAnswersItsCommands) {
  // acme's event waits in the outbox; the sweeper's delivery of it is held inside the hook.
  failDispatch_ = true;
  service_->createAccount(NewAccount{"acme", normalizeDomain("acme.test"), "", std::nullopt});
  failDispatch_ = false;
  std::promise<void> entered, release;
  auto releaseFuture = release.get_future().share();
  bool first = true;
  AccountServiceHooks hooks;
  hooks.enqueue = [this](const cluster::CommandRequest& request, const std::string& key) {
    std::vector<std::int64_t> ids;
    for (const auto& c : queue_->enqueueOnce(key, {request}, false).commands) ids.push_back(c.id);
    return ids;
  };
  hooks.dispatch = [&](const std::string&, const std::string&) {
    if (std::exchange(first, false)) {
      entered.set_value();
      releaseFuture.wait();
    }
    return std::vector<std::int64_t>{};
  };
  service_ = std::make_unique<AccountService>(store(), AccountStoreSettings{20000, "/srv/shoal"}, hooks, clock());
  std::thread sweeper([&] { service_->deliverPending(); });
  entered.get_future().wait();

  // beta's request commits while the sweeper holds the delivery, which then delivers beta too.
  std::optional<DeliveredChange> beta;
  std::thread request([&] {
    beta = service_->createAccount(NewAccount{"beta", normalizeDomain("beta.test"), "", std::nullopt});
  });
  while (service_->store().outbox().size() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  release.set_value();
  sweeper.join();
  request.join();

  ASSERT_TRUE(beta);
  EXPECT_EQ(beta->deliveryError, "");
  ASSERT_EQ(beta->commands.size(), 1u) << "the request answered none of the commands its change produced";
  const auto command = queue_->find(beta->commands[0]);
  ASSERT_TRUE(command);
  EXPECT_EQ(command->kind, "account.identity.put");
  EXPECT_EQ(command->orderingKey, "account:beta");
}

TEST_P(AccountDeliveryTest, LimitsMustBeDeclaredAndPluginCountedOnesAreCheckedOnRequest) {
  EXPECT_TRUE(contains(errorMessageOf(ErrorCode::InvalidArgument,
                                      [&] { service_->createPlan("p", "", {{"mail.mailboxes", 3}}); }),
                       "limits.mail.mailboxes: no loaded plugin declares this limit (declared: http.domains, http.disk_mb)"));
  EXPECT_TRUE(contains(
      errorMessageOf(ErrorCode::InvalidArgument, [&] { parseLimitsText(R"({"http.domains": -1})", "limits"); }),
      "limits.http.domains"));
  EXPECT_TRUE(contains(
      errorMessageOf(ErrorCode::InvalidArgument, [&] { parseLimitsText(R"({"http.domains": 1.5})", "limits"); }),
      "whole number"));
  EXPECT_TRUE(contains(
      errorMessageOf(ErrorCode::InvalidArgument, [&] { parseLimitsText(R"({"domains": 1})", "limits"); }),
      "<plugin>.<dimension>"));
  service_->createAccount(NewAccount{"acme", normalizeDomain("acme.test"), "", Limits{{"http.disk_mb", 100}}});
  EXPECT_NO_THROW(service_->checkLimit("acme", "http.disk_mb", 100));
  EXPECT_EQ(errorMessageOf(ErrorCode::Conflict, [&] { service_->checkLimit("acme", "http.disk_mb", 101); }),
            "account 'acme' is at its limit of 100 for http.disk_mb (Disk space (MB))");
  EXPECT_EQ(errorMessageOf(ErrorCode::NotFound, [&] { service_->checkLimit("bob", "http.disk_mb", 1); }),
            "no account 'bob'");
  EXPECT_EQ(errorMessageOf(ErrorCode::NotFound, [&] { service_->checkLimit("acme", "ftp.users", 1); }),
            "no plugin declared the limit 'ftp.users'");
  EXPECT_EQ(errorMessageOf(ErrorCode::Conflict,
                           [&] {
                             service_->createAccount(
                                 NewAccount{"zero", normalizeDomain("zero.test"), "", Limits{{"http.domains", 0}}});
                           }),
            "account 'zero' is at its limit of 0 for http.domains (Domains)");
}

// The cluster CA certifies every account's names from the start, in the same change.
class AccountCertificateTest : public AccountStoreTest {
 protected:
  void SetUp() override {
    AccountStoreTest::SetUp();
    if (HasFatalFailure()) return;
    caDir_ = std::filesystem::temp_directory_path() / ("shoal-hosting-ca-" + std::to_string(::getpid()));
    std::filesystem::remove_all(caDir_);
    std::filesystem::create_directories(caDir_);
    sites_ = std::make_unique<tls::SiteCertificates>(tls::CertificateAuthority::loadOrCreate(caDir_, "test CA"));
    AccountServiceHooks hooks;
    hooks.dimensions = [] { return std::vector<LimitDimension>{kDomains}; };
    hooks.issueClusterCertificate = [this](const std::vector<std::string>& names) {
      ++issued_;
      return sites_->issue(names);
    };
    service_ = std::make_unique<AccountService>(store(), AccountStoreSettings{20000, "/srv/shoal"}, hooks, clock());
  }
  void TearDown() override {
    std::filesystem::remove_all(caDir_);
    AccountStoreTest::TearDown();
  }

  std::filesystem::path caDir_;
  std::unique_ptr<tls::SiteCertificates> sites_;
  std::unique_ptr<AccountService> service_;
  int issued_ = 0;
};

TEST_P(AccountCertificateTest, TheCertificateCoversEveryDomainAndFollowsTheNames) {
  const auto created = service_->createAccount(NewAccount{"acme", normalizeDomain("acme.test"), "", std::nullopt});
  ASSERT_TRUE(created.account.certificate);
  EXPECT_EQ(created.account.certificate->issuer, "cluster-ca");
  EXPECT_EQ(created.account.certificate->names, std::vector<std::string>{"acme.test"});
  EXPECT_TRUE(contains(created.account.certificate->keyPem, "PRIVATE KEY"));
  const auto added = service_->addDomain("acme", NewDomain{normalizeDomain("www.acme.test"), "alias", "acme.test", ""});
  EXPECT_EQ(added.account.certificate->names, (std::vector<std::string>{"acme.test", "www.acme.test"}));
  EXPECT_NE(added.account.certificate->fingerprint, created.account.certificate->fingerprint);
  // A change that leaves the names alone keeps the certificate.
  service_->suspend("acme", "audit");
  EXPECT_EQ(issued_, 2);
  const auto removed = service_->removeDomain("acme", "www.acme.test");
  EXPECT_EQ(removed.account.certificate->names, std::vector<std::string>{"acme.test"});
  EXPECT_EQ(service_->store().account("acme")->certificate->fingerprint, removed.account.certificate->fingerprint);
  // A name too long for a common name does not come first.
  const std::string longName = std::string(60, 'a') + ".example.test";
  const auto other = service_->createAccount(NewAccount{"bob", normalizeDomain(longName), "", std::nullopt});
  EXPECT_FALSE(other.account.certificate);  // no name fits a common name yet
  service_->addDomain("bob", NewDomain{normalizeDomain("bob.test"), "secondary", "", ""});
  EXPECT_EQ(service_->store().account("bob")->certificate->names, (std::vector<std::string>{"bob.test", longName}));
}

SHOAL_INSTANTIATE_FOR_BOTH_BACKENDS(AccountStoreTest);
SHOAL_INSTANTIATE_FOR_BOTH_BACKENDS(AccountCertificateTest);
SHOAL_INSTANTIATE_FOR_BOTH_BACKENDS(AccountDeliveryTest);

}  // namespace
}  // namespace shoal::hosting
