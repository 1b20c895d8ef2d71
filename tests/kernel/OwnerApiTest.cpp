// Owners (docs/adr/0013-hosting-accounts.md, "Tenancy in one place") over the manager's real
// HTTPS API with real panel sessions: two accounts, two owners and an admin. Every route is
// walked as the owner of acme against beta's objects and against the admin's routes.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ManagerFixture.hpp"
#include "manager/ManagerService.hpp"
#include "tls/Contexts.hpp"

using Poco::JSON::Array;
using Poco::JSON::Object;

namespace {

constexpr const char* kPassword = "a long enough password";

struct Reply {
  int status = 0;
  std::string body;
  std::string setCookie;

  Object::Ptr json() const {
    if (body.empty()) return new Object;
    return Poco::JSON::Parser().parse(body).extract<Object::Ptr>();
  }
  std::string errorCode() const { return json()->getObject("error")->getValue<std::string>("code"); }
  std::string errorMessage() const {
    auto o = json();
    return o->has("error") ? o->getObject("error")->getValue<std::string>("message") : body;
  }
};

// A browser signed in to the panel: its session cookie and CSRF token, sent on every request.
class Browser {
 public:
  Browser(std::string endpoint, std::filesystem::path caFile)
      : endpoint_(std::move(endpoint)), caFile_(std::move(caFile)) {}

  Reply signIn(const std::string& user, const std::string& password = kPassword) {
    Object::Ptr body = new Object;
    body->set("user", user);
    body->set("password", password);
    auto reply = raw("POST", "/v1/session", stringify(body), "", "");
    if (reply.status == 200) {
      cookie_ = reply.setCookie.substr(0, reply.setCookie.find(';'));
      csrf_ = reply.json()->getValue<std::string>("csrf_token");
    }
    return reply;
  }

  Reply call(const std::string& method, const std::string& path, Object::Ptr body = new Object) {
    return raw(method, path, stringify(body), cookie_, csrf_);
  }
  // As call, with another CSRF token ("" for none).
  Reply callWithCsrf(const std::string& method, const std::string& path, const std::string& csrf,
                     Object::Ptr body = new Object) {
    return raw(method, path, stringify(body), cookie_, csrf);
  }

 private:
  static std::string stringify(const Object::Ptr& body) {
    std::ostringstream out;
    body->stringify(out);
    return out.str();
  }

  Reply raw(const std::string& method, const std::string& path, const std::string& body, const std::string& cookie,
            const std::string& csrf) {
    const auto answer = shoal::testing::browserCall(endpoint_, caFile_, method, path, cookie, csrf, body);
    return Reply{answer.status, answer.body, answer.setCookie};
  }

  std::string endpoint_;
  std::filesystem::path caFile_;
  std::string cookie_, csrf_;
};

Object::Ptr fields(std::initializer_list<std::pair<std::string, std::string>> values) {
  Object::Ptr o = new Object;
  for (const auto& [k, v] : values) o->set(k, v);
  return o;
}

class OwnerApiTest : public shoal::testing::ManagerFixture {
 protected:
  void SetUp() override {
    ManagerFixture::SetUp();
    if (HasFatalFailure()) return;
    auto admin = client(adminToken_);
    for (const auto& [name, domain] : {std::pair{"acme", "acme.test"}, std::pair{"beta", "beta.test"}}) {
      auto reply = admin.call("POST", "/v1/accounts", fields({{"name", name}, {"domain", domain}}));
      ASSERT_EQ(reply.status, 201) << reply.errorMessage();
    }
    for (const auto& [user, account] : {std::pair{"olivia", "acme"}, std::pair{"bruno", "beta"}}) {
      auto reply = admin.call("POST", "/v1/users",
                              fields({{"name", user}, {"password", kPassword}, {"kind", "owner"}, {"account", account}}));
      ASSERT_EQ(reply.status, 201) << reply.errorMessage();
    }
    auto reply = admin.call("POST", "/v1/users", fields({{"name", "alice"}, {"password", kPassword}}));
    ASSERT_EQ(reply.status, 201) << reply.errorMessage();
  }

  Browser browser() { return Browser(manager_->advertisedEndpoint(), manager_->caFile()); }
  Browser signedIn(const std::string& user) {
    auto b = browser();
    auto reply = b.signIn(user);
    EXPECT_EQ(reply.status, 200) << user << ": " << reply.body;
    return b;
  }

