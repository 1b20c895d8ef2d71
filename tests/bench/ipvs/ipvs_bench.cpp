// Benchmark (d), run inside the qemu guest: programme 1,000 virtual services x 10 real
// servers through IpvsDataplane::apply, and, as the peer, restore the same rules with
// `ipvsadm -R`; the table is emptied between runs. Prints each run, the ranges and the
// ratio. Exits non-zero when either side did not produce the full table.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "GuestSupport.hpp"
#include "IpvsDataplane.hpp"

using namespace shoal::lvs;

namespace {

constexpr int kServices = 1000;
constexpr int kRealsPerService = 10;
constexpr int kRuns = 5;

std::string vip(int i) {
  return "10.100." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
}
std::string rip(int i, int j) {
  return "10." + std::to_string(110 + j) + "." + std::to_string(i / 250) + "." +
         std::to_string(i % 250 + 1);
}

std::vector<VirtualService> table() {
  std::vector<VirtualService> services;
  for (int i = 0; i < kServices; ++i) {
    VirtualService s;
    s.address = vip(i);
    s.port = 80;
    s.scheduler = "wlc";
    for (int j = 0; j < kRealsPerService; ++j)
      s.reals.push_back(
          RealServer{rip(i, j), 80, static_cast<std::uint32_t>(j + 1), Forwarding::DirectRouting});
    services.push_back(std::move(s));
  }
  return services;
}

// The same table in ipvsadm's restore format.
void writeRules(const std::string& path) {
  std::ofstream out(path);
  for (int i = 0; i < kServices; ++i) {
    out << "-A -t " << vip(i) << ":80 -s wlc\n";
    for (int j = 0; j < kRealsPerService; ++j)
      out << "-a -t " << vip(i) << ":80 -r " << rip(i, j) << ":80 -g -w " << j + 1 << "\n";
  }
}

double seconds(std::chrono::steady_clock::time_point from) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count();
}

// Both sides must leave exactly the table: ipvsadm lists it the same either way.
bool holdsFullTable(const guest::Listing& expected, const char* who) {
  guest::Listing held = guest::ipvsadmListing();
  if (held == expected) return true;
  std::fprintf(stderr, "%s left %zu services, not the %d expected\n", who, held.size(), kServices);
  return false;
}

}  // namespace

int main() {
  try {
    std::unique_ptr<Dataplane> dataplane = openIpvsDataplane();
    const std::vector<VirtualService> desired = table();
    const guest::Listing expected = guest::expectedListing(desired);
    const std::string rules = "/tmp/ipvs-bench.rules";
    writeRules(rules);
    const std::string restore = std::string(guest::kIpvsadm) + " -R < " + rules;
    const std::string clear = std::string(guest::kIpvsadm) + " -C";

    std::vector<double> applyTimes, restoreTimes;
    bool ok = true;
    auto timeApply = [&] {
      guest::mustRun(clear);
      auto t0 = std::chrono::steady_clock::now();
      ApplyReport report = dataplane->apply(desired);
      applyTimes.push_back(seconds(t0));
      ok = ok && report.servicesAdded == kServices && holdsFullTable(expected, "apply");
    };
    auto timeRestore = [&] {
      guest::mustRun(clear);
      auto t0 = std::chrono::steady_clock::now();
      guest::mustRun(restore);
      restoreTimes.push_back(seconds(t0));
      ok = ok && holdsFullTable(expected, "ipvsadm -R");
    };
    std::printf("ipvs bench: %d virtual services x %d real servers (%d rules), %d runs each\n",
                kServices, kRealsPerService, kServices * (kRealsPerService + 1), kRuns);
    // A flush leaves the removed real servers in IPVS's trash list for about two minutes,
    // and every later add searches it: one untimed fill and flush first, so every timed run
    // starts with the same trash. The order alternates so neither side always goes first.
    guest::mustRun(restore);
    for (int run = 1; run <= kRuns; ++run) {
      if (run % 2) {
        timeApply();
        timeRestore();
      } else {
        timeRestore();
        timeApply();
      }
      std::printf("run %d: IpvsDataplane::apply %.3f s   ipvsadm -R %.3f s\n", run,
                  applyTimes.back(), restoreTimes.back());
    }
    // With the table in place (the last run's restore or apply): the no-change apply and read.
    dataplane->apply(desired);
    auto t0 = std::chrono::steady_clock::now();
    ok = ok && !dataplane->apply(desired).changedAnything();
    double noopApply = seconds(t0);
    t0 = std::chrono::steady_clock::now();
    ok = ok && dataplane->read().size() == kServices;
    double readTime = seconds(t0);
    guest::mustRun(clear);

    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    auto [applyMin, applyMax] = std::minmax_element(applyTimes.begin(), applyTimes.end());
    auto [restoreMin, restoreMax] = std::minmax_element(restoreTimes.begin(), restoreTimes.end());
    std::printf("IpvsDataplane::apply (empty -> full): %.3f-%.3f s (median %.3f)\n", *applyMin,
                *applyMax, median(applyTimes));
    std::printf("ipvsadm -R (peer, same rules):        %.3f-%.3f s (median %.3f)\n", *restoreMin,
                *restoreMax, median(restoreTimes));
    std::printf("ratio ipvsadm -R / apply (medians):   %.2f\n",
                median(restoreTimes) / median(applyTimes));
    std::printf("apply of the same table again (read + diff, no change): %.3f s\n", noopApply);
    std::printf("read() of the full table with counters: %.3f s\n", readTime);
    if (!ok) std::printf("bench FAILED: a side did not produce the full table\n");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ipvs bench: %s\n", e.what());
    return 1;
  }
}
