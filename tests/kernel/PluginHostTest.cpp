// The plugin host against real plugin libraries: the example plugin, a plugin built
// against the frozen ABI 1.0 header, and deliberately broken ones, all in one directory.
#include <Poco/AutoPtr.h>
#include <Poco/Util/MapConfiguration.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include <shoal/sdk.hpp>

#include "common/Error.hpp"
#include "host/HostApi.hpp"
#include "host/HostObjects.hpp"
#include "host/PluginHost.hpp"
#include "store/DocumentStore.hpp"
#include "store/Store.hpp"

namespace fs = std::filesystem;
using shoal::host::PluginHost;
using shoal::host::PluginRecord;
using shoal::host::PluginState;

namespace {

class PluginHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("shoal-pluginhost-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    store_ = shoal::store::Store::open({"sqlite:" + (dir_ / "test.db").string(), dir_});
    store_->migrate();
    documents_ = std::make_unique<shoal::store::DocumentStore>(*store_);
    config_ = new Poco::Util::MapConfiguration;
    config_->setString("plugin.hello.greeting", "Howdy");
    host_ = std::make_unique<PluginHost>(shoal::host::HostServices{config_.get(), documents_.get()});
    for (const auto& record : host_->loadDirectory(SHOAL_TEST_PLUGIN_DIR))
      records_[record.file.filename().string()] = record;
  }
  void TearDown() override {
    host_.reset();
    documents_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  const PluginRecord& record(const std::string& file) {
    auto it = records_.find(file);
    if (it == records_.end()) throw std::runtime_error(file + " was not in the plugin directory");
    return it->second;
  }

  // Runs a registered queue handler the way the queue will: payload in, reply out.
  shoal_status apply(const std::string& kind, const std::string& payload, shoal_reply& reply) {
    auto handler = host_->registries().queueHandler(kind);
    if (!handler) throw std::runtime_error("no handler for " + kind);
    return handler->onApply(handler->user, shoal_str{payload.data(), payload.size()}, &reply);
  }

  fs::path dir_;
  std::unique_ptr<shoal::store::Store> store_;
  std::unique_ptr<shoal::store::DocumentStore> documents_;
  Poco::AutoPtr<Poco::Util::MapConfiguration> config_;
  std::unique_ptr<PluginHost> host_;
  std::map<std::string, PluginRecord> records_;
};

void expectRefused(const PluginRecord& r, const std::string& reasonPart) {
  EXPECT_EQ(r.state, PluginState::Refused) << r.file;
  EXPECT_NE(r.reason.find(reasonPart), std::string::npos)
      << r.file << ": reason was \"" << r.reason << "\", expected it to mention \"" << reasonPart << "\"";
}

}  // namespace

TEST_F(PluginHostTest, ExamplePluginLoadsWithOneOfEachContribution) {
  const auto& hello = record("hello.so");
  ASSERT_EQ(hello.state, PluginState::Loaded) << hello.reason;
  EXPECT_EQ(hello.name, "hello");
  EXPECT_EQ(hello.version, "1.0.0");
  EXPECT_EQ(hello.abiMajor, SHOAL_ABI_VERSION_MAJOR);
  ASSERT_EQ(hello.contributions.queueHandlers.size(), 1u);
  EXPECT_EQ(hello.contributions.queueHandlers[0].kind, "hello.greet");
  ASSERT_EQ(hello.contributions.probes.size(), 1u);
  EXPECT_EQ(hello.contributions.probes[0].port, 7007);
  ASSERT_EQ(hello.contributions.probes[0].steps.size(), 1u);
  EXPECT_EQ(hello.contributions.probes[0].steps[0].second, "hello");
  ASSERT_EQ(hello.contributions.panels.size(), 1u);
  EXPECT_EQ(hello.contributions.panels[0].id, "greetings");
  ASSERT_EQ(hello.contributions.hooks.size(), 1u);
  EXPECT_EQ(hello.contributions.hooks[0].event, "node.joined");
}

