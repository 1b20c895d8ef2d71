// Runs the userspace dataplane with one virtual service until SIGINT or SIGTERM, for the
// benchmark beside HAProxy.
//
//   userspace_lb --listen 127.0.0.1:8080 --real 127.0.0.1:8081 --real 127.0.0.1:8082
//                [--scheduler rr] [--threads 2] [--splice on|off]
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "UserspaceDataplane.hpp"

namespace {

bool splitEndpoint(const std::string& text, std::string& address, std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  address = text.substr(0, colon);
  if (address.size() > 2 && address.front() == '[') address = address.substr(1, address.size() - 2);
  try {
    const unsigned long n = std::stoul(text.substr(colon + 1));
    if (n == 0 || n > 65535) return false;
    port = static_cast<std::uint16_t>(n);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

int usage() {
  std::fprintf(stderr,
               "usage: userspace_lb --listen ADDRESS:PORT --real ADDRESS:PORT... [--scheduler "
               "NAME] [--threads N] [--splice on|off]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace shoal::lvs;
  VirtualService service;
  service.scheduler = "rr";
  UserspaceSettings settings;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string option = argv[i], value = argv[i + 1];
    if (option == "--listen") {
      if (!splitEndpoint(value, service.address, service.port)) return usage();
      if (service.address.find(':') != std::string::npos) service.family = 10;
    } else if (option == "--real") {
      RealServer real;
      if (!splitEndpoint(value, real.address, real.port)) return usage();
      service.reals.push_back(real);
    } else if (option == "--scheduler") {
      service.scheduler = value;
    } else if (option == "--splice") {
      if (value != "on" && value != "off") return usage();
      settings.splice = value == "on";
    } else if (option == "--threads") {
      settings.threads = static_cast<unsigned>(std::stoul(value));
    } else {
      return usage();
    }
  }
  if (argc % 2 == 0 || service.port == 0 || service.reals.empty()) return usage();

  // Blocked before the dataplane starts its threads, so only sigwait below receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  try {
    UserspaceDataplane plane(settings);
    plane.apply({service});
    std::printf("balancing %s over %zu real server(s) with %u thread(s)\n", service.key().c_str(),
                service.reals.size(), settings.threads);
    std::fflush(stdout);
    int signal = 0;
    sigwait(&stop, &signal);
    const auto state = plane.read();
    if (!state.empty())
      std::printf("served %llu connection(s), %llu bytes in, %llu bytes out\n",
                  static_cast<unsigned long long>(state[0].counters.connections),
                  static_cast<unsigned long long>(state[0].counters.bytesIn),
                  static_cast<unsigned long long>(state[0].counters.bytesOut));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "userspace_lb: %s\n", e.what());
    return 1;
  }
  return 0;
}
