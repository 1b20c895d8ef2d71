// The manager's HTTPS API over real TLS on 127.0.0.1: authentication of every route and
// enrolment's refusals, through the same client code a node uses.
#include <Poco/AutoPtr.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Logger.h>
#include <Poco/StreamChannel.h>
#include <Poco/Util/MapConfiguration.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <map>
#include <sstream>
#include <thread>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "agent/ManagerClient.hpp"
#include "agent/NodeAgent.hpp"
#include "api/JoinToken.hpp"
#include "common/Error.hpp"
#include "common/Platform.hpp"
#include "common/Text.hpp"
#include "host/HostApi.hpp"
#include "host/PluginHost.hpp"
#include "host/PluginMetrics.hpp"
#include "host/StatsSample.hpp"
#include "manager/ManagerService.hpp"
#include "shoal/BuildInfo.hpp"
#include "store/DocumentStore.hpp"
#include "store/Store.hpp"
#include "tls/Contexts.hpp"
#include "ManagerFixture.hpp"

namespace fs = std::filesystem;
using Poco::JSON::Object;
using shoal::agent::ApiReply;
using shoal::agent::ManagerClient;
using shoal::testing::browserCall;
using shoal::testing::RawReply;

namespace {

class ManagerApiTest : public shoal::testing::ManagerFixture {
 protected:
  std::size_t nodeCount() {
    auto admin = client(adminToken_);
    return admin.call("GET", "/v1/nodes?all=1").body->getArray("nodes")->size();
  }
};

std::string concrete(const std::string& pattern) { return std::regex_replace(pattern, std::regex("\\{[a-z_.]+\\}"), "1"); }

}  // namespace

TEST_F(ManagerApiTest, EveryRouteRefusesUnauthenticatedCalls) {
  // A real node credential, to show that it opens no admin route and vice versa.
  auto enrolled = join(joinToken(), report());
  ASSERT_EQ(enrolled.status, 201) << enrolled.errorMessage();
  const std::string nodeCredential = enrolled.body->getValue<std::string>("credential");

  ASSERT_GE(manager_->routes().size(), 14u);
  // Open to anyone: signing in and the panel's static pages, nothing else.
  std::set<std::string> publicRoutes;
  for (const auto& route : manager_->routes())
    if (route.access == shoal::api::Access::Public) publicRoutes.insert(route.method + " " + route.pattern);
  EXPECT_EQ(publicRoutes, (std::set<std::string>{"POST /v1/session", "GET /v1/session", "GET /", "GET /panel", "GET /panel/{file...}"}));
  for (const auto& route : manager_->routes()) {
    if (route.access == shoal::api::Access::Public) continue;
    const std::string path = concrete(route.pattern);
    std::vector<std::string> refused{"", "shoal-admin-not-the-token", "x"};
    if (route.access != shoal::api::Access::Node) refused.push_back(nodeCredential);
    const bool userRoute = route.access == shoal::api::Access::Admin || route.access == shoal::api::Access::Account ||
                           route.access == shoal::api::Access::SignedIn;
    if (!userRoute && route.access != shoal::api::Access::Join) refused.push_back(adminToken_);
    for (const auto& bearer : refused) {
      auto c = client(bearer);
      auto reply = c.call(route.method, path, new Object);
      EXPECT_EQ(reply.status, 401) << route.method << " " << path << " with bearer '" << bearer.substr(0, 16) << "'";
    }
  }
}

TEST_F(ManagerApiTest, EveryRouteRefusesForgedSessionsAndChangesWithoutTheCsrfToken) {
  manager_->users().add("alice", "alice's long password");
  const auto endpoint = manager_->advertisedEndpoint();
  auto login = browserCall(endpoint, manager_->caFile(), "POST", "/v1/session", "",
                           "", R"({"user": "alice", "password": "alice's long password"})");
  ASSERT_EQ(login.status, 200) << login.body;
  const std::string cookie = login.setCookie.substr(0, login.setCookie.find(';'));
  const auto csrf = Poco::JSON::Parser().parse(login.body).extract<Object::Ptr>()->getValue<std::string>("csrf_token");

  for (const auto& route : manager_->routes()) {
    if (route.access == shoal::api::Access::Public) continue;
    const std::string path = concrete(route.pattern);
    const std::string where = route.method + " " + path;
    // A cookie that is no session, with or without a token, opens nothing.
    for (const std::string& forged : {std::string("shoal_session=forged"), std::string("shoal_session="),
                                      std::string("other=") + cookie.substr(cookie.find('=') + 1)})
      EXPECT_EQ(browserCall(endpoint, manager_->caFile(), route.method, path, forged, csrf).status, 401)
          << where << " with cookie " << forged;
    // A session never opens the nodes' and enrolment routes.
    if (route.access == shoal::api::Access::Node || route.access == shoal::api::Access::Join) {
      EXPECT_EQ(browserCall(endpoint, manager_->caFile(), route.method, path, cookie, csrf).status, 401) << where;
      continue;
    }
    // A real session changes nothing without its CSRF token, nor with another.
    if (route.method != "GET") {
      EXPECT_EQ(browserCall(endpoint, manager_->caFile(), route.method, path, cookie, "").status, 403) << where;
      EXPECT_EQ(browserCall(endpoint, manager_->caFile(), route.method, path, cookie, csrf + "x").status, 403) << where;
    }
  }
  // And the session itself works: a read, and a change with the token.
  EXPECT_EQ(browserCall(endpoint, manager_->caFile(), "GET", "/v1/nodes", cookie, "").status, 200);
  EXPECT_EQ(browserCall(endpoint, manager_->caFile(), "POST", "/v1/join-tokens", cookie, csrf).status, 201);
}

TEST_F(ManagerApiTest, AdminTokenOpensAdminRoutes) {
  auto admin = client(adminToken_);
  auto reply = admin.call("GET", "/v1/cluster");
  ASSERT_EQ(reply.status, 200) << reply.errorMessage();
  EXPECT_EQ(reply.body->getValue<std::string>("ca_fingerprint"), manager_->caFingerprint());
}

TEST_F(ManagerApiTest, JoinTokenEnrolsOnceAndIsThenUsedUp) {
  auto token = joinToken();
  auto first = join(token, report());
  ASSERT_EQ(first.status, 201) << first.errorMessage();
  EXPECT_EQ(first.body->getObject("node")->getValue<std::string>("hostname"), "node-a");
  auto second = join(token, report());
  EXPECT_EQ(second.status, 401);
  EXPECT_NE(second.errorMessage().find("already used"), std::string::npos) << second.errorMessage();
  EXPECT_EQ(nodeCount(), 1u);
}

TEST_F(ManagerApiTest, WrongOsOrArchOrVersionIsRefusedAndNothingIsEnrolled) {
  auto token = joinToken();
  auto otherOs = report();
  otherOs->set("os_id", "plan9");
  auto reply = join(token, otherOs);
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.errorMessage().find("plan9"), std::string::npos) << reply.errorMessage();

  auto otherArch = report();
  otherArch->set("arch", "riscv64");
  reply = join(token, otherArch);
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.errorMessage().find("riscv64"), std::string::npos) << reply.errorMessage();

  auto otherVersion = report();
  otherVersion->set("shoal_version", "99.0.0");
  reply = join(token, otherVersion);
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.errorMessage().find("99.0.0"), std::string::npos) << reply.errorMessage();
  EXPECT_EQ(nodeCount(), 0u);

  // The refusals did not use the token up.
  EXPECT_EQ(join(token, report()).status, 201);
}

