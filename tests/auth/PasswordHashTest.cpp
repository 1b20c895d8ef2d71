#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "AuthTest.hpp"
#include "auth/PasswordHash.hpp"

namespace shoal::auth::test {
namespace {

std::vector<std::string> splitDollar(const std::string& s) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = s.find('$', start);
    parts.push_back(s.substr(start, at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

// Cheap parameters, for the tests that hash many times.
constexpr ScryptParams kFast{1024, 8, 1};

TEST(PasswordHash, HashesAreSelfDescribingScryptWithSaltAndHashInBase64) {
  const std::string hash = hashPassword("correct horse battery");
  EXPECT_EQ(hash.rfind("scrypt$N=32768,r=8,p=1$", 0), 0u) << hash;
  const auto parts = splitDollar(hash);
  ASSERT_EQ(parts.size(), 4u) << hash;
  EXPECT_EQ(parts[2].size(), 22u) << "16 bytes of salt, unpadded base64: " << parts[2];
  EXPECT_EQ(parts[3].size(), 43u) << "32 bytes of hash, unpadded base64: " << parts[3];
  EXPECT_EQ(hash.find("correct"), std::string::npos);
  EXPECT_FALSE(passwordNeedsRehash(hash));
}

TEST(PasswordHash, TheRightPasswordVerifiesAndOthersDoNot) {
  const std::string hash = hashPassword("correct horse battery");
  EXPECT_TRUE(verifyPassword("correct horse battery", hash));
  EXPECT_FALSE(verifyPassword("correct horse batterY", hash));
  EXPECT_FALSE(verifyPassword("correct horse battery ", hash));
  EXPECT_FALSE(verifyPassword("", hash));
  EXPECT_FALSE(verifyPassword(std::string("correct horse battery\0x", 23), hash));
}

TEST(PasswordHash, TwoHashesOfOnePasswordHaveDifferentSalts) {
  const std::string a = hashPassword("same password here", kFast);
  const std::string b = hashPassword("same password here", kFast);
  EXPECT_NE(a, b);
  EXPECT_NE(splitDollar(a)[2], splitDollar(b)[2]);
  EXPECT_NE(splitDollar(a)[3], splitDollar(b)[3]);
  EXPECT_TRUE(verifyPassword("same password here", a));
  EXPECT_TRUE(verifyPassword("same password here", b));
}

TEST(PasswordHash, ParametersAreReadFromTheStoredString) {
  const std::string weak = hashPassword("an older password", kFast);
  EXPECT_EQ(weak.rfind("scrypt$N=1024,r=8,p=1$", 0), 0u) << weak;
  EXPECT_TRUE(verifyPassword("an older password", weak));
  EXPECT_FALSE(verifyPassword("an older passwore", weak));
  EXPECT_TRUE(passwordNeedsRehash(weak));

  const std::string other = hashPassword("an older password", ScryptParams{2048, 4, 2});
  EXPECT_EQ(other.rfind("scrypt$N=2048,r=4,p=2$", 0), 0u) << other;
  EXPECT_TRUE(verifyPassword("an older password", other));
}

TEST(PasswordHash, MalformedStoredStringsNeverVerify) {
  const std::string good = hashPassword("correct horse battery", kFast);
  const auto parts = splitDollar(good);
  const std::string salt = parts[2], hash = parts[3];
  const std::vector<std::string> malformed = {
      "",
      "scrypt",
      "scrypt$",
      "sha256:0123456789abcdef",
      "plain text password",
      "bcrypt$N=1024,r=8,p=1$" + salt + "$" + hash,
      "SCRYPT$N=1024,r=8,p=1$" + salt + "$" + hash,
      "scrypt$N=1024,r=8,p=1$" + salt,                     // no hash
      "scrypt$N=1024,r=8,p=1$" + salt + "$" + hash + "$",  // extra part
      "scrypt$N=1024,r=8,p=1$$" + hash,                    // empty salt
      "scrypt$N=1024,r=8,p=1$" + salt + "$",               // empty hash
      "scrypt$r=8,N=1024,p=1$" + salt + "$" + hash,        // parameter order
      "scrypt$N=1024,r=8$" + salt + "$" + hash,            // missing p
      "scrypt$N=1024,r=8,p=1,x=2$" + salt + "$" + hash,    // extra parameter
      "scrypt$N=01024,r=8,p=1$" + salt + "$" + hash,       // leading zero
      "scrypt$N=1000,r=8,p=1$" + salt + "$" + hash,        // not a power of two
      "scrypt$N=1,r=8,p=1$" + salt + "$" + hash,           // too small
      "scrypt$N=1073741824,r=8,p=1$" + salt + "$" + hash,  // 2^30: would need 128 GiB
      "scrypt$N=1048576,r=32,p=1$" + salt + "$" + hash,    // 4 GiB
      "scrypt$N=1024,r=0,p=1$" + salt + "$" + hash,
      "scrypt$N=1024,r=8,p=0$" + salt + "$" + hash,
      "scrypt$N=1024,r=8,p=17$" + salt + "$" + hash,
      "scrypt$N=-1024,r=8,p=1$" + salt + "$" + hash,
      "scrypt$N=1024,r=8,p=1$" + salt + "==" + "$" + hash,               // padding is not used
      "scrypt$N=1024,r=8,p=1$" + salt + "$" + hash.substr(0, 20),        // too short (15 bytes)
      "scrypt$N=1024,r=8,p=1$" + salt + "$" + hash.substr(0, 42) + "!",  // not base64
      "scrypt$N=1024,r=8,p=1$" + salt + "$" + hash.substr(0, 41),        // 41 % 4 == 1
      "scrypt$N=1024,r=8,p=1$" + salt + "$" + hash + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" +
          "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  // more than 64 bytes
      " " + good,
      good + " ",
      good + "\n",
  };
  for (const std::string& stored : malformed) {
    EXPECT_FALSE(verifyPassword("correct horse battery", stored)) << stored;
    EXPECT_TRUE(passwordNeedsRehash(stored)) << stored;
  }
  EXPECT_TRUE(verifyPassword("correct horse battery", good));  // the parts were right
}

TEST(PasswordHash, AChangedHashOrSaltNoLongerVerifies) {
  const std::string good = hashPassword("correct horse battery", kFast);
  auto parts = splitDollar(good);
  for (int which : {2, 3}) {
    auto changed = parts;
    changed[which][5] = changed[which][5] == 'A' ? 'B' : 'A';
    const std::string stored = changed[0] + "$" + changed[1] + "$" + changed[2] + "$" + changed[3];
    EXPECT_FALSE(verifyPassword("correct horse battery", stored)) << stored;
  }
  const std::string otherParams = "scrypt$N=2048,r=8,p=1$" + parts[2] + "$" + parts[3];
  EXPECT_FALSE(verifyPassword("correct horse battery", otherParams));
}

TEST(PasswordHash, ParametersOutOfRangeAreRefusedWhenHashing) {
  for (const ScryptParams& p :
       {ScryptParams{1000, 8, 1}, ScryptParams{1, 8, 1}, ScryptParams{std::uint64_t(1) << 21, 1, 1},
        ScryptParams{1024, 0, 1}, ScryptParams{1024, 33, 1}, ScryptParams{1024, 8, 0},
        ScryptParams{1024, 8, 17}, ScryptParams{1048576, 8, 1}}) {  // 1 GiB
    const std::string message =
        errorMessageOf(ErrorCode::InvalidArgument, [&] { hashPassword("whatever it is", p); });
    EXPECT_NE(message.find("scrypt parameters"), std::string::npos) << message;
  }
}

TEST(PasswordHash, AnEmptyOrBinaryPasswordHashesAndVerifies) {
  const std::string empty = hashPassword("", kFast);
  EXPECT_TRUE(verifyPassword("", empty));
  EXPECT_FALSE(verifyPassword(" ", empty));
  const std::string binary("\x01\xff\xfe\x80 and more", 13);
  const std::string hash = hashPassword(binary, kFast);
  EXPECT_TRUE(verifyPassword(binary, hash));
}

TEST(PasswordStrength, AtLeastTenCharactersAtMost1024BytesAndNoNul) {
  EXPECT_EQ(errorMessageOf(ErrorCode::InvalidArgument, [] { checkPasswordStrength(""); }),
            "password: must be at least 10 characters");
  EXPECT_EQ(errorMessageOf(ErrorCode::InvalidArgument, [] { checkPasswordStrength("123456789"); }),
            "password: must be at least 10 characters");
  EXPECT_NO_THROW(checkPasswordStrength("1234567890"));
  // Characters, not bytes: nine two-byte characters are too few, ten are enough.
  std::string nine, ten;
  for (int i = 0; i < 9; ++i) nine += "\xC3\xA9";  // é
  ten = nine + "\xC3\xA9";
  EXPECT_EQ(errorMessageOf(ErrorCode::InvalidArgument, [&] { checkPasswordStrength(nine); }),
            "password: must be at least 10 characters");
  EXPECT_NO_THROW(checkPasswordStrength(ten));

  EXPECT_NO_THROW(checkPasswordStrength(std::string(1024, 'x')));
  EXPECT_EQ(errorMessageOf(ErrorCode::InvalidArgument,
                           [] { checkPasswordStrength(std::string(1025, 'x')); }),
            "password: must be at most 1024 bytes");
  EXPECT_EQ(errorMessageOf(ErrorCode::InvalidArgument,
                           [] { checkPasswordStrength(std::string("0123456789\0abc", 14)); }),
            "password: must not contain NUL bytes");
}

}  // namespace
}  // namespace shoal::auth::test
