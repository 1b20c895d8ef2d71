#include <set>

#include <gtest/gtest.h>

#include "BackendTest.hpp"
#include "cluster/Secrets.hpp"

namespace shoal::cluster {
namespace {

using store::test::errorMessageOf;

TEST(Secrets, RandomSecretIsBase64UrlWithoutPaddingOfTheRequestedSize) {
  const std::string secret = randomSecret();
  EXPECT_EQ(secret.size(), 43u);  // 32 bytes
  for (char c : secret)
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << secret;
  EXPECT_EQ(randomSecret(16).size(), 22u);
  EXPECT_EQ(randomSecret(18).size(), 24u);
}

TEST(Secrets, RandomSecretsDoNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(seen.insert(randomSecret()).second);
}

TEST(Secrets, RandomSecretRefusesSizesBelow16OrAbove1024Bytes) {
  EXPECT_NE(errorMessageOf(ErrorCode::InvalidArgument, [] { randomSecret(15); }).find("16 to 1024"),
            std::string::npos);
  errorMessageOf(ErrorCode::InvalidArgument, [] { randomSecret(1025); });
}

TEST(Secrets, HashSecretIsPrefixedLowercaseSha256Hex) {
  EXPECT_EQ(hashSecret("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_NE(hashSecret("abc"), hashSecret("abd"));
  errorMessageOf(ErrorCode::InvalidArgument, [] { hashSecret(""); });
}

TEST(Secrets, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(constantTimeEquals("same", "same"));
  EXPECT_TRUE(constantTimeEquals("", ""));
  EXPECT_FALSE(constantTimeEquals("same", "sane"));
  EXPECT_FALSE(constantTimeEquals("same", "same "));
  EXPECT_FALSE(constantTimeEquals("", "x"));
}

}  // namespace
}  // namespace shoal::cluster
