#include "api/JoinToken.hpp"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/StreamCopier.h>

#include <regex>
#include <sstream>

#include "common/Error.hpp"

namespace shoal::api {
namespace {
const std::string kPrefix = "shoal-join-1.";

[[noreturn]] void bad(const std::string& why) {
  throw Error(ErrorCode::InvalidArgument, "join token is not valid: " + why);
}
}  // namespace

std::string encodeJoinToken(const JoinToken& token) {
  Poco::JSON::Object object(Poco::JSON_PRESERVE_KEY_ORDER);
  object.set("manager", token.manager);
  object.set("secret", token.secret);
  object.set("ca", token.caFingerprint);
  std::ostringstream json;
  object.stringify(json);
  std::ostringstream encoded;
  Poco::Base64Encoder encoder(encoded, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
  encoder.rdbuf()->setLineLength(0);
  encoder << json.str();
  encoder.close();
  return kPrefix + encoded.str();
}

JoinToken decodeJoinToken(const std::string& text) {
  if (text.rfind(kPrefix, 0) != 0) bad("it does not start with '" + kPrefix + "'");
  const std::string encoded = text.substr(kPrefix.size());
  // Poco's decoder throws from inside the stream on any other character: refuse them first.
  if (encoded.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != std::string::npos)
    bad("it holds a character that is not base64url (A-Z a-z 0-9 - _); copy it again in one piece");
  JoinToken token;
  try {
    std::istringstream in(encoded);
    Poco::Base64Decoder decoder(in, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
    std::string json;
    Poco::StreamCopier::copyToString(decoder, json);
    if (decoder.bad()) bad("it was truncated or altered (copy it again in one piece)");
    Poco::JSON::Parser parser;
    auto object = parser.parse(json).extract<Poco::JSON::Object::Ptr>();
    token.manager = object->optValue<std::string>("manager", "");
    token.secret = object->optValue<std::string>("secret", "");
    token.caFingerprint = object->optValue<std::string>("ca", "");
  } catch (const std::exception&) {
    bad("it was truncated or altered (copy it again in one piece)");
  }
  static const std::regex manager(R"(^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$)");
  static const std::regex fingerprint("^sha256:[0-9a-fA-F]{64}$");
  if (!std::regex_match(token.manager, manager)) bad("manager address '" + token.manager + "' is not host:port");
  if (token.secret.size() < 16) bad("the secret is missing");
  if (!std::regex_match(token.caFingerprint, fingerprint)) bad("the CA fingerprint is missing");
  return token;
}

}  // namespace shoal::api
