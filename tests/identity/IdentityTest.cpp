// An account's Unix identity on a real system (ADR 0013): putIdentity / removeIdentity with
// the real groupadd, useradd, usermod, userdel and groupdel, and the kernel's queue handlers
// account.identity.put / .remove through their registry entries. Needs root.
//
// Every name starts with "zzid" and every id lies in 47000..47099, so nothing of the machine's
// is touched; TearDown removes whatever a test left.
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <shoal/process.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/Error.hpp"
#include "host/HostObjects.hpp"
#include "host/PluginHost.hpp"
#include "hosting/IdentityHandlers.hpp"
#include "hosting/UnixIdentity.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using shoal::Error;
using shoal::ErrorCode;
using shoal::hosting::IdentityChange;
using shoal::hosting::IdentityTools;
using shoal::hosting::putIdentity;
using shoal::hosting::removeIdentity;
using shoal::hosting::UnixIdentity;

namespace {

const std::vector<std::string> kTestNames{"zzid1", "zzid2", "zzid3", "zzid4", "zzid5",
                                          "zzid6", "zzid7", "zzid8", "zzid9"};
constexpr std::uint32_t kFirstId = 47000;
constexpr std::uint32_t kLastId = 47099;
const std::string kHomeRoot = "/srv/shoal-identity-test";

struct User {
  std::string name;
  std::uint32_t uid, gid;
  std::string home, shell;
};

std::optional<User> user(const std::string& name) {
  const passwd* p = ::getpwnam(name.c_str());
  if (p == nullptr) return std::nullopt;
  return User{p->pw_name, p->pw_uid, p->pw_gid, p->pw_dir, p->pw_shell};
}

std::optional<std::uint32_t> groupGid(const std::string& name) {
  const group* g = ::getgrnam(name.c_str());
  if (g == nullptr) return std::nullopt;
  return g->gr_gid;
}

bool gidTaken(std::uint32_t gid) { return ::getgrgid(gid) != nullptr; }
bool uidTaken(std::uint32_t uid) { return ::getpwuid(uid) != nullptr; }

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The user database as a whole, to show that a refused change wrote nothing.
std::string userDatabase() {
  return readFile("/etc/passwd") + readFile("/etc/shadow") + readFile("/etc/group") + readFile("/etc/gshadow");
}

void run(const std::vector<std::string>& argv) {
  const auto r = shoal::runProgram(argv, 30s);
  ASSERT_TRUE(r.succeeded()) << argv[0] << " " << r.describe() << ": " << r.output;
}

// A user of another's making, as an admin would have added it by hand: its own group of the
// same name and id.
void addForeignUser(const std::string& name, std::uint32_t id) {
  run({"groupadd", "--gid", std::to_string(id), name});
  run({"useradd", "--uid", std::to_string(id), "--gid", std::to_string(id), "--no-create-home", "--shell",
       "/usr/sbin/nologin", name});
}

UnixIdentity identity(const std::string& name, std::uint32_t id) {
  return UnixIdentity{name, id, id, kHomeRoot + "/" + name};
}

// Calls `body` and returns the Error it throws; fails the test when it throws none.
template <typename Body>
Error thrown(Body&& body) {
  try {
    body();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no shoal::Error was thrown";
  return Error(ErrorCode::Internal, "none");
}

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "this test runs useradd and needs root";
    removeTestIdentities();
    for (std::uint32_t id = kFirstId; id <= kLastId; ++id) {
      ASSERT_FALSE(uidTaken(id)) << "uid " << id << " is in use on this machine; the test needs 47000..47099 free";
      ASSERT_FALSE(gidTaken(id)) << "gid " << id << " is in use on this machine; the test needs 47000..47099 free";
    }
  }
  void TearDown() override {
    removeTestIdentities();
    std::error_code ignored;
    fs::remove_all(kHomeRoot, ignored);
  }
  static void removeTestIdentities() {
    for (const auto& name : kTestNames) {
      if (user(name)) shoal::runProgram({"userdel", name}, 30s);
      if (groupGid(name)) shoal::runProgram({"groupdel", name}, 30s);
    }
  }
};