TEST_F(PluginHostTest, QueueHandlerUsesConfigAndDocumentStoreThroughTheAbi) {
  shoal_reply first, second;
  ASSERT_EQ(apply("hello.greet", R"({"name":"ada"})", first), SHOAL_OK) << first.error;
  EXPECT_EQ(first.output, "Howdy, ada (greeting #1)");
  ASSERT_EQ(apply("hello.greet", R"({"name":"ada"})", second), SHOAL_OK) << second.error;
  EXPECT_EQ(second.output, "Howdy, ada (greeting #2)");

  // The count is in the store, in hello's namespace.
  auto doc = documents_->begin("hello")->get("greetings", "ada");
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->revision, 2);
  EXPECT_FALSE(documents_->begin("compat")->get("greetings", "ada"));
}

TEST_F(PluginHostTest, PluginExceptionsBecomeStatusAndMessageAtTheBoundary) {
  shoal_reply reply;
  EXPECT_EQ(apply("hello.greet", R"({"name":"<script>"})", reply), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(reply.error.find("\"name\" must be"), std::string::npos) << reply.error;
  shoal_reply missing;
  EXPECT_EQ(apply("hello.greet", "{}", missing), SHOAL_ERR_INVALID_ARGUMENT);
}

TEST_F(PluginHostTest, ValidateCallbackRefusesBadPayloadBeforeApply) {
  auto handler = host_->registries().queueHandler("hello.greet");
  ASSERT_TRUE(handler && handler->onValidate);
  std::string bad = R"({"name":""})";
  shoal_reply reply;
  EXPECT_EQ(handler->onValidate(handler->user, {bad.data(), bad.size()}, &reply),
            SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_FALSE(reply.error.empty());
}

TEST_F(PluginHostTest, PanelCallbacksAnswerWithData) {
  shoal_reply greet;
  ASSERT_EQ(apply("hello.greet", R"({"name":"grace"})", greet), SHOAL_OK) << greet.error;
  auto panels = host_->registries().panels();
  ASSERT_EQ(panels.size(), 2u);  // hello and compat
  const auto& panel = panels[0].plugin == "hello" ? panels[0] : panels[1];
  shoal_reply data;
  std::string section = "counts", query = "{}";
  ASSERT_EQ(panel.onData(panel.user, {section.data(), section.size()}, {query.data(), query.size()}, &data),
            SHOAL_OK) << data.error;
  EXPECT_NE(data.output.find("\"grace\""), std::string::npos) << data.output;
}

TEST_F(PluginHostTest, PluginBuiltAgainstFrozenAbi1_0Loads) {
  const auto& compat = record("compat_v1_0.so");
  ASSERT_EQ(compat.state, PluginState::Loaded) << compat.reason;
  EXPECT_EQ(compat.abiMajor, 1);
  EXPECT_EQ(compat.abiMinor, 0);
  shoal_reply reply;
  ASSERT_EQ(apply("compat.store", R"({"v":1})", reply), SHOAL_OK) << reply.error;
  EXPECT_EQ(reply.output, "stored");
  auto doc = documents_->begin("compat")->get("applied", "last");
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->json, R"({"v":1})");
}

// A plugin of the previous minor: its 1.2-sized descriptors are taken, its handler is called
// through on_apply (1.3's on_apply_ctx reads as absent), its endpoint keeps 1.1's mapping.
TEST_F(PluginHostTest, PluginBuiltAgainstFrozenAbi1_2LoadsAndWorks) {
  const auto& compat = record("compat_v1_2.so");
  ASSERT_EQ(compat.state, PluginState::Loaded) << compat.reason;
  EXPECT_EQ(compat.abiMinor, 2);
  auto handler = host_->registries().queueHandler("compat12.echo");
  ASSERT_TRUE(handler);
  EXPECT_EQ(handler->onApplyCtx, nullptr);
  shoal_reply reply;
  ASSERT_EQ(apply("compat12.echo", R"({"v":2})", reply), SHOAL_OK) << reply.error;
  EXPECT_EQ(reply.output, R"(applied {"v":2})");
  auto api = host_->registries().api("compat12");
  ASSERT_TRUE(api);
  auto call = [&](const std::string& method, const std::string& path, shoal_reply& out) {
    return api->onRequest(api->user, shoal_str{method.data(), method.size()}, shoal_str{path.data(), path.size()},
                          shoal_str{"", 0}, shoal_str{"{}", 2}, &out);
  };
  shoal_reply got;
  ASSERT_EQ(call("GET", "", got), SHOAL_OK);
  EXPECT_EQ(got.output, R"({"abi": "1.2"})");
  shoal_reply conflict;
  EXPECT_EQ(call("POST", "", conflict), SHOAL_ERR_CONFLICT);
  EXPECT_EQ(shoal::host::pluginHttpAnswer(SHOAL_ERR_CONFLICT, conflict.httpStatus, true).status, 409);
  // 1.2's stats_emit reaches the host (which has no runtime here, so says so).
  shoal_reply stats;
  EXPECT_EQ(call("POST", "stats", stats), SHOAL_ERR_UNSUPPORTED);
  EXPECT_NE(stats.error.find("stats_emit"), std::string::npos) << stats.error;
}

TEST_F(PluginHostTest, FileThatIsNotASharedLibraryIsRefused) {
  expectRefused(record("not_elf.so"), "not a loadable shared library");
}

TEST_F(PluginHostTest, LibraryWithoutEntryPointIsRefused) {
  expectRefused(record("no_entry_point.so"), "not a shoal plugin: it does not export shoal_plugin_entry");
}

TEST_F(PluginHostTest, NewerAbiMajorIsRefusedNamingBothVersions) {
  const std::string minor = std::to_string(SHOAL_ABI_VERSION_MINOR);
  expectRefused(record("broken_abi_major.so"),
                "built for plugin ABI 2." + minor + " but this shoald provides ABI 1." + minor);
}

TEST_F(PluginHostTest, DescriptorLargerThanKnownIsRefused) {
  expectRefused(record("broken_table_large.so"), "larger than the");
  expectRefused(record("broken_table_large.so"), "upgrade shoald");
}

TEST_F(PluginHostTest, EntryPointReturningNothingIsRefused) {
  expectRefused(record("broken_declines.so"), "declined to load");
}

TEST_F(PluginHostTest, InvalidPluginNameIsRefused) {
  expectRefused(record("broken_bad_name.so"), "its name 'Bad Name!' must match");
}

TEST_F(PluginHostTest, InitThatThrowsIsRefusedWithTheExceptionText) {
  expectRefused(record("broken_init_throws.so"), "SHOAL_ERR_EXCEPTION");
  expectRefused(record("broken_init_throws.so"), "cannot open /nonexistent/broken.conf");
}

TEST_F(PluginHostTest, InitThatFailsIsRefusedWithItsMessage) {
  expectRefused(record("broken_init_fails.so"),
                "its init failed (SHOAL_ERR_INVALID_ARGUMENT): required setting plugin.init_fails.endpoint is missing");
}

TEST_F(PluginHostTest, SecondPluginWithTheSameNameIsRefused) {
  expectRefused(record("x_duplicate_name.so"), "a plugin named 'hello' is already loaded from");
  EXPECT_FALSE(host_->registries().queueHandler("second.hello"));
}

TEST_F(PluginHostTest, DuplicateQueueKindRefusesThePluginAndNoneOfItsContributionsStay) {
  expectRefused(record("x_duplicate_kind.so"), "queue handler kind 'hello.greet' is already registered by plugin 'hello'");
  EXPECT_FALSE(host_->registries().queueHandler("dupkind.own"));
  EXPECT_EQ(host_->registries().queueHandler("hello.greet")->plugin, "hello");
}

TEST_F(PluginHostTest, PanelWithMarkupTypeIsRefused) {
  expectRefused(record("broken_bad_panel.so"), "sections[0].type: 'html' is not one of");
}

TEST_F(PluginHostTest, OnlyGoodPluginsLoadAndEveryFileIsReported) {
  std::size_t loaded = 0;
  for (const auto& [file, r] : records_) loaded += r.state == PluginState::Loaded;
  EXPECT_EQ(loaded, 5u);  // hello, compat_v1_0, compat_v1_2, compat_v1_4, limits
  EXPECT_EQ(records_.size(), host_->records().size());
  EXPECT_GE(records_.size(), 13u);
}

TEST_F(PluginHostTest, RegistrationOutsideInitIsRefused) {
  // The host table is the same for every plugin; try to register after init finished.
  const shoal_host_api* api = shoal::host::hostApiTable();
  shoal_plugin_ctx ctx;
  ctx.pluginName = "late";
  ctx.initializing = false;
  shoal_hook_desc hook{};
  hook.struct_size = sizeof hook;
  hook.event = {"node.left", 9};
  hook.on_event = [](void*, shoal_str, shoal_str, shoal_reply*) { return SHOAL_OK; };
  shoal_buffer error{nullptr, 0};
  EXPECT_EQ(api->callback_register_hook(&ctx, &hook, &error), SHOAL_ERR_UNSUPPORTED);
  EXPECT_NE(std::string(error.data, error.len).find("only possible during on_init"), std::string::npos);
  api->callback_buffer_free(&error);
}

TEST_F(PluginHostTest, ShutdownClearsTheRegistries) {
  host_->shutdown();
  EXPECT_FALSE(host_->registries().queueHandler("hello.greet"));
  host_->shutdown();  // idempotent
}

TEST(PluginHostDirectory, MissingDirectoryIsAClearError) {
  PluginHost host({});
  try {
    host.loadDirectory("/nonexistent/shoal/plugins");
    FAIL() << "expected an error";
  } catch (const shoal::Error& e) {
    EXPECT_EQ(e.code(), shoal::ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/shoal/plugins does not exist"), std::string::npos);
  }
}

// ---- ABI 1.4 plugins in a 1.5 host -------------------------------------------------------

// The previous minor's plugin, built against the frozen 1.4 header: its handler gets 1.3's
// apply context, its metrics are taken, and 1.4's stats_declare reaches the host (which has
// no runtime here, so says so).
TEST_F(PluginHostTest, PluginBuiltAgainstFrozenAbi1_4LoadsAndWorks) {
  const auto& compat = record("compat_v1_4.so");
  ASSERT_EQ(compat.state, PluginState::Loaded) << compat.reason;
  EXPECT_EQ(compat.abiMinor, 4);
  EXPECT_TRUE(compat.contributions.limits.empty());
  auto handler = host_->registries().queueHandler("compat14.echo");
  ASSERT_TRUE(handler);
  ASSERT_NE(handler->onApplyCtx, nullptr);
  const std::string kind = "compat14.echo", key = "compat14", payload = R"({"v":4})";
  shoal_apply_context context{};
  context.struct_size = sizeof context;
  context.attempt = 2;
  context.command_id = 7;
  context.kind = {kind.data(), kind.size()};
  context.ordering_key = {key.data(), key.size()};
  shoal_reply reply;
  ASSERT_EQ(handler->onApplyCtx(handler->user, &context, {payload.data(), payload.size()}, &reply), SHOAL_OK)
      << reply.error;
  EXPECT_EQ(reply.output, R"(compat14.echo attempt 2: {"v":4})");

  bool metrics = false;
  for (const auto& entry : host_->registries().metrics()) metrics = metrics || entry.plugin == "compat14";
  EXPECT_TRUE(metrics);

  auto api = host_->registries().api("compat14");
  ASSERT_TRUE(api);
  auto call = [&](const std::string& method, const std::string& path, shoal_reply& out) {
    return api->onRequest(api->user, shoal_str{method.data(), method.size()}, shoal_str{path.data(), path.size()},
                          shoal_str{"", 0}, shoal_str{"{}", 2}, &out);
  };
  shoal_reply got;
  ASSERT_EQ(call("GET", "", got), SHOAL_OK);
  EXPECT_EQ(got.output, R"({"abi": "1.4"})");
  shoal_reply declare;
  EXPECT_EQ(call("POST", "declare", declare), SHOAL_ERR_UNSUPPORTED);
  EXPECT_NE(declare.error.find("stats_declare"), std::string::npos) << declare.error;
}

// ---- ABI 1.5: limit dimensions -----------------------------------------------------------

namespace {

// What the account side answers, without accounts: "acme" may have 3 limits.mailboxes and
// any number of limits.sites; no other account exists. Records every question.
struct FakeAccounts {
  struct Question {
    std::string account, limit;
    std::int64_t wouldHave;
  };
  std::vector<Question> asked;

  shoal::host::LimitChecker checker() {
    return [this](const std::string& account, const std::string& limit, std::int64_t wouldHave) {
      asked.push_back({account, limit, wouldHave});
      if (account != "acme") throw shoal::Error(shoal::ErrorCode::NotFound, "no account '" + account + "'");
      if (limit == "limits.mailboxes" && wouldHave > 3)
        throw shoal::Error(shoal::ErrorCode::Conflict,
                           "account 'acme' is at its limit of 3 for limits.mailboxes (Mailboxes)");
    };
  }
};

std::string checkPayload(const std::string& account, const std::string& dimension, std::int64_t wouldHave) {
  return R"({"account":")" + account + R"(","dimension":")" + dimension +
         R"(","would_have":)" + std::to_string(wouldHave) + "}";
}

}  // namespace

