// The plugin host against real plugin libraries: the example plugin, a plugin built
// against the frozen ABI 1.0 header, and deliberately broken ones, all in one directory.
#include <Poco/AutoPtr.h>
#include <Poco/Util/MapConfiguration.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

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
  EXPECT_EQ(loaded, 4u);  // hello, compat_v1_0, compat_v1_2, compat_v1_4
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
