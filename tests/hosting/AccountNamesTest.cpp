// Account and domain names (docs/adr/0013-hosting-accounts.md).
#include <gtest/gtest.h>

#include "common/Error.hpp"
#include "hosting/AccountNames.hpp"

namespace shoal::hosting {
namespace {

std::string refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted";
  return {};
}

TEST(AccountNames, AcceptsTheUserNameGrammar) {
  for (const char* name : {"acme", "a", "_svc", "shop-2", "x_y-z", "abcdefghijklmnopqrstuvwxyz012345"})
    EXPECT_NO_THROW(validateAccountName(name)) << name;
}

TEST(AccountNames, RefusesWhatUseraddOrTheSystemWouldNot) {
  EXPECT_NE(refusal([] { validateAccountName(""); }).find("1 to 32"), std::string::npos);
  EXPECT_NE(refusal([] { validateAccountName("abcdefghijklmnopqrstuvwxyz0123456"); }).find("1 to 32"),
            std::string::npos);
  EXPECT_NE(refusal([] { validateAccountName("1acme"); }).find("start"), std::string::npos);
  EXPECT_NE(refusal([] { validateAccountName("Acme"); }).find("start"), std::string::npos);
  EXPECT_NE(refusal([] { validateAccountName("ac me"); }).find("a-z"), std::string::npos);
  EXPECT_NE(refusal([] { validateAccountName("acme\n"); }).find("a-z"), std::string::npos);
  for (const char* reserved : {"root", "www-data", "nobody", "postfix", "shoal", "admin"})
    EXPECT_NE(refusal([&] { validateAccountName(reserved, "name"); }).find("name"), std::string::npos) << reserved;
}

TEST(DomainNames, StoresIdnAsPunycodeAndKeepsTheUnicodeForDisplay) {
  const auto d = normalizeDomain("bücher.example");
  EXPECT_EQ(d.ascii, "xn--bcher-kva.example");
  EXPECT_EQ(d.unicode, "bücher.example");
  const auto again = normalizeDomain("xn--bcher-kva.example");
  EXPECT_EQ(again.ascii, "xn--bcher-kva.example");
  EXPECT_EQ(again.unicode, "bücher.example");
}

TEST(DomainNames, LowerCasesAndAcceptsRfc1123Names) {
  EXPECT_EQ(normalizeDomain("WWW.Acme.TEST").ascii, "www.acme.test");
  EXPECT_EQ(normalizeDomain("3com.example").ascii, "3com.example");
  EXPECT_EQ(normalizeDomain("a-b.c-d.example").ascii, "a-b.c-d.example");
  EXPECT_EQ(normalizeDomain("acme.test.").ascii, "acme.test");  // the root label is implied
}

TEST(DomainNames, RefusesNamesThatAreNotHostNames) {
  for (const char* bad : {"", "localhost", "-acme.test", "acme-.test", "ac_me.test", "acme..test", ".acme.test",
                          "a b.test", "acme.test/x", "*.acme.test"})
    EXPECT_FALSE(refusal([&] { normalizeDomain(bad, "domain"); }).empty()) << bad;
  const std::string longLabel(64, 'a');
  EXPECT_FALSE(refusal([&] { normalizeDomain(longLabel + ".test"); }).empty());
  std::string tooLong;
  while (tooLong.size() < 250) tooLong += "abcdefghi.";
  EXPECT_FALSE(refusal([&] { normalizeDomain(tooLong + "test"); }).empty());
}

TEST(DomainNames, ErrorsNameTheField) {
  EXPECT_NE(refusal([] { normalizeDomain("ac_me.test", "domains[2].name"); }).find("domains[2].name"),
            std::string::npos);
}

}  // namespace
}  // namespace shoal::hosting