TEST_F(PluginHostTest, PluginBuiltAgainstTheCurrentHeaderDeclaresLimits) {
  const auto& limits = record("limits.so");
  ASSERT_EQ(limits.state, PluginState::Loaded) << limits.reason;
  EXPECT_EQ(limits.abiMinor, SHOAL_ABI_VERSION_MINOR);
  ASSERT_EQ(limits.contributions.limits.size(), 2u);

  auto all = host_->registries().limits();
  ASSERT_EQ(all.size(), 2u);  // no other test plugin declares any
  auto sites = host_->registries().limit("limits.sites");
  ASSERT_TRUE(sites);
  EXPECT_EQ(sites->plugin, "limits");
  EXPECT_EQ(sites->dimension, "sites");
  EXPECT_EQ(sites->label, "Sites");
  EXPECT_EQ(sites->counts, "domains");
  auto mailboxes = host_->registries().limit("limits.mailboxes");
  ASSERT_TRUE(mailboxes);
  EXPECT_EQ(mailboxes->label, "Mailboxes");
  EXPECT_EQ(mailboxes->counts, "");
  EXPECT_FALSE(host_->registries().limit("mailboxes"));  // only by full name
  EXPECT_FALSE(host_->registries().limit("hello.mailboxes"));
}

TEST_F(PluginHostTest, LimitCheckWithoutAccountsIsUnsupported) {
  shoal_reply reply;
  EXPECT_EQ(apply("limits.check", checkPayload("acme", "mailboxes", 1), reply), SHOAL_ERR_UNSUPPORTED);
  EXPECT_EQ(reply.error, "accounts are not available in this process");
}

