// ABI 1.3 on the host side: the `daemon` a probe names (which services a rolling restart
// drains together), read only from descriptors that cover it, also through the SDK on an
// older host; and plugins' connection counters summed per node, unknown never read as 0.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <shoal/sdk.hpp>

#include <cstring>

#include "host/HostApi.hpp"
#include "host/HostObjects.hpp"
#include "host/Registries.hpp"
#include "manager/NodeConnections.hpp"

namespace {

using shoal::host::Registries;

class RegistrationTest : public ::testing::Test {
 protected:
  // A plugin's context while its on_init runs.
  shoal_plugin_ctx& begin(const std::string& plugin) {
    ctx_ = std::make_unique<shoal_plugin_ctx>();
    ctx_->pluginName = plugin;
    ctx_->registries = &registries_;
    ctx_->initializing = true;
    return *ctx_;
  }
  void commit() {
    ASSERT_TRUE(ctx_->firstRegistrationError.empty()) << ctx_->firstRegistrationError;
    registries_.commit(ctx_->staged);
  }
  // Registers a TCP probe through the host table; returns the host's message on refusal.
  std::string probe(const std::string& service, const std::string& daemon, std::uint32_t structSize = 0) {
    shoal_probe_desc d{};
    d.struct_size = structSize ? structSize : sizeof d;
    d.service = {service.data(), service.size()};
    d.kind = SHOAL_PROBE_TCP;
    d.port = 80;
    d.daemon = {daemon.data(), daemon.size()};
    shoal_buffer error{nullptr, 0};
    const auto status = api_->callback_register_probe(ctx_.get(), &d, &error);
    std::string message = error.data ? std::string(error.data, error.len) : "";
    api_->callback_buffer_free(&error);
    return status == SHOAL_OK ? "" : message.empty() ? "refused" : message;
  }

