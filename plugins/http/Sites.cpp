#include "Sites.hpp"

#include <stdexcept>

#include "Account.hpp"
#include "SiteHooks.hpp"
#include "SiteInstall.hpp"

namespace shoal::http {
namespace {

Account payloadAccount(std::string_view payload) {
  try {
    return parseSitePayload(payload);
  } catch (const std::invalid_argument& e) {
    throw shoal::PluginError(e.what(), SHOAL_ERR_INVALID_ARGUMENT);
  }
}

}  // namespace

void Sites::registerWith(shoal::Registrar& reg) {
  settings_ = readSiteSettings(reg.host());
  const auto validate = [](std::string_view payload) { payloadAccount(payload); };
  reg.queueHandler(
      "http.site.put", "Render an account's websites: nginx server blocks, php-fpm pool, certificate",
      [this](std::string_view payload, shoal::Reply& reply) { reply.append(putSite(payloadAccount(payload), settings_)); },
      validate);
  reg.queueHandler(
      "http.site.remove", "Remove an account's websites (the docroots stay)",
      [this](std::string_view payload, shoal::Reply& reply) { reply.append(removeSite(payloadAccount(payload), settings_)); },
      validate);
  // The account events arrive with ABI 1.5; an older kernel refuses their names, and a refused
  // registration would refuse the whole plugin.
  if (reg.host().api()->abi_minor < 5) {
    reg.host().info("this shoald dispatches no account events (ABI 1.5); websites are put only by commands");
    return;
  }
  for (const auto& event : siteEvents()) {
    reg.hook(event, [this, host = reg.host()](std::string_view name, std::string_view payload) {
      std::optional<std::string> request;
      try {
        request = siteCommandForEvent(name, payload, settings_.reloadStaggerMs);
      } catch (const std::invalid_argument& e) {
        throw shoal::PluginError(e.what(), SHOAL_ERR_INVALID_ARGUMENT);
      }
      if (request) host.enqueue(*request);
    });
  }
}

}  // namespace shoal::http
