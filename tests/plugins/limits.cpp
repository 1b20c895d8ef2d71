// A plugin built with the C++ SDK against the current header that declares two limit
// dimensions of hosting accounts, one the kernel counts (its domains) and one it counts
// itself, and asks the kernel through its queue handler "limits.check" before it would
// create one more of its own objects. Payload: {"account": "acme", "dimension": "mailboxes",
// "would_have": 3}; output "allowed", or the kernel's refusal as the error.
#include <nlohmann/json.hpp>
#include <shoal/sdk.hpp>

class Limits final : public shoal::Plugin {
 public:
  void init(shoal::Registrar& reg) override {
    if (!reg.host().offersLimits())
      throw shoal::PluginError("needs a host of ABI 1.5", SHOAL_ERR_UNSUPPORTED);
    reg.limit("sites", "Sites", shoal::kLimitCountsDomains);
    reg.limit("mailboxes", "Mailboxes");
    shoal::Host host = reg.host();
    reg.queueHandler("limits.check", "asks the kernel whether an account may have one more",
                     [host](std::string_view payload, shoal::Reply& reply) {
                       const auto request = nlohmann::json::parse(payload);
                       host.checkLimit(request.at("account").get<std::string>(),
                                       request.at("dimension").get<std::string>(),
                                       request.at("would_have").get<std::int64_t>());
                       reply.append("allowed");
                     });
  }
};

SHOAL_PLUGIN(Limits, "limits", "1.0.0", "declares limit dimensions and checks them")
