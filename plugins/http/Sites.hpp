#pragma once
// The websites of hosting accounts: registers the queue handlers http.site.put and
// http.site.remove (run by every web node) and the account event hooks that enqueue them (run
// on the manager). See SiteInstall.hpp for what a node does, SiteHooks.hpp for the manager.
#include <shoal/sdk.hpp>

#include "SiteSettings.hpp"

namespace shoal::http {

class Sites {
 public:
  // Reads the settings (a bad one refuses the plugin) and registers everything.
  void registerWith(shoal::Registrar& reg);

 private:
  SiteSettings settings_;
};

}  // namespace shoal::http
