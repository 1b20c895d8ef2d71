#pragma once
// Firewall marks for IPVS firewall-mark services.
//
// An IPVS fwmark service balances packets carrying its mark; something has to put the mark
// on them. FirewallMarkedDataplane wraps the IPVS dataplane and keeps one nftables table,
// `inet shoal_lvs`, holding exactly one rule per listener of each fwmark service
//   ip daddr 192.0.2.10 tcp dport 443 meta mark set 0x00000001
// in a prerouting chain at mangle priority (before IPVS sees the packet). The table is
// replaced as a whole in one nft transaction (`nft -f`, run by argv), so there is never a
// moment with half the rules; it is removed when no fwmark service is left. shoal owns that
// table: edits made to it by hand are undone by the next apply (the reconcile loop).
#include <memory>
#include <string>
#include <vector>

#include "Dataplane.hpp"

namespace shoal::lvs {

// The nft script that makes table `inet shoal_lvs` hold the marks `table` needs (or removes
// it when none does). Pure; throws DataplaneError for a listener address that is no IP.
std::string firewallMarkRuleset(const std::vector<VirtualService>& table);

class FirewallMarkedDataplane final : public Dataplane {
 public:
  // `nft` is the nft program (looked up in PATH when not absolute).
  explicit FirewallMarkedDataplane(std::unique_ptr<Dataplane> inner, std::string nft = "nft");

  std::string name() const override { return inner_->name(); }
  // Applies the IPVS table, then the marks. nft is run only when some service is a fwmark
  // service or marks were installed before; when nft is missing or refuses the rules,
  // every firewall-mark service is reported failed with that reason (saying to install
  // nftables when it is missing) and the other services stand.
  ApplyReport apply(const std::vector<VirtualService>& desired) override;
  std::vector<VirtualServiceState> read() override { return inner_->read(); }
  void zeroCounters() override { inner_->zeroCounters(); }

 private:
  // Replaces table inet shoal_lvs; throws DataplaneError.
  void applyMarks(const std::vector<VirtualService>& desired);

  std::unique_ptr<Dataplane> inner_;
  std::string nft_;
  bool marksInstalled_ = false;
};

}  // namespace shoal::lvs