  const shoal_host_api* api_ = shoal::host::hostApiTable();
  Registries registries_;
  std::unique_ptr<shoal_plugin_ctx> ctx_;
};

TEST_F(RegistrationTest, ServicesNamingOneDaemonShareIt) {
  EXPECT_EQ(api_->abi_minor, SHOAL_ABI_VERSION_MINOR);
  begin("web");
  EXPECT_EQ(probe("http", "nginx"), "");
  EXPECT_EQ(probe("https", "nginx"), "");
  commit();
  begin("mail");
  EXPECT_EQ(probe("imap", "dovecot"), "");
  EXPECT_EQ(probe("pop3", "dovecot"), "");
  EXPECT_EQ(probe("smtp", ""), "");
  commit();
  EXPECT_EQ(registries_.servicesSharingDaemon("http"), (std::vector<std::string>{"http", "https"}));
  EXPECT_EQ(registries_.servicesSharingDaemon("https"), (std::vector<std::string>{"https", "http"}));
  EXPECT_EQ(registries_.servicesSharingDaemon("pop3"), (std::vector<std::string>{"pop3", "imap"}));
  EXPECT_EQ(registries_.servicesSharingDaemon("smtp"), (std::vector<std::string>{"smtp"}));
  EXPECT_EQ(registries_.servicesSharingDaemon("dns"), (std::vector<std::string>{"dns"}));
}

TEST_F(RegistrationTest, ADescriptorOfAbi1_2IsReadWithoutItsDaemon) {
  begin("old");
  // What a 1.2 plugin passes: its struct ends at http_expect_status, and whatever lies
  // beyond (here a daemon name) is not the host's to read.
  const auto v1_2 = static_cast<std::uint32_t>(offsetof(shoal_probe_desc, http_expect_status) +
                                               sizeof(std::uint32_t));
  EXPECT_EQ(probe("http", "nginx", v1_2), "");
  EXPECT_EQ(probe("https", "nginx", v1_2), "");
  commit();
  EXPECT_EQ(registries_.probes().at(0).daemon, "");
  EXPECT_EQ(registries_.servicesSharingDaemon("http"), (std::vector<std::string>{"http"}));
}

TEST_F(RegistrationTest, ABadDaemonNameIsRefusedNamingIt) {
  begin("bad");
  const auto message = probe("http", "Nginx Server");
  EXPECT_NE(message.find("daemon 'Nginx Server' must match"), std::string::npos) << message;
}

TEST_F(RegistrationTest, TheSdkSendsTheDaemonAndLeavesItOutForAnOlderHost) {
  begin("sdk");
  {
    shoal::Registrar reg(shoal::Host(api_, ctx_.get()));
    reg.probe(shoal::ProbeSpec::tcp("imap", 143).daemon("dovecot"));
  }
  // A 1.2 host refuses descriptors larger than it knows; the SDK sends it the 1.2 size.
  shoal_host_api older = *api_;
  older.abi_minor = 2;
  older.struct_size = static_cast<std::uint32_t>(offsetof(shoal_host_api, callback_stats_emit) +
                                                 sizeof older.callback_stats_emit);
  {
    shoal::Registrar reg(shoal::Host(&older, ctx_.get()));
    reg.probe(shoal::ProbeSpec::tcp("pop3", 110).daemon("dovecot"));
    EXPECT_FALSE(reg.host().offersConnections());
    EXPECT_THROW(reg.connections([](std::string_view) { return std::string("{}"); }), shoal::HostError);
  }
  commit();
  EXPECT_EQ(registries_.probes().at(0).daemon, "dovecot");
  EXPECT_EQ(registries_.probes().at(1).daemon, "");
}

// Connection counters with fixed answers, as a plugin's on_node_connections gives them.
shoal_status answer(void* user, shoal_str node, shoal_reply* reply) {
  const auto* text = static_cast<const char*>(user);
  // The node is passed as JSON with its id and address.
  auto o = Poco::JSON::Parser().parse(std::string(node.data, node.len)).extract<Poco::JSON::Object::Ptr>();
  if (o->getValue<std::string>("address") != "10.0.0.11") return SHOAL_ERR_INVALID_ARGUMENT;
  reply->output = text;
  return SHOAL_OK;
}

shoal_status failing(void*, shoal_str, shoal_reply* reply) {
  reply->error = "the dataplane is gone";
  return SHOAL_ERR_FAILED;
}

std::string registerCounter(shoal_plugin_ctx& ctx, const char* text,
                            shoal_status (*fn)(void*, shoal_str, shoal_reply*) = &answer) {
  shoal_connections_desc d{};
  d.struct_size = sizeof d;
  d.user = const_cast<char*>(text);
  d.on_node_connections = fn;
  shoal_buffer error{nullptr, 0};
  const auto status = shoal::host::hostApiTable()->callback_register_connections(&ctx, &d, &error);
  std::string message = error.data ? std::string(error.data, error.len) : "";
  shoal::host::hostApiTable()->callback_buffer_free(&error);
  return status == SHOAL_OK ? "" : message;
}

shoal::cluster::Node node11() {
  shoal::cluster::Node n;
  n.id = 3;
  n.address = "10.0.0.11";
  n.hostname = "web1";
  n.state = shoal::cluster::NodeState::Draining;
  return n;
}

TEST_F(RegistrationTest, ConnectionsOfEveryPluginAreSummed) {
  auto& lvs = begin("lvs");
  EXPECT_EQ(registerCounter(lvs,
                            R"({"connections": 3, "detail": [{"service": "http", "where": "tcp:192.0.2.1:80",)"
                            R"( "active": 2, "inactive": 1}]})"),
            "");
  commit();
  auto& other = begin("other");
  EXPECT_EQ(registerCounter(other, R"({"connections": 4, "detail": []})"), "");
  commit();
  auto c = shoal::manager::countNodeConnections(&registries_, node11(), {});
  EXPECT_EQ(c->getValue<std::int64_t>("connections"), 7);
  EXPECT_TRUE(c->getValue<bool>("draining"));
  EXPECT_EQ(c->getArray("serving")->size(), 0u);
  auto serving = shoal::manager::countNodeConnections(&registries_, node11(), {"https"})->getArray("serving");
  ASSERT_EQ(serving->size(), 1u);
  EXPECT_EQ(serving->getElement<std::string>(0), "https");
  auto detail = c->getArray("detail");
  ASSERT_EQ(detail->size(), 1u);
  EXPECT_EQ(detail->getObject(0)->getValue<std::string>("plugin"), "lvs");
  EXPECT_EQ(detail->getObject(0)->getValue<int>("inactive"), 1);
  EXPECT_EQ(c->getArray("unknown")->size(), 0u);
}

TEST_F(RegistrationTest, ASecondConnectionCounterRefusesThePlugin) {
  auto& twice = begin("twice");
  EXPECT_EQ(registerCounter(twice, R"({"connections": 0})"), "");
  EXPECT_NE(registerCounter(twice, "{}").find("at most one connection counter"), std::string::npos);
  EXPECT_NE(twice.firstRegistrationError.find("at most one connection counter"), std::string::npos);
}

TEST_F(RegistrationTest, AnUnknownCountIsNeverZero) {
  // No plugin counts: unknown.
  auto none = shoal::manager::countNodeConnections(&registries_, node11(), {});
  EXPECT_TRUE(none->get("connections").isEmpty());
  EXPECT_EQ(none->getArray("unknown")->size(), 1u);

  auto& here = begin("here");
  EXPECT_EQ(registerCounter(here, R"({"connections": 0})"), "");
  commit();
  auto& remote = begin("remote");
  EXPECT_EQ(registerCounter(remote, R"({"connections": null, "reason": "the director is another node"})"), "");
  commit();
  auto& broken = begin("broken");
  EXPECT_EQ(registerCounter(broken, "", &failing), "");
  commit();
  auto& nonsense = begin("nonsense");
  EXPECT_EQ(registerCounter(nonsense, R"({"connections": -2})"), "");
  commit();
  auto c = shoal::manager::countNodeConnections(&registries_, node11(), {});
  EXPECT_TRUE(c->get("connections").isEmpty());
  auto unknown = c->getArray("unknown");
  ASSERT_EQ(unknown->size(), 3u);
  EXPECT_EQ(unknown->getObject(0)->getValue<std::string>("reason"), "the director is another node");
  EXPECT_EQ(unknown->getObject(1)->getValue<std::string>("reason"), "the dataplane is gone");
  EXPECT_EQ(unknown->getObject(2)->getValue<std::string>("plugin"), "nonsense");
}

}  // namespace