TEST_F(IdentityTest, PutCreatesTheGroupAndTheUserWithTheClusterIds) {
  const UnixIdentity wanted{"zzid1", 47001, 47002, kHomeRoot + "/zzid1"};
  EXPECT_EQ(putIdentity(wanted), IdentityChange::Created);
  const auto made = user("zzid1");
  ASSERT_TRUE(made);
  EXPECT_EQ(made->uid, 47001u);
  EXPECT_EQ(made->gid, 47002u);
  EXPECT_EQ(made->home, kHomeRoot + "/zzid1");
  EXPECT_EQ(made->shell, "/usr/sbin/nologin");
  EXPECT_EQ(groupGid("zzid1"), std::optional<std::uint32_t>(47002));
  EXPECT_FALSE(fs::exists(kHomeRoot + "/zzid1")) << "the home is the plugins' to create, on shared storage";
}

TEST_F(IdentityTest, PutAgainChangesNothingAndAMovedHomeIsUpdated) {
  ASSERT_EQ(putIdentity(identity("zzid1", 47001)), IdentityChange::Created);
  const std::string before = userDatabase();
  EXPECT_EQ(putIdentity(identity("zzid1", 47001)), IdentityChange::AlreadyPresent);
  EXPECT_EQ(userDatabase(), before);

  UnixIdentity moved = identity("zzid1", 47001);
  moved.home = kHomeRoot + "/elsewhere/zzid1";
  EXPECT_EQ(putIdentity(moved), IdentityChange::HomeChanged);
  ASSERT_TRUE(user("zzid1"));
  EXPECT_EQ(user("zzid1")->home, moved.home);
  EXPECT_EQ(user("zzid1")->uid, 47001u);
  EXPECT_EQ(putIdentity(moved), IdentityChange::AlreadyPresent);
}

TEST_F(IdentityTest, PutCreatesTheUserWhenOnlyItsGroupExists) {
  run({"groupadd", "--gid", "47003", "zzid3"});
  EXPECT_EQ(putIdentity(identity("zzid3", 47003)), IdentityChange::Created);
  ASSERT_TRUE(user("zzid3"));
  EXPECT_EQ(user("zzid3")->uid, 47003u);
}

TEST_F(IdentityTest, ANameWithAnotherUidIsRefusedAndNothingIsWritten) {
  addForeignUser("zzid2", 47010);
  const std::string before = userDatabase();
  const Error e = thrown([] { putIdentity(identity("zzid2", 47011)); });
  EXPECT_EQ(e.code(), ErrorCode::Conflict);
  EXPECT_STREQ(e.what(), "user 'zzid2' exists with uid 47010, the cluster gives it 47011");
  EXPECT_EQ(userDatabase(), before);
  EXPECT_FALSE(gidTaken(47011)) << "no group was created for the refused identity";
}

TEST_F(IdentityTest, AUidOfAnotherNameIsRefusedAndNothingIsWritten) {
  addForeignUser("zzid3", 47020);
  const std::string before = userDatabase();
  // The cluster's gid is free; the uid is not: not even the group is created.
  const Error e = thrown([] { putIdentity(UnixIdentity{"zzid4", 47020, 47021, kHomeRoot + "/zzid4"}); });
  EXPECT_EQ(e.code(), ErrorCode::Conflict);
  EXPECT_STREQ(e.what(), "uid 47020 belongs to 'zzid3' here, the cluster gives it to 'zzid4'");
  EXPECT_EQ(userDatabase(), before);
  EXPECT_FALSE(groupGid("zzid4"));
  EXPECT_FALSE(user("zzid4"));
}

