#include "hosting/UnixIdentity.hpp"

#include <grp.h>
#include <pwd.h>

#include <shoal/process.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "common/Error.hpp"

namespace shoal::hosting {
namespace {

// useradd and its kin wait for the lock on /etc/passwd; a minute is ample for a sane system.
constexpr std::chrono::seconds kToolTimeout{60};
constexpr std::size_t kReportedOutputBytes = 1000;

// One change to the user database at a time in this process: the tools lock the files
// themselves, but a second useradd that finds the lock taken gives up instead of waiting.
std::mutex& databaseTurn() {
  static std::mutex turn;
  return turn;
}

struct UserEntry {
  std::string name;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string home;
};

struct GroupEntry {
  std::string name;
  std::uint32_t gid = 0;
};

// Calls a getXXX_r function with a buffer that grows until the entry fits. `lookup` returns
// the function's error number and sets `found` when there is an entry.
template <typename Entry>
bool lookUp(const std::string& what, const std::function<int(Entry*, char*, std::size_t, Entry**)>& lookup,
            Entry& entry, std::vector<char>& buffer) {
  buffer.resize(4096);
  for (;;) {
    Entry* found = nullptr;
    const int error = lookup(&entry, buffer.data(), buffer.size(), &found);
    if (error == ERANGE && buffer.size() < (1u << 24)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    // Not found is 0 with no entry; some NSS modules say ENOENT or ESRCH instead.
    if (error == 0 || error == ENOENT || error == ESRCH) return found != nullptr;
    throw Error(ErrorCode::Internal, "cannot look up " + what + ": " + std::strerror(error));
  }
}

std::optional<UserEntry> userFrom(const passwd& p) {
  return UserEntry{p.pw_name, static_cast<std::uint32_t>(p.pw_uid), static_cast<std::uint32_t>(p.pw_gid),
                   p.pw_dir != nullptr ? p.pw_dir : ""};
}

std::optional<UserEntry> userNamed(const std::string& name) {
  passwd entry{};
  std::vector<char> buffer;
  const bool found = lookUp<passwd>("user '" + name + "'",
                                    [&](passwd* e, char* b, std::size_t n, passwd** r) {
                                      return ::getpwnam_r(name.c_str(), e, b, n, r);
                                    },
                                    entry, buffer);
  return found ? userFrom(entry) : std::nullopt;
}

std::optional<UserEntry> userWithUid(std::uint32_t uid) {
  passwd entry{};
  std::vector<char> buffer;
  const bool found = lookUp<passwd>("uid " + std::to_string(uid),
                                    [&](passwd* e, char* b, std::size_t n, passwd** r) {
                                      return ::getpwuid_r(static_cast<uid_t>(uid), e, b, n, r);
                                    },
                                    entry, buffer);
  return found ? userFrom(entry) : std::nullopt;
}

std::optional<GroupEntry> groupNamed(const std::string& name) {
  group entry{};
  std::vector<char> buffer;
  const bool found = lookUp<group>("group '" + name + "'",
                                   [&](group* e, char* b, std::size_t n, group** r) {
                                     return ::getgrnam_r(name.c_str(), e, b, n, r);
                                   },
                                   entry, buffer);
  if (!found) return std::nullopt;
  return GroupEntry{entry.gr_name, static_cast<std::uint32_t>(entry.gr_gid)};
}

std::optional<GroupEntry> groupWithGid(std::uint32_t gid) {
  group entry{};
  std::vector<char> buffer;
  const bool found = lookUp<group>("gid " + std::to_string(gid),
                                   [&](group* e, char* b, std::size_t n, group** r) {
                                     return ::getgrgid_r(static_cast<gid_t>(gid), e, b, n, r);
                                   },
                                   entry, buffer);
  if (!found) return std::nullopt;
  return GroupEntry{entry.gr_name, static_cast<std::uint32_t>(entry.gr_gid)};
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r')) text.pop_back();
  if (text.size() > kReportedOutputBytes) text = "..." + text.substr(text.size() - kReportedOutputBytes);
  return text;
}

// Runs a tool of the user database; throws Error(Failed) with its own words when it fails.
void runTool(const std::vector<std::string>& argv) {
  ProgramResult result;
  try {
    result = runProgram(argv, kToolTimeout);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Failed, e.what());
  }
  if (result.succeeded()) return;
  std::string command;
  for (const auto& word : argv) command += (command.empty() ? "" : " ") + word;
  const std::string output = trimmed(result.output);
  throw Error(ErrorCode::Failed, command + " " + result.describe() + (output.empty() ? "" : ": " + output));
}

// Everything that makes `identity` impossible here without taking something of another's.
void refuseConflicts(const UnixIdentity& identity, const std::optional<UserEntry>& user,
                     const std::optional<GroupEntry>& group) {
  const std::string uid = std::to_string(identity.uid);
  const std::string gid = std::to_string(identity.gid);
  if (user && user->uid != identity.uid) {
    throw Error(ErrorCode::Conflict, "user '" + identity.name + "' exists with uid " + std::to_string(user->uid) +
                                         ", the cluster gives it " + uid);
  }
  if (const auto owner = userWithUid(identity.uid); owner && owner->name != identity.name) {
    throw Error(ErrorCode::Conflict, "uid " + uid + " belongs to '" + owner->name +
                                         "' here, the cluster gives it to '" + identity.name + "'");
  }
  if (group && group->gid != identity.gid) {
    throw Error(ErrorCode::Conflict, "group '" + identity.name + "' exists with gid " +
                                         std::to_string(group->gid) + ", the cluster gives it " + gid);
  }
  if (const auto owner = groupWithGid(identity.gid); owner && owner->name != identity.name) {
    throw Error(ErrorCode::Conflict, "gid " + gid + " belongs to group '" + owner->name +
                                         "' here, the cluster gives it to '" + identity.name + "'");
  }
  if (user && user->gid != identity.gid) {
    throw Error(ErrorCode::Conflict, "user '" + identity.name + "' has primary gid " + std::to_string(user->gid) +
                                         " here, the cluster gives it " + gid);
  }
}

}  // namespace

IdentityChange putIdentity(const UnixIdentity& identity, const IdentityTools& tools) {
  if (identity.name.empty()) throw Error(ErrorCode::InvalidArgument, "name: must not be empty");
  if (identity.home.empty() || identity.home.front() != '/') {
    throw Error(ErrorCode::InvalidArgument, "home: '" + identity.home + "' is not an absolute path");
  }
  const std::lock_guard<std::mutex> turn(databaseTurn());
  const auto user = userNamed(identity.name);
  const auto group = groupNamed(identity.name);
  refuseConflicts(identity, user, group);

  if (user && group) {
    if (user->home == identity.home) return IdentityChange::AlreadyPresent;
    runTool({tools.usermod, "--home", identity.home, identity.name});
    return IdentityChange::HomeChanged;
  }
  const std::string uid = std::to_string(identity.uid);
  const std::string gid = std::to_string(identity.gid);
  if (!group) runTool({tools.groupadd, "--gid", gid, identity.name});
  if (user) {
    // Only the group was missing (removed by hand); the user had the right ids all along.
    if (user->home != identity.home) runTool({tools.usermod, "--home", identity.home, identity.name});
    return IdentityChange::Created;
  }
  try {
    runTool({tools.useradd, "--uid", uid, "--gid", gid, "--home-dir", identity.home, "--no-create-home", "--shell",
             "/usr/sbin/nologin", identity.name});
  } catch (const Error& e) {
    if (!group) {
      // Nothing half-written: the group was made for this user only.
      try {
        runTool({tools.groupdel, identity.name});
      } catch (const Error& undo) {
        throw Error(ErrorCode::Failed, std::string(e.what()) + "; and the group it was to join could not be removed: " +
                                           undo.what());
      }
    }
    throw;
  }
  return IdentityChange::Created;
}

IdentityChange removeIdentity(const std::string& name, std::uint32_t uid, const IdentityTools& tools) {
  if (name.empty()) throw Error(ErrorCode::InvalidArgument, "name: must not be empty");
  const std::lock_guard<std::mutex> turn(databaseTurn());
  const auto user = userNamed(name);
  if (user && user->uid != uid) {
    throw Error(ErrorCode::Conflict, "user '" + name + "' has uid " + std::to_string(user->uid) +
                                         " here, not " + std::to_string(uid) + "; it is not removed");
  }
  // The group to remove: the user's own primary group of its name, or, the user being gone,
  // the group of its name with gid = uid (ADR 0013).
  const std::uint32_t ownGid = user ? user->gid : uid;
  bool changed = false;
  if (user) {
    // No --remove: files on shared storage outlive the account's identity.
    runTool({tools.userdel, name});
    changed = true;
  }
  // userdel may have taken the group with it (USERGROUPS_ENAB); look again.
  if (const auto group = groupNamed(name); group && group->gid == ownGid) {
    runTool({tools.groupdel, name});
    changed = true;
  }
  return changed ? IdentityChange::Removed : IdentityChange::AlreadyAbsent;
}

}  // namespace shoal::hosting