  std::vector<std::string> domainsOf(const std::string& account) {
    auto admin = client(adminToken_);
    auto reply = admin.call("GET", "/v1/accounts/" + account + "/domains");
    EXPECT_EQ(reply.status, 200) << reply.errorMessage();
    std::vector<std::string> out;
    auto list = reply.body->getArray("domains");
    for (std::size_t i = 0; i < list->size(); ++i)
      out.push_back(list->getObject(static_cast<unsigned>(i))->getValue<std::string>("name"));
    return out;
  }
};

// A route's path with its parameters filled in: {name} the account, {domain} a domain of it,
// anything else "1".
std::string pathFor(const std::string& pattern, const std::string& account, const std::string& domain) {
  std::string path = std::regex_replace(pattern, std::regex("\\{name\\}"), account);
  path = std::regex_replace(path, std::regex("\\{domain\\}"), domain);
  return std::regex_replace(path, std::regex("\\{[a-z_.]+\\}"), "1");
}

}  // namespace

TEST_F(OwnerApiTest, UsersAreAdminsOrOwnersOfAnAccountThatExists) {
  auto admin = client(adminToken_);
  auto list = admin.call("GET", "/v1/users");
  ASSERT_EQ(list.status, 200) << list.errorMessage();
  std::map<std::string, std::pair<std::string, std::string>> kinds;
  auto users = list.body->getArray("users");
  for (std::size_t i = 0; i < users->size(); ++i) {
    auto u = users->getObject(static_cast<unsigned>(i));
    kinds[u->getValue<std::string>("name")] = {u->getValue<std::string>("kind"), u->getValue<std::string>("account")};
  }
  EXPECT_EQ(kinds["alice"], (std::pair<std::string, std::string>{"admin", ""}));
  EXPECT_EQ(kinds["olivia"], (std::pair<std::string, std::string>{"owner", "acme"}));
  EXPECT_EQ(kinds["bruno"], (std::pair<std::string, std::string>{"owner", "beta"}));

  struct Refusal {
    Object::Ptr body;
    int status;
    std::string message;
  };
  const std::vector<Refusal> refusals{
      {fields({{"name", "otto"}, {"password", kPassword}, {"kind", "owner"}}), 400, "field 'account' is required"},
      {fields({{"name", "otto"}, {"password", kPassword}, {"account", "acme"}}), 400, "field 'account' is only for"},
      {fields({{"name", "otto"}, {"password", kPassword}, {"kind", "root"}}), 400, "field 'kind' must be"},
      {fields({{"name", "otto"}, {"password", kPassword}, {"kind", "owner"}, {"account", "ghost"}}), 404,
       "no account 'ghost'"},
      {fields({{"name", "otto"}, {"password", kPassword}, {"kind", "owner"}, {"account", "Not A Name"}}), 400,
       "account"},
      {fields({{"name", "otto"}, {"password", kPassword}, {"role", "owner"}}), 400, "field 'role' is not a field"},
  };
  for (const auto& refusal : refusals) {
    auto reply = admin.call("POST", "/v1/users", refusal.body);
    EXPECT_EQ(reply.status, refusal.status) << reply.errorMessage();
    EXPECT_NE(reply.errorMessage().find(refusal.message), std::string::npos) << reply.errorMessage();
  }
  // The manager's first admin, alice and the two owners.
  EXPECT_EQ(admin.call("GET", "/v1/users").body->getArray("users")->size(), 4u) << "no refused user was added";

  // The session says who is signed in, so the panel shows an owner only the account's pages.
  auto olivia = browser();
  auto login = olivia.signIn("olivia");
  ASSERT_EQ(login.status, 200) << login.body;
  EXPECT_EQ(login.json()->getObject("user")->getValue<std::string>("kind"), "owner");
  EXPECT_EQ(login.json()->getObject("user")->getValue<std::string>("account"), "acme");
  auto session = olivia.call("GET", "/v1/session");
  ASSERT_EQ(session.status, 200);
  EXPECT_EQ(session.json()->getObject("user")->getValue<std::string>("kind"), "owner");
  EXPECT_EQ(session.json()->getObject("user")->getValue<std::string>("account"), "acme");
  auto alice = signedIn("alice");
  auto adminSession = alice.call("GET", "/v1/session");
  EXPECT_EQ(adminSession.json()->getObject("user")->getValue<std::string>("kind"), "admin");
  EXPECT_EQ(adminSession.json()->getObject("user")->getValue<std::string>("account"), "");
}