TEST_F(ManagerApiTest, RemovedNodesCredentialIsRefused) {
  auto enrolled = join(joinToken(), report());
  ASSERT_EQ(enrolled.status, 201);
  auto node = client(enrolled.body->getValue<std::string>("credential"));
  EXPECT_EQ(node.call("POST", "/v1/node/heartbeat").status, 200);
  auto admin = client(adminToken_);
  auto id = enrolled.body->getObject("node")->getValue<std::int64_t>("id");
  EXPECT_EQ(admin.call("DELETE", "/v1/nodes/" + std::to_string(id)).status, 200);
  auto refused = node.call("POST", "/v1/node/heartbeat");
  EXPECT_EQ(refused.status, 401);
  EXPECT_FALSE(refused.errorMessage().empty());
}

TEST_F(ManagerApiTest, NodePinsTheCaAndRefusesAManagerWithAnotherOne) {
  auto token = shoal::api::decodeJoinToken(joinToken());
  token.caFingerprint = "sha256:" + std::string(64, 'a');
  const auto nodeDir = dir_ / "node";
  try {
    shoal::agent::NodeAgent::enrol(nodeDir, shoal::api::encodeJoinToken(token), "127.0.0.1");
    FAIL() << "enrolment with a wrong CA fingerprint succeeded";
  } catch (const shoal::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach the manager"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(shoal::agent::NodeAgent::identityFile(nodeDir)));
  EXPECT_EQ(nodeCount(), 0u);
}

TEST_F(ManagerApiTest, NodeEnrolsWithATokenAndSavesThePinnedCa) {
  const auto nodeDir = dir_ / "node";
  auto identity = shoal::agent::NodeAgent::enrol(nodeDir, joinToken(), "127.0.0.1");
  EXPECT_GT(identity.nodeId, 0);
  std::ifstream ca(identity.caFile);
  std::string pem((std::istreambuf_iterator<char>(ca)), std::istreambuf_iterator<char>());
  EXPECT_EQ(shoal::tls::fingerprintOfPem(pem), manager_->caFingerprint());
  EXPECT_EQ((fs::status(shoal::agent::NodeAgent::identityFile(nodeDir)).permissions() & fs::perms::others_read),
            fs::perms::none);
  // A second join on an enrolled node is refused and changes nothing.
  EXPECT_THROW(shoal::agent::NodeAgent::enrol(nodeDir, joinToken(), "127.0.0.1"), shoal::Error);
}

namespace {

// Requests one after another on one keep-alive TLS connection, as a flooding client sends them.
class Flood {
 public:
  Flood(const std::string& endpoint, const fs::path& caFile)
      : session_(endpoint.substr(0, endpoint.rfind(':')),
                 static_cast<Poco::UInt16>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1))),
                 shoal::tls::makeClientContext(caFile)) {
    session_.setKeepAlive(true);
  }
  int post(const std::string& path, const std::string& body) {
    Poco::Net::HTTPRequest request("POST", path, Poco::Net::HTTPMessage::HTTP_1_1);
    request.setKeepAlive(true);
    request.setContentType("application/json");
    request.setContentLength(static_cast<std::streamsize>(body.size()));
    session_.sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    auto& in = session_.receiveResponse(response);
    in.ignore(std::numeric_limits<std::streamsize>::max());
    return response.getStatus();
  }

 private:
  Poco::Net::HTTPSClientSession session_;
};

std::string signInBody(const std::string& user) {
  return R"({"user": ")" + user + R"(", "password": "not the password"})";
}

}  // namespace

// Each throttled sign-in used to add an audit row (5.4 MB/s from one address). Now the cheap
// refusals of one source are counted in one row per minute, and the counts add up.
TEST_F(ManagerApiTest, AFloodOfThrottledSignInsAddsOneAuditRowPerSourceAndMinute) {
  manager_->users().add("alice", "alice's long password");
  Flood flood(manager_->advertisedEndpoint(), manager_->caFile());
  std::map<int, int> statuses;
  // Names no user can have cost no password check; after 20 the address is throttled.
  for (int i = 0; i < 2000; ++i) ++statuses[flood.post("/v1/session", signInBody("no such user " + std::to_string(i)))];
  // Throttled whatever the name, a real one included.
  for (int i = 0; i < 100; ++i) ++statuses[flood.post("/v1/session", signInBody("alice"))];
  // And a change without credentials, which the audit log records as refused.
  for (int i = 0; i < 500; ++i) ++statuses[flood.post("/v1/commands", "{}")];
  EXPECT_EQ(statuses, (std::map<int, int>{{401, 520}, {429, 2080}}));

  auto admin = client(adminToken_);
  auto reply = admin.call("GET", "/v1/audit?limit=1000");
  ASSERT_EQ(reply.status, 200) << reply.errorMessage();
  auto entries = reply.body->getArray("entries");
  std::map<std::string, std::int64_t> counted;
  for (std::size_t i = 0; i < entries->size(); ++i) {
    auto e = entries->getObject(static_cast<unsigned>(i));
    EXPECT_EQ(e->getValue<std::string>("peer_address"), "127.0.0.1");
    counted[e->getValue<std::string>("action") + " " + std::to_string(e->getValue<int>("status"))] +=
        e->getValue<std::int64_t>("count");
  }
  EXPECT_LE(entries->size(), 6u) << "three kinds of refusal, each within at most two clock minutes";
  EXPECT_EQ(counted, (std::map<std::string, std::int64_t>{
                         {"sign in 401", 20}, {"sign in 429", 2080}, {"POST /v1/commands 401", 500}}));
}

// Rows past the retention go when the manager starts (and every minute after).
TEST(ManagerAudit, RowsPastTheRetentionArePrunedAtStart) {
  const fs::path dir = fs::temp_directory_path() / ("shoal-audit-retention-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto store = shoal::store::Store::open({"sqlite", dir});
  store->migrate();
  const auto now = std::chrono::system_clock::now();
  for (int days : {40, 31, 29, 1}) {
    shoal::auth::AuditLog past(*store, [&] { return now - std::chrono::hours(24 * days); });
    past.record({0, {}, "token:admin", "op " + std::to_string(days) + " days ago", "", "ok", 200, "", ""});
  }
  shoal::manager::ManagerSettings settings;
  settings.dataDir = dir;
  settings.listenAddress = "127.0.0.1";
  settings.port = 0;
  settings.advertiseAddress = "127.0.0.1";
  settings.auditRetention = {std::chrono::hours(24 * 30), 1000};
  {
    shoal::manager::ManagerService manager(*store, nullptr, settings);
    std::vector<std::string> kept;
    for (const auto& e : shoal::auth::AuditLog(*store).list(100)) kept.push_back(e.action);
    EXPECT_EQ(kept, (std::vector<std::string>{"op 1 days ago", "op 29 days ago"}));
  }
  store.reset();
  fs::remove_all(dir);
}

TEST_F(ManagerApiTest, MalformedInputGetsAClearError) {
  auto admin = client(adminToken_);
  auto reply = admin.call("POST", "/v1/commands", new Object);
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.errorMessage().find("kind: must be a non-empty string"), std::string::npos) << reply.errorMessage();
  Object::Ptr bad = new Object;
  bad->set("kind", "x.y");
  bad->set("target", "everyone");
  reply = admin.call("POST", "/v1/commands", bad);
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.errorMessage().find("target: must be {\"all\": true}"), std::string::npos) << reply.errorMessage();
  EXPECT_EQ(admin.call("GET", "/v1/nodes/abc").status, 400);
  EXPECT_EQ(admin.call("GET", "/v1/nodes/999").status, 404);
  EXPECT_EQ(admin.call("GET", "/v1/nowhere").status, 404);
  EXPECT_EQ(admin.call("PATCH", "/v1/nodes").status, 405);
}

