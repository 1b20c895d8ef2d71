#pragma once
// The kernel's own queue handlers (ADR 0013, "The identity is the kernel's command"):
//
//   account.identity.put     payload: the account JSON; makes its group and user exist here
//   account.identity.remove  payload: the account JSON; removes them (files stay)
//
// Of the account JSON they read only `name`, `uid`, `gid` and `home` (remove: `name` and
// `uid`); every other field is ignored. They are registered under plugin name "kernel" in
// every shoald, manager and node alike (the manager validates at enqueue, the node's agent
// applies), before any plugin loads, so a plugin that claims one of these kinds is refused
// by the registries' conflict check.
#include <string>

#include "host/Registries.hpp"
#include "hosting/UnixIdentity.hpp"

namespace shoal::hosting {

// Both handlers, ready for PluginHost::registerBuiltIns, under host::kKernelContributorName.
// The entries point at static functions of the kernel and carry no user pointer.
host::Contributions identityQueueHandlers();

// The identity a put payload names, validated: `name` by validateAccountName, `uid` and `gid`
// whole numbers from 1000 to 4294967294, `home` an absolute path without ':' or control
// characters (they would break /etc/passwd). Throws Error(InvalidArgument) naming the field.
UnixIdentity identityToPut(const std::string& accountJson);

// The `name` and `uid` of a remove payload, validated the same way (gid and home unused).
UnixIdentity identityToRemove(const std::string& accountJson);

}  // namespace shoal::hosting