TEST_F(IdentityTest, GroupNameOrGidOfAnotherAreRefusedAndNothingIsWritten) {
  run({"groupadd", "--gid", "47030", "zzid5"});
  std::string before = userDatabase();
  Error e = thrown([] { putIdentity(identity("zzid5", 47031)); });
  EXPECT_EQ(e.code(), ErrorCode::Conflict);
  EXPECT_STREQ(e.what(), "group 'zzid5' exists with gid 47030, the cluster gives it 47031");
  EXPECT_EQ(userDatabase(), before);

  e = thrown([] { putIdentity(UnixIdentity{"zzid6", 47032, 47030, kHomeRoot + "/zzid6"}); });
  EXPECT_EQ(e.code(), ErrorCode::Conflict);
  EXPECT_STREQ(e.what(), "gid 47030 belongs to group 'zzid5' here, the cluster gives it to 'zzid6'");
  EXPECT_EQ(userDatabase(), before);
  EXPECT_FALSE(user("zzid6"));
}

TEST_F(IdentityTest, AGroupCreatedForAUserThatCouldNotBeAddedIsRemovedAgain) {
  IdentityTools tools;
  tools.useradd = "false";  // useradd failing after groupadd succeeded
  const std::string before = userDatabase();
  const Error e = thrown([&] { putIdentity(identity("zzid7", 47040), tools); });
  EXPECT_EQ(e.code(), ErrorCode::Failed);
  EXPECT_NE(std::string(e.what()).find("false --uid 47040 --gid 47040"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("exited with status 1"), std::string::npos) << e.what();
  EXPECT_FALSE(groupGid("zzid7"));
  EXPECT_FALSE(gidTaken(47040));
  EXPECT_EQ(userDatabase(), before);
}

TEST_F(IdentityTest, RemoveDeletesUserAndGroupButNoFileAndIsIdempotent) {
  ASSERT_EQ(putIdentity(identity("zzid1", 47050)), IdentityChange::Created);
  const std::string home = kHomeRoot + "/zzid1";
  fs::create_directories(home);
  std::ofstream(home + "/index.html") << "kept\n";
  ASSERT_EQ(::chown(home.c_str(), 47050, 47050), 0);

  EXPECT_EQ(removeIdentity("zzid1", 47050), IdentityChange::Removed);
  EXPECT_FALSE(user("zzid1"));
  EXPECT_FALSE(groupGid("zzid1"));
  EXPECT_EQ(readFile(home + "/index.html"), "kept\n");
  EXPECT_EQ(removeIdentity("zzid1", 47050), IdentityChange::AlreadyAbsent);

  // A group left behind without its user (removed by hand) goes with the next removal.
  run({"groupadd", "--gid", "47051", "zzid2"});
  EXPECT_EQ(removeIdentity("zzid2", 47051), IdentityChange::Removed);
  EXPECT_FALSE(groupGid("zzid2"));
}

TEST_F(IdentityTest, RemoveRefusesAUserOfAnotherUid) {
  addForeignUser("zzid8", 47060);
  const std::string before = userDatabase();
  const Error e = thrown([] { removeIdentity("zzid8", 47061); });
  EXPECT_EQ(e.code(), ErrorCode::Conflict);
  EXPECT_STREQ(e.what(), "user 'zzid8' has uid 47060 here, not 47061; it is not removed");
  EXPECT_EQ(userDatabase(), before);
  ASSERT_TRUE(user("zzid8"));
  EXPECT_EQ(user("zzid8")->uid, 47060u);
}

// ---- the queue handlers, through the entries the plugin host's registries hold -------------

struct Answer {
  shoal_status status;
  std::string output, error;
};

class IdentityHandlersTest : public IdentityTest {
 protected:
  void SetUp() override {
    IdentityTest::SetUp();
    host_ = std::make_unique<shoal::host::PluginHost>(shoal::host::HostServices{});
    host_->registerBuiltIns(shoal::hosting::identityQueueHandlers());
  }
  void TearDown() override {
    host_.reset();
    IdentityTest::TearDown();
  }
  shoal::host::QueueHandlerEntry entry(const std::string& kind) const {
    auto found = host_->registries().queueHandler(kind);
    EXPECT_TRUE(found) << kind;
    return found.value_or(shoal::host::QueueHandlerEntry{});
  }
  Answer validate(const std::string& kind, const std::string& payload) const {
    const auto e = entry(kind);
    shoal_reply reply;
    const shoal_status status = e.onValidate(e.user, shoal_str{payload.data(), payload.size()}, &reply);
    return {status, reply.output, reply.error};
  }
  Answer apply(const std::string& kind, const std::string& payload) const {
    const auto e = entry(kind);
    shoal_reply reply;
    const shoal_status status = e.onApply(e.user, shoal_str{payload.data(), payload.size()}, &reply);
    return {status, reply.output, reply.error};
  }
  std::unique_ptr<shoal::host::PluginHost> host_;
};

// The account JSON of ADR 0013, whole: the handlers read only what the identity needs.
std::string account(const std::string& name, std::uint32_t uid, std::uint32_t gid) {
  return R"({"name": ")" + name + R"(", "uid": )" + std::to_string(uid) + R"(, "gid": )" + std::to_string(gid) +
         R"(, "home": ")" + kHomeRoot + "/" + name + R"(",
     "state": "active", "suspend_reason": "", "plan": "basic",
     "limits": {"http.domains": 10, "http.disk_mb": null},
     "domains": [{"name": ")" + name + R"(.test", "unicode": ")" + name +
         R"(.test", "kind": "primary", "parent": "", "nginx_extra": ""}],
     "revision": 1, "created_at_ms": 1764000000000, "updated_at_ms": 1764000000000})";
}