TEST_F(ManagerApiTest, ConcurrentDeletesOfEveryPanelUserLeaveOneAndTheLastIsRefusedWith409) {
  auto admin = client(adminToken_);
  auto userNames = [&] {
    std::vector<std::string> names;
    auto list = admin.call("GET", "/v1/users").body->getArray("users");
    for (std::size_t i = 0; i < list->size(); ++i)
      names.push_back(list->getObject(static_cast<unsigned>(i))->getValue<std::string>("name"));
    return names;
  };
  ASSERT_EQ(userNames().size(), 1u) << "the manager makes its first admin at start";
  for (int trial = 0; trial < 10; ++trial) {
    for (const char* suffix : {"a", "b"}) {
      Object::Ptr body = new Object;
      body->set("name", "user" + std::to_string(trial) + suffix);
      body->set("password", "a long enough password");
      ASSERT_EQ(admin.call("POST", "/v1/users", body).status, 201);
    }
    const auto names = userNames();
    ASSERT_EQ(names.size(), 3u);
    // Two requests for each user, all at once, each on its own connection.
    std::vector<int> statuses(2 * names.size());
    std::vector<std::string> messages(statuses.size());
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < statuses.size(); ++i)
      threads.emplace_back([&, i] {
        auto own = client(adminToken_);
        ++ready;
        while (ready.load() < static_cast<int>(statuses.size())) std::this_thread::yield();
        auto reply = own.call("DELETE", "/v1/users/" + names[i % names.size()]);
        statuses[i] = reply.status;
        messages[i] = reply.errorMessage();
      });
    for (auto& t : threads) t.join();
    ASSERT_EQ(userNames().size(), 1u) << "trial " << trial;
    int refused = 0;
    for (std::size_t i = 0; i < statuses.size(); ++i) {
      EXPECT_TRUE(statuses[i] == 200 || statuses[i] == 404 || statuses[i] == 409) << statuses[i] << " " << messages[i];
      if (statuses[i] == 409) {
        ++refused;
        EXPECT_NE(messages[i].find("is the last admin"), std::string::npos) << messages[i];
      }
    }
    EXPECT_GE(refused, 1) << "trial " << trial;
  }
  const auto last = userNames();
  ASSERT_EQ(last.size(), 1u);
  auto reply = admin.call("DELETE", "/v1/users/" + last.front());
  EXPECT_EQ(reply.status, 409);
  EXPECT_NE(reply.errorMessage().find("\"" + last.front() + "\" is the last admin and cannot be removed"),
            std::string::npos)
      << reply.errorMessage();
}

TEST_F(ManagerApiTest, AMaintenanceServiceNameMustBeAServiceName) {
  auto enrolled = join(joinToken(), report());
  ASSERT_EQ(enrolled.status, 201) << enrolled.errorMessage();
  const auto path = "/v1/nodes/" + std::to_string(enrolled.body->getObject("node")->getValue<std::int64_t>("id")) +
                    "/maintenance";
  auto admin = client(adminToken_);
  auto maintenance = [&](const std::string& service) {
    Object::Ptr body = new Object;
    body->set("service", service);
    body->set("on", true);
    return admin.call("PUT", path, body);
  };
  auto forged = maintenance("http\n2026-01-01 00:00:00.000 Information shoald: forged line");
  EXPECT_EQ(forged.status, 400);
  EXPECT_NE(forged.errorMessage().find("field 'service': service 'http\\x0a2026"), std::string::npos)
      << forged.errorMessage();
  EXPECT_NE(forged.errorMessage().find("must match [a-z][a-z0-9_-]{0,31}"), std::string::npos) << forged.errorMessage();
  EXPECT_EQ(forged.errorMessage().find('\n'), std::string::npos) << "the name is shown escaped";
  for (const std::string& bad : std::vector<std::string>{"", "HTTP", "http smtp", std::string(33, 'a'), std::string("http\0", 5)})
    EXPECT_EQ(maintenance(bad).status, 400) << shoal::shownValue(bad);
  auto good = maintenance("http");
  EXPECT_EQ(good.status, 200) << good.errorMessage();
  EXPECT_EQ(good.body->getValue<std::string>("service"), "http");
}

TEST_F(ManagerApiTest, AJoinTokenTtlThatIsNoWholeNumberOfSecondsInRangeIsRefusedNamingTheField) {
  auto admin = client(adminToken_);
  auto issue = [&](const Poco::Dynamic::Var& ttl) {
    Object::Ptr body = new Object;
    body->set("ttl_seconds", ttl);
    return admin.call("POST", "/v1/join-tokens", body);
  };
  const std::vector<Poco::Dynamic::Var> refused{1e308, -1e308, 3600.5, Poco::Int64(59), Poco::Int64(604801),
                                                Poco::Int64(-3600), Poco::UInt64(18446744073709551615ULL),
                                                std::string("3600"), true, Poco::Dynamic::Var()};
  for (const auto& ttl : refused) {
    auto reply = issue(ttl);
    EXPECT_EQ(reply.status, 400) << ttl.toString();
    EXPECT_NE(reply.errorMessage().find("field 'ttl_seconds' must be a whole number of seconds from 60 to 604800"),
              std::string::npos)
        << reply.errorMessage();
  }
  EXPECT_EQ(nodeCount(), 0u);
  for (Poco::Int64 ttl : {60, 3600, 604800}) {
    auto reply = issue(ttl);
    ASSERT_EQ(reply.status, 201) << ttl << ": " << reply.errorMessage();
    const auto expiresMs = reply.body->getValue<std::int64_t>("expires_at_ms");
    const auto nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
    EXPECT_NEAR(static_cast<double>(expiresMs - nowMs), static_cast<double>(ttl * 1000), 60000.0) << ttl;
  }
  EXPECT_EQ(admin.call("POST", "/v1/join-tokens", new Object).status, 201) << "an hour when left out";
}

TEST_F(ManagerApiTest, ABatchOfCommandsIsEnqueuedWholeOrNotAtAll) {
  ASSERT_EQ(join(joinToken(), report()).status, 201);
  auto admin = client(adminToken_);
  auto command = [](const std::string& kind, const std::string& key) {
    Object::Ptr c = new Object;
    c->set("kind", kind);
    c->set("payload", "{}");
    c->set("key", key);
    Object::Ptr all = new Object;
    all->set("all", true);
    c->set("target", all);
    return c;
  };
  Poco::JSON::Array::Ptr bad = new Poco::JSON::Array;
  bad->add(command("site.put", "a"));
  bad->add(command("NOT A KIND", "b"));
  Object::Ptr body = new Object;
  body->set("commands", bad);
  auto refused = admin.call("POST", "/v1/commands", body);
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.errorMessage().find("commands[1]"), std::string::npos) << refused.errorMessage();
  EXPECT_EQ(admin.call("GET", "/v1/commands").body->getArray("commands")->size(), 0u);

  Poco::JSON::Array::Ptr good = new Poco::JSON::Array;
  for (int i = 0; i < 3; ++i) good->add(command("site.put", "k" + std::to_string(i)));
  body->set("commands", good);
  auto created = admin.call("POST", "/v1/commands", body);
  ASSERT_EQ(created.status, 201) << created.errorMessage();
  EXPECT_EQ(created.body->getArray("commands")->size(), 3u);
  EXPECT_EQ(admin.call("GET", "/v1/commands").body->getArray("commands")->size(), 3u);
}

