#pragma once
// A manager on 127.0.0.1 (any free port) over a fresh SQLite store in a folder of its own,
// with the admin token it made, and the calls tests make of it through the same client code a
// node uses: an admin client, a join token, a node's platform report, an enrolment.
// Each test gets its own folder, named for the process and the test, removed afterwards.
#include <Poco/JSON/Object.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "agent/ManagerClient.hpp"
#include "api/JoinToken.hpp"
#include "common/Platform.hpp"
#include "manager/ManagerService.hpp"
#include "shoal/BuildInfo.hpp"
#include "store/Store.hpp"
#include "tls/Contexts.hpp"

namespace shoal::testing {

class ManagerFixture : public ::testing::Test {
 protected:
  // `prefix` names the test folder under the system's temporary directory.
  explicit ManagerFixture(std::string prefix = "shoal-api-") : prefix_(std::move(prefix)) {}

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           (prefix_ + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = store::Store::open({"sqlite", dir_});
    store_->migrate();
    manager::ManagerSettings settings;
    settings.dataDir = dir_;
    settings.listenAddress = "127.0.0.1";
    settings.port = 0;
    settings.advertiseAddress = "127.0.0.1";
    manager_ = std::make_unique<manager::ManagerService>(*store_, nullptr, settings);
    manager_->start();
    std::ifstream token(manager_->adminTokenFile());
    std::getline(token, adminToken_);
  }
  void TearDown() override {
    manager_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  agent::ManagerClient client(const std::string& bearer) {
    return agent::ManagerClient(manager_->advertisedEndpoint(), tls::makeClientContext(manager_->caFile()), bearer);
  }

  std::string joinToken() {
    auto admin = client(adminToken_);
    auto reply = admin.call("POST", "/v1/join-tokens", new Poco::JSON::Object);
    EXPECT_EQ(reply.status, 201) << reply.errorMessage();
    return reply.body->getValue<std::string>("token");
  }

  // What a node on this machine reports when it joins.
  static Poco::JSON::Object::Ptr report(const std::string& hostname = "node-a") {
    auto facts = detectPlatform();
    Poco::JSON::Object::Ptr r = new Poco::JSON::Object;
    r->set("hostname", hostname);
    r->set("os_id", facts.osId);
    r->set("os_version", facts.osVersion);
    r->set("arch", facts.arch);
    r->set("shoal_version", std::string(build::kVersion));
    r->set("address", "127.0.0.1");
    return r;
  }

  // POST /v1/join with the token's secret, pinned to the fingerprint the token carries.
  agent::ApiReply join(const std::string& token, Poco::JSON::Object::Ptr body) {
    auto decoded = api::decodeJoinToken(token);
    auto pin = std::make_shared<tls::PinResult>();
    agent::ManagerClient c(decoded.manager, tls::makePinnedClientContext(decoded.caFingerprint, pin), decoded.secret);
    return c.call("POST", "/v1/join", body);
  }

  // Enrols a node named `hostname`; returns its credential.
  std::string enrol(const std::string& hostname) {
    auto reply = join(joinToken(), report(hostname));
    EXPECT_EQ(reply.status, 201) << reply.errorMessage();
    return reply.body->getValue<std::string>("credential");
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<manager::ManagerService> manager_;
  std::string adminToken_;

 private:
  std::string prefix_;
};

// One request as a browser sends it: a cookie and maybe a CSRF header, no bearer token.
struct RawReply {
  int status = 0;
  std::string body;
  std::string setCookie;
};
inline RawReply browserCall(const std::string& endpoint, const std::filesystem::path& caFile, const std::string& method,
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

}  // namespace shoal::testing