TEST_F(IdentityHandlersTest, TheKernelOwnsBothKinds) {
  for (const std::string kind : {"account.identity.put", "account.identity.remove"}) {
    const auto e = entry(kind);
    EXPECT_EQ(e.plugin, "kernel");
    EXPECT_NE(e.onValidate, nullptr);
    EXPECT_NE(e.onApply, nullptr);
  }
}

TEST_F(IdentityHandlersTest, ValidateNamesTheFieldThatIsWrong) {
  const std::string home = kHomeRoot + "/zzid1";
  const std::vector<std::pair<std::string, std::string>> refused{
      {"[]", "payload: must be a JSON object"},
      {"{", "payload: not JSON"},
      {R"({"uid": 47001, "gid": 47001, "home": "/srv/a"})", "name: missing"},
      {R"({"name": "root", "uid": 47001, "gid": 47001, "home": "/srv/a"})", "name: 'root' is reserved"},
      {R"({"name": "Zz", "uid": 47001, "gid": 47001, "home": "/srv/a"})", "name: must start with"},
      {R"({"name": 7, "uid": 47001, "gid": 47001, "home": "/srv/a"})", "name: must be a string"},
      {R"({"name": "zzid1", "gid": 47001, "home": "/srv/a"})", "uid: missing"},
      {R"({"name": "zzid1", "uid": 999, "gid": 47001, "home": "/srv/a"})",
       "uid: must be a whole number from 1000 to 4294967294, not 999"},
      {R"({"name": "zzid1", "uid": "47001", "gid": 47001, "home": "/srv/a"})", "uid: must be a whole number"},
      {R"({"name": "zzid1", "uid": 47001.5, "gid": 47001, "home": "/srv/a"})", "uid: must be a whole number"},
      {R"({"name": "zzid1", "uid": true, "gid": 47001, "home": "/srv/a"})", "uid: must be a whole number"},
      {R"({"name": "zzid1", "uid": 47001, "gid": 4294967295, "home": "/srv/a"})",
       "gid: must be a whole number from 1000 to 4294967294, not 4294967295"},
      {R"({"name": "zzid1", "uid": 47001, "gid": 18446744073709551615, "home": "/srv/a"})", "gid: must be"},
      {R"({"name": "zzid1", "uid": 47001, "gid": 47001})", "home: missing"},
      {R"({"name": "zzid1", "uid": 47001, "gid": 47001, "home": "srv/a"})", "home: 'srv/a' is not an absolute path"},
      {R"({"name": "zzid1", "uid": 47001, "gid": 47001, "home": "/srv/a:b"})", "home: must not contain ':'"},
      {R"({"name": "zzid1", "uid": 47001, "gid": 47001, "home": "/srv/a\nb"})", "home: must not contain"},
  };
  for (const auto& [payload, message] : refused) {
    const Answer a = validate("account.identity.put", payload);
    EXPECT_EQ(a.status, SHOAL_ERR_INVALID_ARGUMENT) << payload;
    EXPECT_EQ(a.error.rfind(message, 0), 0u) << payload << " gave: " << a.error;
  }
  EXPECT_EQ(validate("account.identity.put", account("zzid1", 47001, 47001)).status, SHOAL_OK);

  // Removal needs only the name and the uid.
  EXPECT_EQ(validate("account.identity.remove", R"({"name": "zzid1", "uid": 47001})").status, SHOAL_OK);
  const Answer noUid = validate("account.identity.remove", R"({"name": "zzid1", "gid": 47001})");
  EXPECT_EQ(noUid.status, SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(noUid.error, "uid: missing");
  EXPECT_FALSE(user("zzid1")) << "validation writes nothing";
}

TEST_F(IdentityHandlersTest, ApplyCreatesReplaysAndRemovesAndSaysWhatItDid) {
  const std::string payload = account("zzid9", 47090, 47090);
  ASSERT_EQ(validate("account.identity.put", payload).status, SHOAL_OK);
  Answer a = apply("account.identity.put", payload);
  ASSERT_EQ(a.status, SHOAL_OK) << a.error;
  EXPECT_EQ(a.output, "created user zzid9 uid 47090");
  ASSERT_TRUE(user("zzid9"));
  EXPECT_EQ(user("zzid9")->uid, 47090u);

  a = apply("account.identity.put", payload);
  EXPECT_EQ(a.status, SHOAL_OK);
  EXPECT_EQ(a.output, "user zzid9 uid 47090 already present");

  a = apply("account.identity.remove", payload);
  EXPECT_EQ(a.status, SHOAL_OK) << a.error;
  EXPECT_EQ(a.output, "removed user zzid9 uid 47090");
  EXPECT_FALSE(user("zzid9"));
  EXPECT_FALSE(groupGid("zzid9"));

  a = apply("account.identity.remove", payload);
  EXPECT_EQ(a.status, SHOAL_OK);
  EXPECT_EQ(a.output, "user zzid9 uid 47090 already absent");
}

TEST_F(IdentityHandlersTest, ApplyFailsAConflictingDeliveryWithTheMessage) {
  addForeignUser("zzid2", 47070);
  const std::string before = userDatabase();
  const Answer a = apply("account.identity.put", account("zzid2", 47071, 47071));
  EXPECT_EQ(a.status, SHOAL_ERR_CONFLICT);
  EXPECT_EQ(a.error, "user 'zzid2' exists with uid 47070, the cluster gives it 47071");
  EXPECT_EQ(userDatabase(), before);

  const Answer r = apply("account.identity.remove", account("zzid2", 47071, 47071));
  EXPECT_EQ(r.status, SHOAL_ERR_CONFLICT);
  EXPECT_EQ(r.error, "user 'zzid2' has uid 47070 here, not 47071; it is not removed");
  EXPECT_TRUE(user("zzid2"));

  const Answer invalid = apply("account.identity.put", R"({"name": "zzid2", "uid": 12})");
  EXPECT_EQ(invalid.status, SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(userDatabase(), before);
}

TEST_F(IdentityHandlersTest, APluginClaimingAKernelKindOrTheKernelsNameIsRefused) {
  auto claimsKind = host_->load(fs::path(SHOAL_IDENTITY_PLUGIN_DIR) / "x_kernel_kind.so");
  EXPECT_EQ(claimsKind.state, shoal::host::PluginState::Refused);
  EXPECT_NE(claimsKind.reason.find("queue handler kind 'account.identity.put' is already registered by plugin "
                                   "'kernel'"),
            std::string::npos)
      << claimsKind.reason;
  EXPECT_EQ(entry("account.identity.put").plugin, "kernel");

  auto namedKernel = host_->load(fs::path(SHOAL_IDENTITY_PLUGIN_DIR) / "named_kernel.so");
  EXPECT_EQ(namedKernel.state, shoal::host::PluginState::Refused);
  EXPECT_NE(namedKernel.reason.find("its name 'kernel' is the kernel's own"), std::string::npos)
      << namedKernel.reason;
}

}  // namespace