namespace {

// POST /v1/commands with the admin token and, unless empty, an Idempotency-Key header.
RawReply enqueueWithKey(const std::string& endpoint, const fs::path& caFile, const std::string& token,
                        const std::string& idempotencyKey, const std::string& body, bool sendKey = true) {
  const auto colon = endpoint.rfind(':');
  Poco::Net::HTTPSClientSession session(endpoint.substr(0, colon),
                                        static_cast<Poco::UInt16>(std::stoi(endpoint.substr(colon + 1))),
                                        shoal::tls::makeClientContext(caFile));
  Poco::Net::HTTPRequest request("POST", "/v1/commands", Poco::Net::HTTPMessage::HTTP_1_1);
  request.setContentType("application/json");
  request.set("Authorization", "Bearer " + token);
  if (sendKey) request.set("Idempotency-Key", idempotencyKey);
  request.setContentLength(static_cast<std::streamsize>(body.size()));
  session.sendRequest(request) << body;
  Poco::Net::HTTPResponse response;
  auto& in = session.receiveResponse(response);
  RawReply reply;
  reply.status = response.getStatus();
  reply.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return reply;
}

std::int64_t idOf(const RawReply& reply) {
  return Poco::JSON::Parser().parse(reply.body).extract<Object::Ptr>()->getValue<std::int64_t>("id");
}

}  // namespace

TEST_F(ManagerApiTest, AnEnqueueRetriedWithItsIdempotencyKeyReturnsTheFirstCommand) {
  ASSERT_EQ(join(joinToken(), report()).status, 201);
  const auto endpoint = manager_->advertisedEndpoint();
  const auto ca = manager_->caFile();
  const std::string site = R"({"kind": "site.put", "payload": {"site": "a"}, "key": "a", "target": {"all": true}})";
  auto first = enqueueWithKey(endpoint, ca, adminToken_, "client-1-retry", site);
  ASSERT_EQ(first.status, 201) << first.body;
  auto again = enqueueWithKey(endpoint, ca, adminToken_, "client-1-retry", site);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(idOf(again), idOf(first));
  auto admin = client(adminToken_);
  EXPECT_EQ(admin.call("GET", "/v1/commands").body->getArray("commands")->size(), 1u);

  // The key with another body: refused, naming the key; nothing enqueued.
  const std::string other = R"({"kind": "site.put", "payload": {"site": "b"}, "key": "b", "target": {"all": true}})";
  auto refused = enqueueWithKey(endpoint, ca, adminToken_, "client-1-retry", other);
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_NE(refused.body.find("idempotency key \\\"client-1-retry\\\" was used for a different request"),
            std::string::npos)
      << refused.body;
  auto empty = enqueueWithKey(endpoint, ca, adminToken_, "", site);
  EXPECT_EQ(empty.status, 400) << empty.body;
  EXPECT_NE(empty.body.find("Idempotency-Key"), std::string::npos) << empty.body;
  EXPECT_EQ(admin.call("GET", "/v1/commands").body->getArray("commands")->size(), 1u);
  // Without a key every request is a new command, as before.
  EXPECT_EQ(enqueueWithKey(endpoint, ca, adminToken_, "", site, false).status, 201);
  EXPECT_EQ(admin.call("GET", "/v1/commands").body->getArray("commands")->size(), 2u);

  // Two clients at once with one key (a retry racing its own first attempt): one command.
  for (int round = 0; round < 3; ++round) {
    const std::string key = "race-" + std::to_string(round);
    RawReply a, b;
    std::thread one([&] { a = enqueueWithKey(endpoint, ca, adminToken_, key, site); });
    std::thread two([&] { b = enqueueWithKey(endpoint, ca, adminToken_, key, site); });
    one.join();
    two.join();
    ASSERT_TRUE(a.status == 201 || a.status == 200) << a.status << " " << a.body;
    ASSERT_TRUE(b.status == 201 || b.status == 200) << b.status << " " << b.body;
    EXPECT_EQ(a.status + b.status, 401) << "one 201 and one 200";
    EXPECT_EQ(idOf(a), idOf(b));
  }
  EXPECT_EQ(admin.call("GET", "/v1/commands").body->getArray("commands")->size(), 5u);
}

TEST_F(ManagerApiTest, AResultWithADeliveryIdThatIsNoPositiveIntegerIsRefusedNamingIt) {
  auto joined = join(joinToken(), report());
  ASSERT_EQ(joined.status, 201);
  auto node = client(joined.body->getValue<std::string>("credential"));
  for (const std::string item : {R"({"delivery_id": "abc", "succeeded": true})", R"({"delivery_id": -3, "succeeded": true})",
                                 R"({"delivery_id": 1.5, "succeeded": true})", R"({"delivery_id": 0, "succeeded": true})",
                                 R"({"delivery_id": [7], "succeeded": true})",
                                 R"({"succeeded": true})"}) {
    auto body = Poco::JSON::Parser().parse(R"({"results": [)" + item + "]}").extract<Object::Ptr>();
    auto reply = node.call("POST", "/v1/node/results", body);
    EXPECT_EQ(reply.status, 400) << item << ": " << reply.errorMessage();
    // "results[0].delivery_id: must be ...", or "...: is missing; it must be ..." when absent.
    EXPECT_EQ(reply.errorMessage().rfind("results[0].delivery_id: ", 0), 0u) << reply.errorMessage();
    EXPECT_NE(reply.errorMessage().find("must be a positive integer"), std::string::npos) << reply.errorMessage();
  }
  auto body = Poco::JSON::Parser().parse(R"({"results": [{"delivery_id": 4, "succeeded": "yes"}]})").extract<Object::Ptr>();
  auto reply = node.call("POST", "/v1/node/results", body);
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.errorMessage(), "results[0].succeeded: must be true or false");
}

