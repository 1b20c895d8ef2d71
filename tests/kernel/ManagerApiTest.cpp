// The manager's HTTPS API over real TLS on 127.0.0.1: authentication of every route and
// enrolment's refusals, through the same client code a node uses.
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "agent/ManagerClient.hpp"
#include "agent/NodeAgent.hpp"
#include "api/JoinToken.hpp"
#include "common/Error.hpp"
#include "common/Platform.hpp"
#include "manager/ManagerService.hpp"
#include "shoal/BuildInfo.hpp"
#include "store/Store.hpp"
#include "tls/Contexts.hpp"

namespace fs = std::filesystem;
using Poco::JSON::Object;
using shoal::agent::ApiReply;
using shoal::agent::ManagerClient;

namespace {

class ManagerApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("shoal-api-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    store_ = shoal::store::Store::open({"sqlite", dir_});
    store_->migrate();
    shoal::manager::ManagerSettings settings;
    settings.dataDir = dir_;
    settings.listenAddress = "127.0.0.1";
    settings.port = 0;
    settings.advertiseAddress = "127.0.0.1";
    manager_ = std::make_unique<shoal::manager::ManagerService>(*store_, nullptr, settings);
    manager_->start();
    std::ifstream token(manager_->adminTokenFile());
    std::getline(token, adminToken_);
  }
  void TearDown() override {
    manager_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  ManagerClient client(const std::string& bearer) {
    return ManagerClient(manager_->advertisedEndpoint(), shoal::tls::makeClientContext(manager_->caFile()), bearer);
  }

  std::string joinToken() {
    auto admin = client(adminToken_);
    auto reply = admin.call("POST", "/v1/join-tokens", new Object);
    EXPECT_EQ(reply.status, 201) << reply.errorMessage();
    return reply.body->getValue<std::string>("token");
  }

  Object::Ptr report() {
    auto facts = shoal::detectPlatform();
    Object::Ptr r = new Object;
    r->set("hostname", "node-a");
    r->set("os_id", facts.osId);
    r->set("os_version", facts.osVersion);
    r->set("arch", facts.arch);
    r->set("shoal_version", std::string(shoal::build::kVersion));
    r->set("address", "127.0.0.1");
    return r;
  }

  ApiReply join(const std::string& token, Object::Ptr body) {
    auto decoded = shoal::api::decodeJoinToken(token);
    auto pin = std::make_shared<shoal::tls::PinResult>();
    ManagerClient c(decoded.manager, shoal::tls::makePinnedClientContext(decoded.caFingerprint, pin), decoded.secret);
    return c.call("POST", "/v1/join", body);
  }

  std::size_t nodeCount() {
    auto admin = client(adminToken_);
    return admin.call("GET", "/v1/nodes?all=1").body->getArray("nodes")->size();
  }

  fs::path dir_;
  std::unique_ptr<shoal::store::Store> store_;
  std::unique_ptr<shoal::manager::ManagerService> manager_;
  std::string adminToken_;
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
    if (route.access != shoal::api::Access::Admin && route.access != shoal::api::Access::Join)
      refused.push_back(adminToken_);
    for (const auto& bearer : refused) {
      auto c = client(bearer);
      auto reply = c.call(route.method, path, new Object);
      EXPECT_EQ(reply.status, 401) << route.method << " " << path << " with bearer '" << bearer.substr(0, 16) << "'";
    }
  }
}

namespace {

// One request as a browser sends it: a cookie and maybe a CSRF header, no bearer token.
struct RawReply {
  int status = 0;
  std::string body;
  std::string setCookie;
};
RawReply browserCall(const std::string& endpoint, const fs::path& caFile, const std::string& method,
                     const std::string& path, const std::string& cookie, const std::string& csrf,
                     const std::string& body = "{}") {
  const auto colon = endpoint.rfind(':');
  Poco::Net::HTTPSClientSession session(endpoint.substr(0, colon),
                                        static_cast<Poco::UInt16>(std::stoi(endpoint.substr(colon + 1))),
                                        shoal::tls::makeClientContext(caFile));
  Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  request.setContentType("application/json");
  if (!cookie.empty()) request.set("Cookie", cookie);
  if (!csrf.empty()) request.set("X-CSRF-Token", csrf);
  request.setContentLength(static_cast<std::streamsize>(body.size()));
  session.sendRequest(request) << body;
  Poco::Net::HTTPResponse response;
  auto& in = session.receiveResponse(response);
  RawReply reply;
  reply.status = response.getStatus();
  reply.setCookie = response.get("Set-Cookie", "");
  reply.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return reply;
}

}  // namespace

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
    if (route.access != shoal::api::Access::Admin) {
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

TEST_F(ManagerApiTest, MalformedInputGetsAClearError) {
  auto admin = client(adminToken_);
  auto reply = admin.call("POST", "/v1/commands", new Object);
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.errorMessage().find("'kind'"), std::string::npos) << reply.errorMessage();
  Object::Ptr bad = new Object;
  bad->set("kind", "x.y");
  bad->set("target", "everyone");
  reply = admin.call("POST", "/v1/commands", bad);
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.errorMessage().find("all, node:ID or role:NAME"), std::string::npos) << reply.errorMessage();
  EXPECT_EQ(admin.call("GET", "/v1/nodes/abc").status, 400);
  EXPECT_EQ(admin.call("GET", "/v1/nodes/999").status, 404);
  EXPECT_EQ(admin.call("GET", "/v1/nowhere").status, 404);
  EXPECT_EQ(admin.call("PATCH", "/v1/nodes").status, 405);
}

TEST_F(ManagerApiTest, ABatchOfCommandsIsEnqueuedWholeOrNotAtAll) {
  ASSERT_EQ(join(joinToken(), report()).status, 201);
  auto admin = client(adminToken_);
  auto command = [](const std::string& kind, const std::string& key) {
    Object::Ptr c = new Object;
    c->set("kind", kind);
    c->set("payload", "{}");
    c->set("ordering_key", key);
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
