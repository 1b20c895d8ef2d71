#pragma once
// An account's Unix identity on this machine (ADR 0013, "The identity is the kernel's
// command"): a group and a user of the account's name, with the uid and gid the manager
// allocated, the same on every node so files on shared storage belong to the same account
// everywhere.
//
// The system's own tools do the writing (groupadd, useradd, usermod, userdel, groupdel, run
// by argv from PATH), so /etc/passwd, /etc/shadow and /etc/group keep their locks and
// formats. Calls in this process take turns; nothing here touches files in the home.
#include <cstdint>
#include <string>

namespace shoal::hosting {

struct UnixIdentity {
  std::string name;  // user and group name (validated by the caller: AccountNames)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string home;  // absolute; never created or removed here
};

// The programs that change the user database. Tests replace one to make it fail.
struct IdentityTools {
  std::string groupadd = "groupadd";
  std::string useradd = "useradd";
  std::string usermod = "usermod";
  std::string userdel = "userdel";
  std::string groupdel = "groupdel";
};

enum class IdentityChange {
  Created,         // the group and/or the user were added
  AlreadyPresent,  // exactly as asked: nothing written
  HomeChanged,     // present, its home moved (usermod --home; the files are not moved)
  Removed,         // the user and/or its group were deleted
  AlreadyAbsent,   // no such user or group: nothing written
};

// Makes `identity` exist here: group `name` with gid, user `name` with uid, primary group
// gid, the home, shell /usr/sbin/nologin, no home created. Idempotent.
//
// Throws Error(Conflict) and changes nothing when the name or the ids are taken otherwise
// here, naming both sides: "user 'acme' exists with uid 1005, the cluster gives it 20001",
// "uid 20001 belongs to 'bob' here, the cluster gives it to 'acme'" (and the same for the
// group and gid). Throws Error(Failed) with the tool's own message when a tool fails; a
// group it created for a user that could then not be added is removed again.
IdentityChange putIdentity(const UnixIdentity& identity, const IdentityTools& tools = {});

// Removes user `name` and its group, if the user has `uid`. Absent is success. Throws
// Error(Conflict) for a user `name` of another uid, and changes nothing. The group `name` is
// removed when it is the user's primary group, or (the user being gone already) when its gid
// is `uid` (ADR 0013: gid = uid); a group `name` of another gid is left alone. Never deletes
// files. Throws Error(Failed) with the tool's message when a tool fails.
IdentityChange removeIdentity(const std::string& name, std::uint32_t uid, const IdentityTools& tools = {});

}  // namespace shoal::hosting
