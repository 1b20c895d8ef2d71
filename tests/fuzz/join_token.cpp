// Join tokens as a node reads them (shoald --join, shoalctl): decoded or refused with
// Error(InvalidArgument); a decoded token encodes back to a token that decodes the same.
#include <cstddef>
#include <cstdint>
#include <string>

#include "FuzzSupport.hpp"
#include "api/JoinToken.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  shoal::api::JoinToken token;
  try {
    token = shoal::api::decodeJoinToken(text);
  } catch (const shoal::Error& e) {
    shoal::fuzz::expectRefusal(e);
    return 0;
  }
  const auto again = shoal::api::decodeJoinToken(shoal::api::encodeJoinToken(token));
  FUZZ_CHECK(again.manager == token.manager && again.secret == token.secret &&
                 again.caFingerprint == token.caFingerprint,
             "a join token does not survive encode and decode");
  return 0;
}
