// The ipvs dataplane's reading of IPVS replies, on datagrams built here byte by byte as the
// kernel lays them out (and as a broken or hostile sender might): no kernel needed.
#include <gtest/gtest.h>
#include <linux/ip_vs.h>
#include <netlink/genl/genl.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "IpvsReplies.hpp"

namespace {

using namespace shoal::lvs;

// Netlink's layout: a 16-byte header, the payload, padding to 4 bytes.
std::vector<unsigned char> message(std::uint16_t type, std::uint16_t flags, std::uint32_t seq,
                                   const std::vector<unsigned char>& payload) {
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(sizeof h + payload.size());
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  h.nlmsg_seq = seq;
  std::vector<unsigned char> out(reinterpret_cast<unsigned char*>(&h), reinterpret_cast<unsigned char*>(&h) + sizeof h);
  out.insert(out.end(), payload.begin(), payload.end());
  out.resize(NLMSG_ALIGN(out.size()), 0);
  return out;
}

std::vector<unsigned char> attribute(std::uint16_t type, const std::vector<unsigned char>& payload) {
  nlattr a{static_cast<std::uint16_t>(NLA_HDRLEN + payload.size()), type};
  std::vector<unsigned char> out(reinterpret_cast<unsigned char*>(&a), reinterpret_cast<unsigned char*>(&a) + sizeof a);
  out.insert(out.end(), payload.begin(), payload.end());
  out.resize(NLA_ALIGN(out.size()), 0);
  return out;
}

template <typename T>
std::vector<unsigned char> bytesOf(const T& value) {
  const auto* p = reinterpret_cast<const unsigned char*>(&value);
  return {p, p + sizeof value};
}

std::vector<IpvsReply> repliesOf(std::vector<unsigned char> datagram) {
  std::vector<IpvsReply> replies;
  forEachReply(datagram.data(), static_cast<int>(datagram.size()), [&](const IpvsReply& r) {
    replies.push_back(r);
    return true;
  });
  return replies;
}

TEST(IpvsReplies, AnAcknowledgementCarriesItsErrorAndExtendedAckText) {
  nlmsgerr e{};
  e.error = -EEXIST;
  e.msg.nlmsg_len = sizeof(nlmsghdr);
  auto payload = bytesOf(e);
  const std::string text = "Service already exists";
  auto tlv = attribute(NLMSGERR_ATTR_MSG, std::vector<unsigned char>(text.begin(), text.end() + 1));
  payload.insert(payload.end(), tlv.begin(), tlv.end());
  const auto replies = repliesOf(message(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 9, payload));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].done);
  EXPECT_EQ(replies[0].seq, 9u);
  EXPECT_EQ(replies[0].error, EEXIST);
  EXPECT_EQ(replies[0].extack, text);
}

// Read past the message (and the datagram) before: the error code was taken from whatever
// bytes followed.
TEST(IpvsReplies, AnAcknowledgementTooShortForItsErrorEndsItsRequestAsABadMessage) {
  auto datagram = message(NLMSG_ERROR, 0, 5, {0xfe, 0xff});
  auto next = message(NLMSG_DONE, NLM_F_MULTI, 6, bytesOf(0));
  datagram.insert(datagram.end(), next.begin(), next.end());
  const auto replies = repliesOf(datagram);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_TRUE(replies[0].done);
  EXPECT_EQ(replies[0].seq, 5u);
  EXPECT_EQ(replies[0].error, EBADMSG);
  EXPECT_EQ(replies[1].seq, 6u);
  EXPECT_EQ(replies[1].error, 0);
}

// An error code is a negative errno; INT_MIN (whose negation overflowed before) or a
// positive number is no errno at all.
TEST(IpvsReplies, AnErrorCodeThatIsNoErrnoReadsAsABadMessage) {
  for (int wire : {INT_MIN, 5, -100000}) {
    nlmsgerr e{};
    e.error = wire;
    auto datagram = message(NLMSG_ERROR, NLM_F_CAPPED, 4, bytesOf(e));
    auto done = message(NLMSG_DONE, NLM_F_MULTI, 5, bytesOf(wire));
    datagram.insert(datagram.end(), done.begin(), done.end());
    const auto replies = repliesOf(datagram);
    ASSERT_EQ(replies.size(), 2u);
    EXPECT_EQ(replies[0].error, EBADMSG) << wire;
    EXPECT_EQ(replies[1].error, EBADMSG) << wire;
  }
}

// An uncapped acknowledgement echoes the request; a request length that claims more than the
// message holds (or less than a header) leaves the text empty instead of reading elsewhere.
TEST(IpvsReplies, AnEchoedRequestLongerThanItsAcknowledgementGivesNoText) {
  for (std::uint32_t claimed : {0u, 8u, 4000u, 0xffffffffu}) {
    nlmsgerr e{};
    e.error = -ENOENT;
    e.msg.nlmsg_len = claimed;
    auto payload = bytesOf(e);
    auto tlv = attribute(NLMSGERR_ATTR_MSG, {'n', 'o', 0});
    payload.insert(payload.end(), tlv.begin(), tlv.end());
    const auto replies = repliesOf(message(NLMSG_ERROR, NLM_F_ACK_TLVS, 3, payload));
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].error, ENOENT);
    EXPECT_EQ(replies[0].extack, "") << "claimed request length " << claimed;
  }
}

TEST(IpvsReplies, ADumpedServiceAndRealServerDecode) {
  genlmsghdr g{IPVS_CMD_NEW_SERVICE, IPVS_GENL_VERSION, 0};
  std::vector<unsigned char> service;
  for (auto part : {attribute(IPVS_SVC_ATTR_AF, bytesOf<std::uint16_t>(AF_INET)),
                    attribute(IPVS_SVC_ATTR_PROTOCOL, bytesOf<std::uint16_t>(IPPROTO_TCP)),
                    attribute(IPVS_SVC_ATTR_ADDR, {192, 0, 2, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
                    attribute(IPVS_SVC_ATTR_PORT, bytesOf<std::uint16_t>(htons(80))),
                    attribute(IPVS_SVC_ATTR_SCHED_NAME, {'w', 'r', 'r', 0})})
    service.insert(service.end(), part.begin(), part.end());
  auto payload = bytesOf(g);
  auto nested = attribute(IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED, service);
  payload.insert(payload.end(), nested.begin(), nested.end());
  auto datagram = message(0x1f, NLM_F_MULTI, 7, payload);
  const auto replies = repliesOf(datagram);
  ASSERT_EQ(replies.size(), 1u);
  ASSERT_NE(replies[0].message, nullptr);
  nlattr* attrs[IPVS_CMD_ATTR_MAX + 1] = {};
  // repliesOf's datagram is gone: decode from this one.
  forEachReply(datagram.data(), static_cast<int>(datagram.size()), [&](const IpvsReply& r) {
    EXPECT_EQ(genlmsg_parse(r.message, 0, attrs, IPVS_CMD_ATTR_MAX, nullptr), 0);
    const auto k = decodeService(attrs);
    EXPECT_TRUE(k.has_value());
    if (k) {
      EXPECT_EQ(k->state.spec.address, "192.0.2.10");
      EXPECT_EQ(k->state.spec.port, 80);
      EXPECT_EQ(k->state.spec.scheduler, "wrr");
      EXPECT_TRUE(k->expressible);
    }
    EXPECT_FALSE(decodeReal(attrs, AF_INET).has_value()) << "a service entry holds no real server";
    return true;
  });
}

}  // namespace