TEST_F(PluginHostTest, LimitCheckAsksTheInstalledCheckerWithTheFullName) {
  FakeAccounts accounts;
  host_->setLimitChecker(accounts.checker());

  shoal_reply within;
  ASSERT_EQ(apply("limits.check", checkPayload("acme", "mailboxes", 3), within), SHOAL_OK) << within.error;
  EXPECT_EQ(within.output, "allowed");
  ASSERT_EQ(accounts.asked.size(), 1u);
  EXPECT_EQ(accounts.asked[0].account, "acme");
  EXPECT_EQ(accounts.asked[0].limit, "limits.mailboxes");
  EXPECT_EQ(accounts.asked[0].wouldHave, 3);

  shoal_reply over;
  EXPECT_EQ(apply("limits.check", checkPayload("acme", "mailboxes", 4), over), SHOAL_ERR_CONFLICT);
  EXPECT_EQ(over.error, "account 'acme' is at its limit of 3 for limits.mailboxes (Mailboxes)");
  // A conflict of a plugin's API answer is the ADR's HTTP 409.
  EXPECT_EQ(shoal::host::pluginHttpAnswer(SHOAL_ERR_CONFLICT, 0, true).status, 409);

  shoal_reply unknownAccount;
  EXPECT_EQ(apply("limits.check", checkPayload("nobody", "mailboxes", 1), unknownAccount), SHOAL_ERR_NOT_FOUND);
  EXPECT_EQ(unknownAccount.error, "no account 'nobody'");
  ASSERT_EQ(accounts.asked.size(), 3u);

  // An undeclared dimension and bad input never reach the account side.
  shoal_reply undeclared;
  EXPECT_EQ(apply("limits.check", checkPayload("acme", "ftp_users", 1), undeclared), SHOAL_ERR_NOT_FOUND);
  EXPECT_EQ(undeclared.error, "no limit 'limits.ftp_users' is declared");
  shoal_reply negative;
  EXPECT_EQ(apply("limits.check", checkPayload("acme", "mailboxes", -1), negative), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(negative.error.find("would_have"), std::string::npos) << negative.error;
  shoal_reply noAccount;
  EXPECT_EQ(apply("limits.check", checkPayload("", "mailboxes", 1), noAccount), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(noAccount.error.find("account is empty"), std::string::npos) << noAccount.error;
  EXPECT_EQ(accounts.asked.size(), 3u);

  // Uninstalled again: back to unsupported.
  host_->setLimitChecker({});
  shoal_reply gone;
  EXPECT_EQ(apply("limits.check", checkPayload("acme", "mailboxes", 1), gone), SHOAL_ERR_UNSUPPORTED);
}

TEST_F(PluginHostTest, LimitDeclarationsAreValidatedNamingTheField) {
  const shoal_host_api* api = shoal::host::hostApiTable();
  ASSERT_NE(api->callback_register_limit, nullptr);
  shoal_plugin_ctx ctx;
  ctx.pluginName = "direct";
  shoal::host::Registries registries;
  ctx.registries = &registries;
  ctx.initializing = true;
  auto declare = [&](const std::string& dimension, const std::string& label, const std::string& counts,
                     std::string& message) {
    shoal_limit_desc desc{};
    desc.struct_size = sizeof desc;
    desc.dimension = {dimension.data(), dimension.size()};
    desc.label = {label.data(), label.size()};
    desc.counts = {counts.data(), counts.size()};
    shoal_buffer error{nullptr, 0};
    shoal_status status = api->callback_register_limit(&ctx, &desc, &error);
    message = error.data ? std::string(error.data, error.len) : "";
    api->callback_buffer_free(&error);
    return status;
  };
  std::string message;
  EXPECT_EQ(declare("Domains", "Domains", "domains", message), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("limit dimension 'Domains' must match [a-z][a-z0-9_]{0,31}"), std::string::npos) << message;
  EXPECT_EQ(declare("a23456789012345678901234567890123", "Long", "", message), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("limit dimension"), std::string::npos) << message;
  EXPECT_EQ(declare("disk_mb", "", "", message), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("'direct.disk_mb': label is empty"), std::string::npos) << message;
  EXPECT_EQ(declare("disk_mb", std::string(65, 'x'), "", message), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("label is 65 bytes, at most 64"), std::string::npos) << message;
  EXPECT_EQ(declare("disk_mb", "Disk\nspace", "", message), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("label must be one line"), std::string::npos) << message;
  EXPECT_EQ(declare("disk_mb", "Disk space (MB)", "megabytes", message), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("counts 'megabytes' must be \"domains\""), std::string::npos) << message;
  EXPECT_TRUE(ctx.staged.limits.empty());

  EXPECT_EQ(declare("disk_mb", std::string(64, 'x'), "", message), SHOAL_OK) << message;
  EXPECT_EQ(declare("domains", "Domains", "domains", message), SHOAL_OK) << message;
  EXPECT_EQ(declare("disk_mb", "Disk space (MB)", "", message), SHOAL_ERR_CONFLICT);
  EXPECT_NE(message.find("limit 'direct.disk_mb' declared twice"), std::string::npos) << message;
  ASSERT_EQ(ctx.staged.limits.size(), 2u);
  EXPECT_EQ(ctx.staged.limits[1].name, "direct.domains");

  // A descriptor from a newer minor than this host knows is refused.
  shoal_limit_desc larger{};
  larger.struct_size = sizeof larger + 8;
  shoal_buffer error{nullptr, 0};
  EXPECT_EQ(api->callback_register_limit(&ctx, &larger, &error), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(error.data, error.len).find("upgrade shoald"), std::string::npos);
  api->callback_buffer_free(&error);

  // Only during on_init.
  ctx.initializing = false;
  EXPECT_EQ(declare("inodes", "Inodes", "", message), SHOAL_ERR_UNSUPPORTED);
  EXPECT_NE(message.find("only possible during on_init"), std::string::npos) << message;
}

TEST_F(PluginHostTest, SecondDeclarationOfALimitRefusesThePlugin) {
  expectRefused(record("broken_duplicate_limit.so"), "limit 'broken_duplicate_limit.domains' declared twice");
  EXPECT_FALSE(host_->registries().limit("broken_duplicate_limit.domains"));
}

TEST_F(PluginHostTest, AccountAndDomainEventsAreKnownToHooks) {
  const shoal_host_api* api = shoal::host::hostApiTable();
  shoal_plugin_ctx ctx;
  ctx.pluginName = "direct";
  shoal::host::Registries registries;
  ctx.registries = &registries;
  ctx.initializing = true;
  auto subscribe = [&](const std::string& event) {
    shoal_hook_desc hook{};
    hook.struct_size = sizeof hook;
    hook.event = {event.data(), event.size()};
    hook.on_event = [](void*, shoal_str, shoal_str, shoal_reply*) { return SHOAL_OK; };
    return api->callback_register_hook(&ctx, &hook, nullptr);
  };
  for (const char* event : {"account.created", "account.changed", "account.suspended", "account.unsuspended",
                            "account.removed", "domain.added", "domain.removed"})
    EXPECT_EQ(subscribe(event), SHOAL_OK) << event;
  EXPECT_EQ(subscribe("domain.renamed"), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ctx.staged.hooks.size(), 7u);
}

// The SDK on a host of ABI 1.4: the table's struct_size ends before the 1.5 callbacks (whose
// pointers this copy still holds, so struct_size alone decides), so neither is called; both
// refuse with UNSUPPORTED naming the ABI they need.
TEST(SdkOnAnOlderHost, LimitCallsRefuseCleanlyWhenTheTableLacksThem) {
  shoal_host_api older = *shoal::host::hostApiTable();
  older.struct_size = offsetof(shoal_host_api, callback_stats_declare) + sizeof older.callback_stats_declare;
  older.abi_minor = 4;
  shoal_plugin_ctx ctx;
  ctx.pluginName = "older";
  ctx.initializing = true;
  const shoal::Host host(&older, &ctx);
  EXPECT_FALSE(host.offersLimits());
  shoal::Registrar registrar(host);
  try {
    registrar.limit("domains", "Domains", shoal::kLimitCountsDomains);
    FAIL() << "limit() on a 1.4 host did not refuse";
  } catch (const shoal::HostError& e) {
    EXPECT_EQ(e.status(), SHOAL_ERR_UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("needs ABI 1.5"), std::string::npos) << e.what();
  }
  try {
    host.checkLimit("acme", "disk_mb", 1);
    FAIL() << "checkLimit() on a 1.4 host did not refuse";
  } catch (const shoal::HostError& e) {
    EXPECT_EQ(e.status(), SHOAL_ERR_UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("(ABI 1.4) offers no limit_check; it needs ABI 1.5"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(ctx.staged.limits.empty());

  // The same calls on the real table reach the host.
  const shoal::Host current(shoal::host::hostApiTable(), &ctx);
  EXPECT_TRUE(current.offersLimits());
}
