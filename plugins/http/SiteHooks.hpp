#pragma once
// The manager's side of the websites: the account events (docs/adr/0013-hosting-accounts.md)
// become http.site.put / http.site.remove commands to every node of role "http", one
// ordering key per account ("account:<name>"), staggered so the web nodes reload one after
// another.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::http {

// The events the plugin subscribes to, in the order it registers them.
const std::vector<std::string>& siteEvents();

// The enqueue request (abi.h callback_enqueue) for `event` with its payload
// {"account": <state>, ...}; nullopt for an event that is none of siteEvents(). The account
// travels as the event gave it, whole. Throws std::invalid_argument, naming the field, when
// the account is not one the nodes could render (the same parser as the nodes').
std::optional<std::string> siteCommandForEvent(std::string_view event, std::string_view payloadJson, int staggerMs);

}  // namespace shoal::http