TEST_F(OwnerApiTest, AnOwnerReadsAndChangesItsOwnAccount) {
  auto olivia = signedIn("olivia");
  auto account = olivia.call("GET", "/v1/accounts/acme");
  ASSERT_EQ(account.status, 200) << account.body;
  EXPECT_EQ(account.json()->getValue<std::string>("name"), "acme");
  EXPECT_EQ(account.body.find("PRIVATE KEY"), std::string::npos) << "the key is never shown";
  EXPECT_EQ(account.body.find("key_pem"), std::string::npos);

  auto list = olivia.call("GET", "/v1/accounts");
  ASSERT_EQ(list.status, 200) << list.body;
  auto accounts = list.json()->getArray("accounts");
  ASSERT_EQ(accounts->size(), 1u) << list.body;
  EXPECT_EQ(accounts->getObject(0)->getValue<std::string>("name"), "acme");
  EXPECT_EQ(olivia.call("GET", "/v1/limits").status, 200);

  auto added = olivia.call("POST", "/v1/accounts/acme/domains",
                           fields({{"name", "www.acme.test"}, {"kind", "alias"}, {"parent", "acme.test"}}));
  ASSERT_EQ(added.status, 201) << added.body;
  EXPECT_EQ(domainsOf("acme"), (std::vector<std::string>{"acme.test", "www.acme.test"}));
  auto domains = olivia.call("GET", "/v1/accounts/acme/domains");
  ASSERT_EQ(domains.status, 200);
  EXPECT_EQ(domains.json()->getArray("domains")->size(), 2u);
  auto removed = olivia.call("DELETE", "/v1/accounts/acme/domains/www.acme.test");
  ASSERT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(domainsOf("acme"), (std::vector<std::string>{"acme.test"}));

  // Changes of an owner are audited like an admin's, under the owner's name.
  auto admin = client(adminToken_);
  std::set<std::string> actions;
  for (int attempt = 0; attempt < 50 && actions.size() < 2; ++attempt) {
    actions.clear();
    auto entries = admin.call("GET", "/v1/audit?limit=100").body->getArray("entries");
    for (std::size_t i = 0; i < entries->size(); ++i) {
      auto e = entries->getObject(static_cast<unsigned>(i));
      if (e->getValue<std::string>("actor") == "user:olivia" && e->getValue<std::string>("outcome") == "ok" &&
          e->getValue<std::string>("action") != "sign in")
        actions.insert(e->getValue<std::string>("action"));
    }
    if (actions.size() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(actions, (std::set<std::string>{"POST /v1/accounts/{name}/domains",
                                            "DELETE /v1/accounts/{name}/domains/{domain}"}));
  EXPECT_EQ(olivia.call("DELETE", "/v1/session").status, 200) << "an owner signs out";
  EXPECT_EQ(olivia.call("GET", "/v1/accounts/acme").status, 401);
}

TEST_F(OwnerApiTest, AnOwnerIsRefusedEveryOtherAccountAndEveryAdminRoute) {
  auto olivia = signedIn("olivia");
  const auto betaBefore = domainsOf("beta");
  std::set<std::string> accountRoutes, adminRoutes;
  for (const auto& route : manager_->routes()) {
    const std::string where = route.method + " " + route.pattern;
    if (route.access == shoal::api::Access::Account) {
      accountRoutes.insert(where);
      // Another account's name, existing or not, is answered as if there were no such account.
      for (const std::string other : {"beta", "ghost"}) {
        auto reply = olivia.call(route.method, pathFor(route.pattern, other, other + ".test"),
                                 fields({{"name", "www." + other + ".test"}}));
        EXPECT_EQ(reply.status, 404) << where << " for " << other << ": " << reply.body;
        EXPECT_EQ(reply.errorMessage(), "no account '" + other + "'") << where;
      }
    } else if (route.access == shoal::api::Access::Admin) {
      adminRoutes.insert(where);
      for (const std::string account : {"acme", "beta"}) {
        auto reply = olivia.call(route.method, pathFor(route.pattern, account, account + ".test"));
        EXPECT_EQ(reply.status, 403) << where << ": " << reply.body;
        EXPECT_EQ(reply.errorCode(), "owner") << where;
        EXPECT_EQ(reply.errorMessage(), "owners may only reach their own account") << where;
      }
    }
  }
  EXPECT_EQ(accountRoutes, (std::set<std::string>{"GET /v1/accounts/{name}", "GET /v1/accounts/{name}/domains",
                                                  "POST /v1/accounts/{name}/domains",
                                                  "DELETE /v1/accounts/{name}/domains/{domain}"}));
  for (const char* expected :
       {"GET /v1/nodes", "GET /v1/commands", "POST /v1/commands", "GET /v1/plans", "POST /v1/plans", "POST /v1/accounts",
        "PUT /v1/accounts/{name}", "DELETE /v1/accounts/{name}", "POST /v1/accounts/{name}/suspend",
        "POST /v1/accounts/{name}/unsuspend", "POST /v1/accounts/resync", "PUT /v1/accounts/{name}/domains/{domain}",
        "GET /v1/users", "POST /v1/users", "GET /v1/audit", "POST /v1/plugins/{plugin}/{path...}"})
    EXPECT_TRUE(adminRoutes.count(expected)) << expected << " should be an admin's route";
  EXPECT_EQ(domainsOf("beta"), betaBefore) << "nothing of beta changed";
  auto admin = client(adminToken_);
  EXPECT_EQ(admin.call("GET", "/v1/accounts/acme").body->getValue<std::string>("state"), "active");
  EXPECT_EQ(admin.call("GET", "/v1/accounts").body->getArray("accounts")->size(), 2u);
}

TEST_F(OwnerApiTest, AnOwnerMayNotSetExtraNginxDirectives) {
  auto olivia = signedIn("olivia");
  auto reply = olivia.call("POST", "/v1/accounts/acme/domains",
                           fields({{"name", "shop.acme.test"}, {"nginx_extra", "client_max_body_size 1m;"}}));
  EXPECT_EQ(reply.status, 403) << reply.body;
  EXPECT_EQ(reply.errorMessage(), "nginx_extra: only an admin may set extra nginx directives");
  // Not even an empty one: the field is the admin's.
  EXPECT_EQ(olivia.call("POST", "/v1/accounts/acme/domains", fields({{"name", "shop.acme.test"}, {"nginx_extra", ""}}))
                .status,
            403);
  EXPECT_EQ(olivia.call("PUT", "/v1/accounts/acme/domains/acme.test", fields({{"nginx_extra", "gzip on;"}})).status, 403);
  EXPECT_EQ(domainsOf("acme"), (std::vector<std::string>{"acme.test"}));
  // The admin may.
  auto alice = signedIn("alice");
  EXPECT_EQ(alice.call("POST", "/v1/accounts/acme/domains",
                       fields({{"name", "shop.acme.test"}, {"nginx_extra", "client_max_body_size 1m;"}}))
                .status,
            201);
}

TEST_F(OwnerApiTest, AnOwnersChangesNeedTheSessionsCsrfToken) {
  auto olivia = signedIn("olivia");
  for (const std::string& csrf : {std::string(), std::string("not-the-token")}) {
    auto reply = olivia.callWithCsrf("POST", "/v1/accounts/acme/domains", csrf, fields({{"name", "shop.acme.test"}}));
    EXPECT_EQ(reply.status, 403) << reply.body;
    EXPECT_EQ(reply.errorCode(), "csrf");
    EXPECT_EQ(olivia.callWithCsrf("DELETE", "/v1/accounts/acme/domains/acme.test", csrf).status, 403);
    EXPECT_EQ(olivia.callWithCsrf("DELETE", "/v1/session", csrf).status, 403);
  }
  EXPECT_EQ(domainsOf("acme"), (std::vector<std::string>{"acme.test"}));
  EXPECT_EQ(olivia.callWithCsrf("GET", "/v1/accounts/acme", "").status, 200) << "reading needs no token";
}

TEST_F(OwnerApiTest, TheOwnerOfASuspendedAccountReadsButChangesNothing) {
  auto admin = client(adminToken_);
  auto suspended = admin.call("POST", "/v1/accounts/acme/suspend", fields({{"reason", "unpaid invoice"}}));
  ASSERT_EQ(suspended.status, 200) << suspended.errorMessage();
  auto olivia = signedIn("olivia");  // signing in still works
  EXPECT_EQ(olivia.call("GET", "/v1/accounts/acme").json()->getValue<std::string>("state"), "suspended");
  EXPECT_EQ(olivia.call("GET", "/v1/accounts/acme/domains").status, 200);
  auto refused = olivia.call("POST", "/v1/accounts/acme/domains", fields({{"name", "shop.acme.test"}}));
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_EQ(refused.errorMessage(), "account 'acme' is suspended (unpaid invoice)");
  EXPECT_EQ(olivia.call("DELETE", "/v1/accounts/acme/domains/acme.test").status, 409);
  EXPECT_EQ(olivia.call("POST", "/v1/accounts/acme/unsuspend").status, 403) << "lifting it is the admin's";
  EXPECT_EQ(domainsOf("acme"), (std::vector<std::string>{"acme.test"}));

  // An admin may change a suspended account; once lifted the owner may again.
  EXPECT_EQ(admin.call("POST", "/v1/accounts/acme/domains", fields({{"name", "shop.acme.test"}})).status, 201);
  ASSERT_EQ(admin.call("POST", "/v1/accounts/acme/unsuspend").status, 200);
  EXPECT_EQ(olivia.call("DELETE", "/v1/accounts/acme/domains/shop.acme.test").status, 200);
}

TEST_F(OwnerApiTest, TheOwnerOfARemovedAccountLosesAccessAtOnce) {
  auto olivia = signedIn("olivia");
  auto bruno = signedIn("bruno");
  ASSERT_EQ(olivia.call("GET", "/v1/accounts/acme").status, 200);
  auto admin = client(adminToken_);
  auto removed = admin.call("DELETE", "/v1/accounts/acme");
  ASSERT_EQ(removed.status, 200) << removed.errorMessage();
  // The very next request: the session went with the account.
  EXPECT_EQ(olivia.call("GET", "/v1/accounts/acme").status, 401);
  EXPECT_EQ(olivia.call("GET", "/v1/accounts").status, 401);
  EXPECT_EQ(olivia.call("GET", "/v1/session").json()->get("user").isEmpty(), true);
  EXPECT_EQ(browser().signIn("olivia").status, 401) << "and the owner with it";
  std::set<std::string> names;
  auto users = admin.call("GET", "/v1/users").body->getArray("users");
  for (std::size_t i = 0; i < users->size(); ++i)
    names.insert(users->getObject(static_cast<unsigned>(i))->getValue<std::string>("name"));
  EXPECT_EQ(names, (std::set<std::string>{"admin", "alice", "bruno"}));
  // A new account of the same name inherits no owner.
  ASSERT_EQ(admin.call("POST", "/v1/accounts", fields({{"name", "acme"}, {"domain", "acme.test"}})).status, 201);
  EXPECT_EQ(browser().signIn("olivia").status, 401);
  // The other owner keeps their session.
  EXPECT_EQ(bruno.call("GET", "/v1/accounts/beta").status, 200);
}

TEST_F(OwnerApiTest, TwoOwnersWorkingAtOnceEachReachOnlyTheirOwn) {
  constexpr int kDomains = 8;
  struct Owner {
    std::string user, account, other;
  };
  const std::vector<Owner> owners{{"olivia", "acme", "beta"}, {"bruno", "beta", "acme"}};
  std::vector<Browser> browsers;
  for (const auto& o : owners) browsers.push_back(signedIn(o.user));
  std::vector<std::string> failures(owners.size());
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < owners.size(); ++i)
    threads.emplace_back([&, i] {
      const auto& o = owners[i];
      ++ready;
      while (ready.load() < static_cast<int>(owners.size())) std::this_thread::yield();
      for (int n = 0; n < kDomains; ++n) {
        const std::string domain = "s" + std::to_string(n) + "." + o.account + ".test";
        auto added = browsers[i].call("POST", "/v1/accounts/" + o.account + "/domains", fields({{"name", domain}}));
        if (added.status != 201) failures[i] += domain + ": " + std::to_string(added.status) + " " + added.body + "\n";
        // Interleaved with the other owner's requests: theirs stays out of reach.
        auto intruding = browsers[i].call("POST", "/v1/accounts/" + o.other + "/domains",
                                          fields({{"name", "x" + std::to_string(n) + "." + o.account + ".test"}}));
        if (intruding.status != 404) failures[i] += "reached " + o.other + ": " + intruding.body + "\n";
        auto read = browsers[i].call("GET", "/v1/accounts/" + o.other);
        if (read.status != 404) failures[i] += "read " + o.other + ": " + read.body + "\n";
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& f : failures) EXPECT_EQ(f, "");
  for (const auto& o : owners) {
    const auto domains = domainsOf(o.account);
    EXPECT_EQ(domains.size(), static_cast<std::size_t>(kDomains + 1)) << o.account;
    for (const auto& d : domains)
      EXPECT_TRUE(d.size() >= o.account.size() + 5 && d.substr(d.size() - o.account.size() - 5) == o.account + ".test")
          << o.account << " holds " << d;
  }
}
