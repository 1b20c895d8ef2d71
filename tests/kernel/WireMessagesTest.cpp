// What manager and node read from each other besides HTTP: join tokens, the delivery list
// and the results batch. Each bad input is refused with Error(InvalidArgument) naming what
// is wrong, never with another exception (which the API would answer with 500).
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <string>

#include "api/JoinToken.hpp"
#include "api/NodeQueueMessages.hpp"
#include "common/Error.hpp"

namespace {

using shoal::Error;
using shoal::ErrorCode;

Poco::JSON::Object::Ptr json(const std::string& text) {
  return Poco::JSON::Parser().parse(text).extract<Poco::JSON::Object::Ptr>();
}

// The message of the Error(InvalidArgument) that `f` throws; fails the test otherwise.
template <typename F>
std::string refusal(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "refused with another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "accepted";
  return {};
}

TEST(JoinToken, RoundTrips) {
  const shoal::api::JoinToken token{"manager.example:7443", "0123456789abcdefghij", "sha256:" + std::string(64, 'a')};
  const auto back = shoal::api::decodeJoinToken(shoal::api::encodeJoinToken(token));
  EXPECT_EQ(back.manager, token.manager);
  EXPECT_EQ(back.secret, token.secret);
  EXPECT_EQ(back.caFingerprint, token.caFingerprint);
}

// A Poco::DataFormatException escaped before: the decoder throws while it is read.
TEST(JoinToken, CharactersOutsideBase64urlAreRefusedAsAnInvalidToken) {
  for (const std::string text : {"shoal-join-1.!!!", "shoal-join-1.ab cd", "shoal-join-1.eyJ*"})
    EXPECT_NE(refusal([&] { shoal::api::decodeJoinToken(text); }).find("join token is not valid"), std::string::npos)
        << text;
}

TEST(NodeQueueMessages, ReadsTheDeliveryListTheManagerSends) {
  const auto list = shoal::api::parseDeliveryList(json(
      R"({"deliveries": [{"id": 12, "command_id": 7, "attempts": 2, "kind": "hello.greet",
          "payload": "{}", "ordering_key": "greetings", "state": "running"},
         {"id": 13, "command_id": 8, "kind": "lvs.apply", "payload": "[]"}]})"));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, 12);
  EXPECT_EQ(list[0].commandId, 7);
  EXPECT_EQ(list[0].attempts, 2u);
  EXPECT_EQ(list[0].kind, "hello.greet");
  EXPECT_EQ(list[0].orderingKey, "greetings");
  EXPECT_EQ(list[1].attempts, 1u);
  EXPECT_EQ(list[1].orderingKey, "");
}

TEST(NodeQueueMessages, ReadsAResultsBatch) {
  const auto batch = shoal::api::parseResultsBatch(
      json(R"({"results": [{"delivery_id": 5, "succeeded": true, "output": "ok"}, {"delivery_id": 6, "succeeded": false}]})"));
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].deliveryId, 5);
  EXPECT_TRUE(batch[0].succeeded);
  EXPECT_EQ(batch[0].output, "ok");
  EXPECT_FALSE(batch[1].succeeded);
}

// Poco's conversion exceptions escaped before (a 500 from POST /v1/node/results).
TEST(NodeQueueMessages, ABadDeliveryIdIsRefusedNamingIt) {
  for (const std::string id : {"\"twelve\"", "18446744073709551615", "1.5", "0", "-3", "null", "[1]", "true"}) {
    const auto message = refusal([&] {
      shoal::api::parseResultsBatch(json(R"({"results": [{"delivery_id": )" + id + R"(, "succeeded": true}]})"));
    });
    EXPECT_NE(message.find("results[0].delivery_id"), std::string::npos) << id << ": " << message;
  }
  EXPECT_NE(refusal([] { shoal::api::parseResultsBatch(json(R"({"results": [{"delivery_id": 1, "succeeded": 1}]})")); })
                .find("results[0].succeeded"),
            std::string::npos);
  EXPECT_NE(refusal([] { shoal::api::parseResultsBatch(json(R"({"results": [7]})")); }).find("results[0]"),
            std::string::npos);
  EXPECT_NE(refusal([] { shoal::api::parseResultsBatch(json(R"({"results": {}})")); }).find("results"),
            std::string::npos);
}

TEST(NodeQueueMessages, ADeliveryListWithAMissingOrMistypedFieldIsRefusedNamingIt) {
  EXPECT_NE(refusal([] { shoal::api::parseDeliveryList(json(R"({"deliveries": [{"id": 1, "command_id": 2, "kind": "a.b"}]})")); })
                .find("deliveries[0].payload"),
            std::string::npos);
  EXPECT_NE(refusal([] {
              shoal::api::parseDeliveryList(
                  json(R"({"deliveries": [{"id": 1, "command_id": 18446744073709551615, "kind": "a.b", "payload": "{}"}]})"));
            }).find("deliveries[0].command_id"),
            std::string::npos);
  EXPECT_NE(refusal([] {
              shoal::api::parseDeliveryList(
                  json(R"({"deliveries": [{"id": 1, "command_id": 2, "kind": "a.b", "payload": "{}", "attempts": 0}]})"));
            }).find("deliveries[0].attempts"),
            std::string::npos);
}

}  // namespace
