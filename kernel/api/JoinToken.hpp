#pragma once
// The join token an admin hands to a new node: "shoal-join-1." + base64url(JSON) carrying
// the manager's address, a one-time secret and the fingerprint of the manager's CA, so the
// node can pin the CA before it sends anything.
#include <string>

namespace shoal::api {

struct JoinToken {
  std::string manager;        // "host:port"
  std::string secret;         // one-time, expiring; the manager keeps only its hash
  std::string caFingerprint;  // "sha256:<hex>"
};

std::string encodeJoinToken(const JoinToken& token);
// Error(InvalidArgument) saying what is wrong with a token that cannot be read.
JoinToken decodeJoinToken(const std::string& text);

}  // namespace shoal::api