// One parser of enqueue requests: whatever is malformed is refused naming the field, and
// nothing is enqueued. (The old API took a target text; a missing one meant every node.)
TEST_F(ManagerApiTest, AMalformedEnqueueRequestIsRefusedNamingTheField) {
  auto joined = join(joinToken(), report());
  ASSERT_EQ(joined.status, 201);
  const auto node = joined.body->getObject("node")->getValue<std::string>("id");
  auto admin = client(adminToken_);
  auto refusal = [&](const std::string& json) {
    auto reply = admin.call("POST", "/v1/commands", Poco::JSON::Parser().parse(json).extract<Object::Ptr>());
    EXPECT_EQ(reply.status, 400) << json;
    return reply.errorMessage();
  };
  EXPECT_NE(refusal(R"({"kind": "site.put"})").find("target: is missing"), std::string::npos);
  EXPECT_NE(refusal(R"({"kind": "site.put", "target": "all"})").find("target: must be"), std::string::npos);
  EXPECT_NE(refusal(R"({"kind": "site.put", "target": {"all": false}})").find("target.all: must be true"), std::string::npos);
  EXPECT_NE(refusal(R"({"kind": "site.put", "target": {"node": "3"}})").find("target.node"), std::string::npos);
  EXPECT_NE(refusal(R"({"kind": "site.put", "target": {"node": 0}})").find("target.node"), std::string::npos);
  EXPECT_NE(refusal(R"({"kind": "site.put", "target": {"all": true, "node": 1}})").find("target: must be"), std::string::npos);
  EXPECT_NE(refusal(R"({"kind": "site.put", "target": {"everyone": true}})").find("target.everyone"), std::string::npos);
  EXPECT_NE(refusal(R"({"kind": "site.put", "ordering_key": "k", "target": {"all": true}})").find("ordering_key: is not a field; the ordering key is 'key'"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"kind": "site.put", "key": 7, "target": {"all": true}})").find("key: must be"), std::string::npos);
  EXPECT_NE(refusal(R"({"kind": "site.put", "payload": "{not json", "target": {"all": true}})").find("payload: is a string but not"),
            std::string::npos);
  for (const std::string stagger : {"-1", "60001", "\"100\"", "1.5"})
    EXPECT_NE(refusal(R"({"kind": "site.put", "target": {"all": true}, "stagger_ms": )" + stagger + "}")
                  .find("stagger_ms: must be an integer from 0 to 60000"),
              std::string::npos)
        << stagger;
  EXPECT_NE(refusal(R"({"commands": [{"kind": "site.put", "target": {"all": true}}, {"kind": "site.put"}]})")
                .find("commands[1].target: is missing"),
            std::string::npos);
  EXPECT_EQ(admin.call("GET", "/v1/commands").body->getArray("commands")->size(), 0u);

  // The same format with a payload object, a string of JSON text, or none at all.
  ASSERT_EQ(admin.call("PUT", "/v1/nodes/" + node + "/roles",
                       Poco::JSON::Parser().parse(R"({"roles": ["web"]})").extract<Object::Ptr>()).status, 200);
  for (const std::string& json : {R"({"kind": "site.put", "payload": {"a": 1}, "key": "k", "target": {"node": )" + node + "}}",
                                 std::string(R"({"kind": "site.put", "payload": "{\"a\": 1}", "target": {"role": "web"}})"),
                                 std::string(R"({"kind": "site.put", "target": {"all": true}, "stagger_ms": 1000})")}) {
    auto reply = admin.call("POST", "/v1/commands", Poco::JSON::Parser().parse(json).extract<Object::Ptr>());
    EXPECT_EQ(reply.status, 201) << json << ": " << reply.errorMessage();
  }
  auto listed = admin.call("GET", "/v1/commands").body->getArray("commands");
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ(listed->getObject(2)->getValue<std::string>("payload"), R"({"a":1})");
  EXPECT_EQ(listed->getObject(2)->getValue<std::string>("ordering_key"), "k");
  EXPECT_EQ(listed->getObject(2)->getValue<std::string>("target"), "node:" + node);
  EXPECT_EQ(listed->getObject(1)->getValue<std::string>("target"), "role:web");
  EXPECT_EQ(listed->getObject(0)->getValue<std::string>("payload"), "{}");
}

// ---- a plugin on the manager, through the real host table ------------------------------
// The recorder plugin, loaded by a real plugin host into a real manager; its API endpoint
// calls the ABI's callbacks (enqueue, command_get, reply_set_http_status) and its /metrics
// contribution is rendered on /metrics.
namespace {

// What the daemon gives plugins on a manager (kernel/daemon/Daemon.cpp), for the callbacks
// these tests reach.
class ManagerRuntime final : public shoal::host::HostRuntime {
 public:
  explicit ManagerRuntime(shoal::manager::ManagerService& manager) : manager_(manager) {}
  std::string hostInfoJson() override { return R"({"role": "manager", "node_id": 0})"; }
  std::string enqueue(const std::string& requestJson) override { return manager_.enqueueForPlugin(requestJson); }
  std::string commandJson(std::int64_t id) override { return manager_.commandForPlugin(id); }
  std::string healthJson() override {
    std::ostringstream out;
    manager_.health().toJson()->stringify(out);
    return out.str();
  }
  void emitStats(std::vector<shoal::host::StatsSample> samples) override { manager_.stats().record(samples); }
  void declareStats(const std::string& plugin, const std::string& seriesJson) override {
    auto& stats = manager_.stats();
    stats.declare(plugin, shoal::host::parseStatsSeriesNames(seriesJson, plugin + ".", stats.maxSeriesPerPlugin()));
  }

 private:
  shoal::manager::ManagerService& manager_;
};

struct RawAnswer {
  int status = 0;
  std::string contentType, body;
};

class PluginOnManagerTest : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }
  void start(const std::map<std::string, std::string>& pluginConfig) {
    dir_ = fs::temp_directory_path() /
           ("shoal-pluginapi-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    config_ = new Poco::Util::MapConfiguration;
    config_->setString("plugin.recorder.file", (dir_ / "applied").string());
    for (const auto& [k, v] : pluginConfig) config_->setString("plugin.recorder." + k, v);
    plugins_ = std::make_unique<shoal::host::PluginHost>(shoal::host::HostServices{config_.get(), nullptr});
    ASSERT_EQ(plugins_->load(SHOAL_E2E_PLUGIN_DIR "/recorder.so").state, shoal::host::PluginState::Loaded)
        << plugins_->records().back().reason;
    store_ = shoal::store::Store::open({"sqlite", dir_ / "manager"});
    store_->migrate();
    shoal::manager::ManagerSettings settings;
    settings.dataDir = dir_ / "manager";
    settings.listenAddress = "127.0.0.1";
    settings.port = 0;
    settings.advertiseAddress = "127.0.0.1";
    manager_ = std::make_unique<shoal::manager::ManagerService>(*store_, &plugins_->registries(), settings);
    runtime_ = std::make_unique<ManagerRuntime>(*manager_);
    plugins_->setRuntime(runtime_.get());
    manager_->start();
    std::ifstream token(manager_->adminTokenFile());
    std::getline(token, adminToken_);
  }
  void TearDown() override {
    if (agent_) agent_->stop();
    agent_.reset();
    if (plugins_) plugins_->setRuntime(nullptr);
    if (manager_) manager_->stop();
    manager_.reset();
    runtime_.reset();
    if (plugins_) plugins_->shutdown();
    plugins_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  RawAnswer raw(const std::string& method, const std::string& path, const std::string& body = "") {
    const auto endpoint = manager_->advertisedEndpoint();
    const auto colon = endpoint.rfind(':');
    Poco::Net::HTTPSClientSession session(endpoint.substr(0, colon),
                                          static_cast<Poco::UInt16>(std::stoi(endpoint.substr(colon + 1))),
                                          shoal::tls::makeClientContext(manager_->caFile()));
    Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    request.set("Authorization", "Bearer " + adminToken_);
    request.setContentType("application/json");
    request.setContentLength(static_cast<std::streamsize>(body.size()));
    session.sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    auto& in = session.receiveResponse(response);
    RawAnswer answer;
    answer.status = response.getStatus();
    answer.contentType = response.getContentType();
    answer.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return answer;
  }
  Object::Ptr json(const RawAnswer& answer) {
    return Poco::JSON::Parser().parse(answer.body).extract<Object::Ptr>();
  }
  std::size_t commandCount() {
    return json(raw("GET", "/v1/commands"))->getArray("commands")->size();
  }
  // A node of the cluster in this process, with the same plugins.
  std::int64_t enrolNode() {
    auto issued = manager_->nodes().createJoinToken(std::chrono::minutes(5));
    auto token = shoal::api::encodeJoinToken({manager_->advertisedEndpoint(), issued.secret, manager_->caFingerprint()});
    return shoal::agent::NodeAgent::enrol(dir_ / "node", token, "127.0.0.1").nodeId;
  }
  std::int64_t startNode() {
    const auto nodeId = enrolNode();
    agent_ = std::make_unique<shoal::agent::NodeAgent>(plugins_->registries(),
                                                       shoal::agent::NodeAgentSettings{dir_ / "node", std::chrono::milliseconds(500)});
    agent_->start();
    return nodeId;
  }

  fs::path dir_;
  Poco::AutoPtr<Poco::Util::MapConfiguration> config_;
  std::unique_ptr<shoal::host::PluginHost> plugins_;
  std::unique_ptr<shoal::store::Store> store_;
  std::unique_ptr<shoal::manager::ManagerService> manager_;
  std::unique_ptr<ManagerRuntime> runtime_;
  std::unique_ptr<shoal::agent::NodeAgent> agent_;
  std::string adminToken_;
};

}  // namespace

// callback_enqueue takes the one format too: before, a plugin's command with no target, a
// text target or {"all": false} went to every node.
TEST_F(PluginOnManagerTest, APluginsMalformedEnqueueIsRefusedNamingTheField) {
  const auto node = enrolNode();
  auto refused = [&](const std::string& request, const std::string& expected) {
    auto answer = raw("POST", "/v1/plugins/recorder/enqueue", request);
    EXPECT_EQ(answer.status, 400) << request << ": " << answer.body;
    EXPECT_NE(answer.body.find(expected), std::string::npos) << request << ": " << answer.body;
  };
  refused(R"({"kind": "recorder.apply", "payload": {"key": "a", "seq": 1}})", "target: is missing");
  refused(R"({"kind": "recorder.apply", "payload": {"key": "a", "seq": 1}, "target": "all"})", "target: must be");
  refused(R"({"kind": "recorder.apply", "payload": {"key": "a", "seq": 1}, "target": {"all": false}})", "target.all: must be true");
  refused(R"({"kind": "recorder.apply", "payload": {"key": "a", "seq": 1}, "target": {"node": 2.5}})", "target.node");
  refused(R"({"kind": "recorder.apply", "payload": {"key": "a", "seq": 1}, "target": {"all": true}, "when": 1})", "when: is not a field");
  // The kind's on_validate runs on this path as on the API's.
  refused(R"({"kind": "recorder.apply", "payload": {"seq": "x"}, "target": {"all": true}})", "payload must be");
  refused(R"({"kind": "nosuch.kind", "target": {"all": true}})", "no plugin handles command kind 'nosuch.kind'");
  EXPECT_EQ(commandCount(), 0u);

  auto one = raw("POST", "/v1/plugins/recorder/enqueue",
                 R"({"kind": "recorder.apply", "payload": {"key": "a", "seq": 1}, "key": "a", "target": {"all": true}})");
  ASSERT_EQ(one.status, 201) << one.body;
  EXPECT_GT(json(one)->getValue<std::int64_t>("id"), 0);
  EXPECT_EQ(json(one)->getValue<std::int64_t>("deliveries"), 1);
  auto batch = raw("POST", "/v1/plugins/recorder/enqueue",
                   R"({"commands": [{"kind": "recorder.apply", "payload": "{\"key\": \"b\", \"seq\": 1}", "target": {"all": true}},
                                    {"kind": "recorder.apply", "payload": {"key": "b", "seq": 2}, "target": {"node": )" +
                       std::to_string(node) + "}}]}");
  ASSERT_EQ(batch.status, 201) << batch.body;
  EXPECT_EQ(json(batch)->getArray("commands")->size(), 2u);
  EXPECT_EQ(commandCount(), 3u);
}

// ABI 1.3 callback_command_get: a plugin reads back what became of its command, delivery by
// delivery, after a real node applied it; the apply context reached the handler.
TEST_F(PluginOnManagerTest, APluginReadsTheDeliveriesOfItsCommand) {
  const auto node = startNode();
  auto enqueued = raw("POST", "/v1/plugins/recorder/enqueue",
                      R"({"kind": "recorder.context", "key": "ctx", "target": {"node": )" + std::to_string(node) + "}}");
  ASSERT_EQ(enqueued.status, 201) << enqueued.body;
  const auto id = json(enqueued)->getValue<std::int64_t>("id");
  EXPECT_EQ(json(enqueued)->getValue<std::int64_t>("deliveries"), 1);
  Object::Ptr command;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    auto answer = raw("GET", "/v1/plugins/recorder/commands/" + std::to_string(id));
    ASSERT_EQ(answer.status, 200) << answer.body;
    command = json(answer);
    if (command->getArray("deliveries")->getObject(0)->getValue<std::string>("state") == "done") break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "not applied: " << answer.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(command->getValue<std::int64_t>("id"), id);
  EXPECT_EQ(command->getValue<std::string>("kind"), "recorder.context");
  auto delivery = command->getArray("deliveries")->getObject(0);
  EXPECT_EQ(delivery->getValue<std::int64_t>("node_id"), node);
  EXPECT_EQ(delivery->getValue<int>("attempts"), 1);
  EXPECT_EQ(delivery->getValue<std::string>("output"),
            "command=" + std::to_string(id) + " delivery=" + delivery->getValue<std::string>("id") +
                " node=" + std::to_string(node) + " attempt=1 kind=recorder.context key=ctx");
  EXPECT_EQ(raw("GET", "/v1/plugins/recorder/commands/999").status, 404);
}

// ABI 1.3 statuses over the real API server: 405, a chosen success or error status, and
// 1.1's mapping where the plugin chooses nothing.
TEST_F(PluginOnManagerTest, APluginRouteAnswersTheStatusItChooses) {
  auto notAllowed = raw("POST", "/v1/plugins/recorder/only-get", "{}");
  EXPECT_EQ(notAllowed.status, 405);
  EXPECT_EQ(json(notAllowed)->getObject("error")->getValue<std::string>("code"), "method_not_allowed");
  EXPECT_NE(notAllowed.body.find("allowed: GET"), std::string::npos) << notAllowed.body;
  EXPECT_EQ(raw("GET", "/v1/plugins/recorder/only-get").status, 200);
  auto accepted = raw("GET", "/v1/plugins/recorder/status/202");
  EXPECT_EQ(accepted.status, 202);
  EXPECT_EQ(json(accepted)->getValue<int>("status"), 202);
  auto empty = raw("POST", "/v1/plugins/recorder/status/204", "{}");
  EXPECT_EQ(empty.status, 204);
  EXPECT_EQ(empty.body, "");
  auto unavailable = raw("GET", "/v1/plugins/recorder/status/503");
  EXPECT_EQ(unavailable.status, 503);
  EXPECT_EQ(json(unavailable)->getObject("error")->getValue<std::string>("code"), "unavailable");
  EXPECT_EQ(raw("GET", "/v1/plugins/recorder/status/429").status, 429);
  // A code outside the documented set is not taken: the error's own mapping (FAILED) answers.
  EXPECT_EQ(raw("GET", "/v1/plugins/recorder/status/418").status, 422);
  // Nothing chosen: SHOAL_OK is 200, and 201 for a POST; NOT_FOUND 404.
  EXPECT_EQ(raw("POST", "/v1/plugins/recorder/status/200", "{}").status, 200);
  EXPECT_EQ(raw("GET", "/v1/plugins/recorder/nowhere").status, 404);
}

TEST(PluginHttpAnswer, KeepsTheMappingOfAbi1_1AndTakesOnlyAChosenStatusOfTheOutcomesKind) {
  using shoal::host::pluginHttpAnswer;
  EXPECT_EQ(pluginHttpAnswer(SHOAL_OK, 0, false).status, 200);
  EXPECT_EQ(pluginHttpAnswer(SHOAL_OK, 0, true).status, 201);
  EXPECT_EQ(pluginHttpAnswer(SHOAL_ERR_INVALID_ARGUMENT, 0, false).status, 400);
  EXPECT_EQ(pluginHttpAnswer(SHOAL_ERR_NOT_FOUND, 0, false).status, 404);
  EXPECT_EQ(pluginHttpAnswer(SHOAL_ERR_CONFLICT, 0, false).status, 409);
  EXPECT_EQ(pluginHttpAnswer(SHOAL_ERR_UNSUPPORTED, 0, false).status, 501);
  EXPECT_EQ(pluginHttpAnswer(SHOAL_ERR_FAILED, 0, false).status, 422);
  EXPECT_EQ(pluginHttpAnswer(SHOAL_ERR_EXCEPTION, 0, false).status, 500);
  EXPECT_EQ(pluginHttpAnswer(SHOAL_ERR_METHOD_NOT_ALLOWED, 0, false).status, 405);
  EXPECT_EQ(pluginHttpAnswer(SHOAL_OK, 503, false).status, 200) << "an error status on a success is ignored";
  EXPECT_EQ(pluginHttpAnswer(SHOAL_ERR_FAILED, 204, false).status, 422) << "a success status on an error is ignored";
  EXPECT_EQ(pluginHttpAnswer(SHOAL_ERR_FAILED, 503, false).code, "unavailable");
  EXPECT_FALSE(shoal::host::pluginHttpStatusAllowed(418));
  EXPECT_FALSE(shoal::host::pluginHttpStatusAllowed(500));
  EXPECT_TRUE(shoal::host::pluginHttpStatusAllowed(204));
}

// Each plugin's statistics series and its own samples appear in families named for it;
// no shoal_lb_* family is left.
TEST_F(PluginOnManagerTest, PluginStatisticsAndMetricsAppearInFamiliesOfTheirOwn) {
  const auto now = shoal::host::unixNowSeconds();
  manager_->stats().record(shoal::host::parseStatsSamples(
      R"([{"series": "tcp:192.0.2.10:80", "time": )" + std::to_string(now - 5) +
          R"(, "title": "web", "conns": 7, "packets_in": 1, "packets_out": 2, "bytes_in": 3, "bytes_out": 4}])",
      "recorder.", now));
  auto metrics = raw("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("# TYPE shoal_recorder_connections_total counter\n"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find(R"(shoal_recorder_connections_total{series="recorder.tcp:192.0.2.10:80",title="web"} 7)"),
            std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find(R"(shoal_recorder_bytes_total{series="recorder.tcp:192.0.2.10:80",title="web",direction="out"} 4)"),
            std::string::npos) << metrics.body;
  EXPECT_EQ(metrics.body.find("shoal_lb_"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("# HELP shoal_recorder_applied Applications recorded.\n# TYPE shoal_recorder_applied counter\n"
                              "shoal_recorder_applied{file=\"recorder\"} 0\n"),
            std::string::npos) << metrics.body;
}

// A plugin that answers garbage loses its own families for the scrape, never /metrics.
TEST_F(PluginOnManagerTest, APluginsMalformedMetricsAreLeftOutAndMetricsStillAnswers) {
  for (const char* garbage : {"not json", R"([{"name": "Bad Name", "type": "gauge", "help": "x", "value": 1}])",
                              R"([{"name": "x", "type": "gauge", "help": "x", "value": 1, "labels": {"a": 1}}])"}) {
    TearDown();
    start({{"metrics", garbage}});
    auto metrics = raw("GET", "/metrics");
    ASSERT_EQ(metrics.status, 200) << garbage;
    EXPECT_NE(metrics.body.find("shoal_build_info{"), std::string::npos) << garbage;
    EXPECT_EQ(metrics.body.find("shoal_recorder_"), std::string::npos) << garbage << "\n" << metrics.body;
  }
}

TEST(PluginMetrics, MalformedSamplesAreRefusedNamingTheField) {
  auto refusal = [](const std::string& json) {
    try {
      shoal::host::parsePluginMetrics(json, "my-plugin");
    } catch (const shoal::Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(refusal(R"({"name": "x"})").find("JSON array"), std::string::npos);
  EXPECT_NE(refusal(R"([{"name": "x", "type": "summary", "help": "h", "value": 1}])").find("[0].type"), std::string::npos);
  EXPECT_NE(refusal(R"([{"name": "x", "type": "counter", "help": "h", "value": -1}])").find("[0].value"), std::string::npos);
  EXPECT_NE(refusal(R"([{"name": "x", "type": "gauge", "help": "h", "value": "1"}])").find("[0].value"), std::string::npos);
  EXPECT_NE(refusal(R"([{"name": "connections_total", "type": "counter", "help": "h", "value": 1}])").find("statistics series"),
            std::string::npos);
  EXPECT_NE(refusal(R"([{"name": "x", "type": "gauge", "help": "h", "value": 1, "labels": {"__name__": "y"}}])")
                .find("[0].labels.__name__"),
            std::string::npos);
  EXPECT_NE(refusal(R"([{"name": "x", "type": "gauge", "help": "h", "value": 1},
                        {"name": "x", "type": "counter", "help": "h", "value": 1}])")
                .find("[1].type"),
            std::string::npos);
  auto families = shoal::host::parsePluginMetrics(
      R"([{"name": "up", "type": "gauge", "help": "h", "value": 1, "labels": {"site": "a"}},
          {"name": "up", "type": "gauge", "help": "h", "value": 0.5, "labels": {"site": "b"}}])",
      "my-plugin");
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].name, "shoal_my_plugin_up");
  EXPECT_EQ(families[0].samples.size(), 2u);
  EXPECT_EQ(families[0].samples[1].value, 0.5);
}

