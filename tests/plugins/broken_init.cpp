// Plugins written with the C++ SDK that the host must refuse after their init ran:
//   BROKEN_INIT_THROWS     init throws a std::runtime_error
//   BROKEN_INIT_FAILS      init throws shoal::PluginError (a clean failure with a status)
//   BROKEN_DUPLICATE_NAME  is named "hello", like the example plugin loaded before it
//   BROKEN_DUPLICATE_KIND  registers queue kind "hello.greet", which hello already has
//   BROKEN_BAD_PANEL       registers a panel of type "html" (markup is never accepted)
//   BROKEN_DUPLICATE_LIMIT declares the limit dimension "domains" twice (ABI 1.5)
//   BROKEN_KERNEL_KIND     registers queue kind "account.identity.put", the kernel's own
#include <shoal/sdk.hpp>

#include <stdexcept>

class Broken final : public shoal::Plugin {
 public:
  void init(shoal::Registrar& reg) override {
#if defined(BROKEN_INIT_THROWS)
    (void)reg;
    throw std::runtime_error("cannot open /nonexistent/broken.conf");
#elif defined(BROKEN_INIT_FAILS)
    (void)reg;
    throw shoal::PluginError("required setting plugin.init_fails.endpoint is missing",
                             SHOAL_ERR_INVALID_ARGUMENT);
#elif defined(BROKEN_DUPLICATE_NAME)
    reg.queueHandler("second.hello", "never registered", [](std::string_view, shoal::Reply&) {});
#elif defined(BROKEN_DUPLICATE_KIND)
    reg.queueHandler("dupkind.own", "registered, then withdrawn", [](std::string_view, shoal::Reply&) {});
    reg.queueHandler("hello.greet", "clashes with hello", [](std::string_view, shoal::Reply&) {});
#elif defined(BROKEN_KERNEL_KIND)
    reg.queueHandler("account.identity.put", "clashes with the kernel", [](std::string_view, shoal::Reply&) {});
#elif defined(BROKEN_BAD_PANEL)
    reg.panel("raw", R"({"title":"Raw","sections":[{"id":"x","type":"html","title":"X","body":"<script>alert(1)</script>"}]})");
#elif defined(BROKEN_DUPLICATE_LIMIT)
    reg.limit("domains", "Domains", shoal::kLimitCountsDomains);
    reg.limit("domains", "Domains again", shoal::kLimitCountsDomains);
#endif
  }
};

SHOAL_PLUGIN(Broken, BROKEN_NAME, "0.0.1", "deliberately broken")
