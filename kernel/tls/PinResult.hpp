#pragma once
#include <mutex>
#include <string>

namespace shoal::tls {

// What a pinned client context (makePinnedClientContext) learned from its handshakes; written
// from whichever thread runs a handshake, so read it under `mutex`.
struct PinResult {
  std::mutex mutex;
  // PEM of the pinned CA certificate as the server presented it; set by every accepted
  // handshake, empty until the first.
  std::string caCertificatePem;
  // Why the most recent refused handshake was refused; cleared by an accepted one.
  std::string lastError;
};

}  // namespace shoal::tls