namespace {

// A manager with the real lvs plugin, and a node credential of its cluster.
class NodeStatisticsTest : public ::testing::Test {
 protected:
  static constexpr std::size_t kCap = 20;
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("shoal-nodestats-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    store_ = shoal::store::Store::open({"sqlite", dir_});
    store_->migrate();
    documents_ = std::make_unique<shoal::store::DocumentStore>(*store_);
    config_ = new Poco::Util::MapConfiguration;
    config_->setString("plugin.lvs.dataplane", "userspace");
    plugins_ = std::make_unique<shoal::host::PluginHost>(shoal::host::HostServices{config_.get(), documents_.get()});
    ASSERT_EQ(plugins_->load(SHOAL_LVS_PLUGIN).state, shoal::host::PluginState::Loaded)
        << plugins_->records().back().reason;
    shoal::manager::ManagerSettings settings;
    settings.dataDir = dir_;
    settings.listenAddress = "127.0.0.1";
    settings.port = 0;
    settings.advertiseAddress = "127.0.0.1";
    settings.statsMaxSeriesPerPlugin = kCap;
    manager_ = std::make_unique<shoal::manager::ManagerService>(*store_, &plugins_->registries(), settings);
    runtime_ = std::make_unique<ManagerRuntime>(*manager_);
    plugins_->setRuntime(runtime_.get());
    manager_->start();
    std::ifstream token(manager_->adminTokenFile());
    std::getline(token, adminToken_);
    auto issued = manager_->nodes().createJoinToken(std::chrono::minutes(5));
    auto join = shoal::api::encodeJoinToken({manager_->advertisedEndpoint(), issued.secret, manager_->caFingerprint()});
    node_ = shoal::agent::NodeAgent::enrol(dir_ / "node", join, "127.0.0.1");
  }
  void TearDown() override {
    if (plugins_) plugins_->setRuntime(nullptr);
    if (manager_) manager_->stop();
    manager_.reset();
    runtime_.reset();
    if (plugins_) plugins_->shutdown();
    plugins_.reset();
    documents_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  ApiReply asNode(Object::Ptr body) {
    ManagerClient c(manager_->advertisedEndpoint(), shoal::tls::makeClientContext(node_.caFile), node_.credential);
    return c.call("POST", "/v1/node/stats", body);
  }
  // One sample for each of `series` (names with their plugin's prefix), as a director sends them.
  ApiReply post(const std::vector<std::string>& series, std::int64_t time) {
    Poco::JSON::Array::Ptr samples = new Poco::JSON::Array;
    for (const auto& name : series) {
      Object::Ptr o = new Object;
      o->set("series", name);
      o->set("time", time);
      for (const char* c : {"conns", "packets_in", "packets_out", "bytes_in", "bytes_out"}) o->set(c, 7);
      samples->add(o);
    }
    Object::Ptr body = new Object;
    body->set("samples", samples);
    return asNode(body);
  }
  std::set<std::string> rrdFiles() {
    std::set<std::string> out;
    for (const auto& f : fs::directory_iterator(dir_ / "rrd"))
      if (f.path().extension() == ".rrd") out.insert(f.path().stem().string());
    return out;
  }
  std::uintmax_t rrdBytes() {
    std::uintmax_t total = 0;
    for (const auto& f : fs::directory_iterator(dir_ / "rrd")) total += f.file_size();
    return total;
  }
  ApiReply createPolicy() {
    ManagerClient admin(manager_->advertisedEndpoint(), shoal::tls::makeClientContext(manager_->caFile()), adminToken_);
    return admin.call("POST", "/v1/plugins/lvs/services",
                      Poco::JSON::Parser()
                          .parse(R"({"service": "http", "protocol": "tcp", "address": "192.0.2.10", "port": 80,
                                     "scheduler": "rr", "persistence": 0, "forwarding": "nat",
                                     "members": [{"address": "192.0.2.21", "port": 80, "weight": 1},
                                                 {"address": "192.0.2.22", "port": 80, "weight": 1}]})")
                          .extract<Object::Ptr>());
  }

  fs::path dir_;
  Poco::AutoPtr<Poco::Util::MapConfiguration> config_;
  std::unique_ptr<shoal::host::PluginHost> plugins_;
  std::unique_ptr<shoal::store::Store> store_;
  std::unique_ptr<shoal::store::DocumentStore> documents_;
  std::unique_ptr<shoal::manager::ManagerService> manager_;
  std::unique_ptr<ManagerRuntime> runtime_;
  shoal::agent::NodeIdentity node_;
  std::string adminToken_;
};

}  // namespace

// A node credential used to create RRD series without limit (51 MB in 0.22 s). Now the lvs
// plugin declares the series of its policies, and a node may feed only those.
TEST_F(NodeStatisticsTest, ANodeFeedsOnlyTheSeriesOfTheDirectorsPoliciesAndCreatesNoOthers) {
  auto created = createPolicy();
  ASSERT_EQ(created.status, 201) << created.errorMessage();
  const std::vector<std::string> real{"lvs.service.tcp:192.0.2.10:80", "lvs.member.tcp:192.0.2.10:80.192.0.2.21:80",
                                      "lvs.member.tcp:192.0.2.10:80.192.0.2.22:80"};
  // The names the plugin gives its policy's series are those a director's samples carry.
  ManagerClient admin(manager_->advertisedEndpoint(), shoal::tls::makeClientContext(manager_->caFile()), adminToken_);
  auto policy = admin.call("GET", "/v1/plugins/lvs/services/tcp:192.0.2.10:80").body;
  ASSERT_TRUE(policy);
  std::vector<std::string> named{policy->getValue<std::string>("stats_series")};
  auto members = policy->getArray("members");
  for (std::size_t i = 0; i < members->size(); ++i)
    named.push_back(members->getObject(static_cast<unsigned>(i))->getValue<std::string>("stats_series"));
  EXPECT_EQ(named, real);
  const auto now = shoal::host::unixNowSeconds();
  auto ok = post(real, now - 30);
  ASSERT_EQ(ok.status, 200) << ok.errorMessage();
  EXPECT_EQ(ok.body->getValue<int>("recorded"), 3);
  EXPECT_EQ(rrdFiles(), std::set<std::string>(real.begin(), real.end()));
  const auto before = rrdBytes();

  // Invented series: of the lvs plugin, of no plugin, of a made-up plugin, in batches.
  std::vector<std::string> invented;
  for (int i = 0; i < 3000; ++i) invented.push_back("lvs.service.tcp:10.0." + std::to_string(i / 250) + "." +
                                                   std::to_string(i % 250) + ":80");
  // What the manager logs about them: each refused series once, at most 1000 and one line more.
  std::ostringstream logged;
  Poco::AutoPtr<Poco::StreamChannel> channel(new Poco::StreamChannel(logged));
  auto& statsLog = Poco::Logger::get("shoald.stats");
  Poco::AutoPtr<Poco::Channel> previous(statsLog.getChannel(), true);
  statsLog.setChannel(channel);
  auto refused = post(invented, now - 20);
  EXPECT_EQ(post(invented, now - 15).status, 400);
  statsLog.setChannel(previous);
  const std::string text = logged.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1001) << "6000 refused samples of 3000 series";
  EXPECT_NE(text.find("more than 1000 series refused; further ones are not logged"), std::string::npos);
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.errorMessage().find("3000 of 3000 sample(s) refused, 0 recorded: series 'lvs.service.tcp:10.0.0.0:80' "
                                        "is not one plugin 'lvs' declared"),
            std::string::npos) << refused.errorMessage();
  // A batch that mixes them records the real ones and refuses the rest.
  std::vector<std::string> mixed = real;
  mixed.push_back("lvs.member.tcp:192.0.2.10:80.192.0.2.99:80");
  auto partly = post(mixed, now - 10);
  EXPECT_EQ(partly.status, 400);
  EXPECT_NE(partly.errorMessage().find("1 of 4 sample(s) refused, 3 recorded"), std::string::npos) << partly.errorMessage();
  auto unprefixed = post({"nodot"}, now - 10);
  EXPECT_NE(unprefixed.errorMessage().find("names no plugin"), std::string::npos) << unprefixed.errorMessage();
  EXPECT_EQ(rrdFiles(), std::set<std::string>(real.begin(), real.end())) << "no file for an invented series";
  EXPECT_EQ(rrdBytes(), before);

  // The real series still record: their last update is the newest sample.
  auto series = manager_->stats().latest();
  ASSERT_EQ(series.size(), 3u);
  for (const auto& s : series) EXPECT_EQ(s.timeSeconds, now - 10) << s.series;
}

// Plugins that declare nothing (ABI 1.3 and older) still get their nodes' samples, within one
// cap they share, so inventing plugin names does not lift it; a declaration is capped too.
TEST_F(NodeStatisticsTest, TheSeriesOfPluginsWithoutADeclarationAreCapped) {
  const auto now = shoal::host::unixNowSeconds();
  std::vector<std::string> many;
  for (std::size_t i = 0; i < 3 * kCap; ++i)
    many.push_back((i % 2 ? "old." : "made-up-" + std::to_string(i) + ".") + std::string("s") + std::to_string(i));
  auto reply = post(many, now - 5);
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.errorMessage().find(std::to_string(2 * kCap) + " of " + std::to_string(3 * kCap) +
                                      " sample(s) refused, " + std::to_string(kCap) + " recorded"),
            std::string::npos) << reply.errorMessage();
  EXPECT_NE(reply.errorMessage().find("share 20 statistics series, all taken"), std::string::npos) << reply.errorMessage();
  EXPECT_EQ(rrdFiles().size(), kCap);
  // Those already recorded go on recording.
  std::vector<std::string> first(many.begin(), many.begin() + kCap);
  EXPECT_EQ(post(first, now - 1).status, 200);

  std::vector<std::string> tooMany;
  for (std::size_t i = 0; i <= kCap; ++i) tooMany.push_back("lvs.s" + std::to_string(i));
  try {
    manager_->stats().declare("lvs", tooMany);
    ADD_FAILURE() << "a declaration beyond the cap was taken";
  } catch (const shoal::Error& e) {
    EXPECT_NE(std::string(e.what()).find("at most 20 per plugin (stats_max_series_per_plugin)"), std::string::npos) << e.what();
  }
  // And a plugin's own samples in the manager's process stop at the cap as well.
  std::vector<shoal::host::StatsSample> own;
  for (std::size_t i = 0; i < 2 * kCap; ++i) {
    shoal::host::StatsSample s;
    s.series = "inproc.s" + std::to_string(i);
    s.timeSeconds = now;
    own.push_back(s);
  }
  const auto outcome = manager_->stats().record(own);
  EXPECT_EQ(outcome.recorded, kCap);
  EXPECT_EQ(outcome.refused, kCap);
  EXPECT_EQ(rrdFiles().size(), 2 * kCap);
}
