#include "tls/OpenSsl.hpp"

#include "common/Error.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <string_view>

namespace shoal::tls::detail {

namespace {

BioPtr memoryBio(const std::string& data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string bioContents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

// Refuses to supply a passphrase, so an encrypted key fails instead of prompting on a tty.
int noPassphrase(char*, int, int, void*) { return -1; }

}  // namespace

std::string takeErrors() {
  std::string joined;
  while (const unsigned long code = ERR_get_error()) {
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    if (!joined.empty()) joined += "; ";
    joined += text.data();
  }
  return joined;
}

X509Ptr parseCertificate(const std::string& pem) {
  BioPtr bio = memoryBio(pem);
  X509Ptr certificate(bio ? PEM_read_bio_X509(bio.get(), nullptr, noPassphrase, nullptr) : nullptr);
  takeErrors();
  return certificate;
}

std::vector<X509Ptr> parseCertificates(const std::string& pem) {
  std::vector<X509Ptr> certificates;
  BioPtr bio = memoryBio(pem);
  while (bio) {
    X509Ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, noPassphrase, nullptr));
    if (!certificate) break;
    certificates.push_back(std::move(certificate));
  }
  takeErrors();  // the end of input is reported as an error entry
  return certificates;
}

EvpPkeyPtr parsePrivateKey(const std::string& pem) {
  BioPtr bio = memoryBio(pem);
  EvpPkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr) : nullptr);
  takeErrors();
  return key;
}

std::string toPem(const X509* certificate) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), const_cast<X509*>(certificate)) != 1) {
    takeErrors();
    return {};
  }
  return bioContents(bio.get());
}

std::string toPem(const EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    takeErrors();
    return {};
  }
  return bioContents(bio.get());
}

std::string fingerprint(const X509* certificate) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (X509_digest(certificate, EVP_sha256(), digest.data(), &length) != 1) {
    takeErrors();
    return {};
  }
  std::string text = "sha256:";
  for (unsigned int i = 0; i < length; ++i) {
    std::array<char, 3> pair{};
    std::snprintf(pair.data(), pair.size(), "%02x", digest[i]);
    text += pair.data();
  }
  return text;
}

std::optional<std::vector<unsigned char>> parseIpLiteral(const std::string& text) {
  std::array<unsigned char, 16> address{};
  if (inet_pton(AF_INET, text.c_str(), address.data()) == 1) {
    return std::vector<unsigned char>(address.begin(), address.begin() + 4);
  }
  if (inet_pton(AF_INET6, text.c_str(), address.data()) == 1) {
    return std::vector<unsigned char>(address.begin(), address.end());
  }
  return std::nullopt;
}

std::vector<AlternativeName> alternativeNames(const X509* certificate) {
  std::vector<AlternativeName> names;
  GeneralNamesPtr general(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr)));
  takeErrors();
  if (!general) return names;
  for (int i = 0; i < sk_GENERAL_NAME_num(general.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(general.get(), i);
    if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      names.push_back({true, std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(ip)),
                                         static_cast<std::size_t>(ASN1_STRING_length(ip)))});
    } else if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                        static_cast<std::size_t>(ASN1_STRING_length(dns)));
      std::transform(value.begin(), value.end(), value.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      names.push_back({false, std::move(value)});
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

namespace {

bool isLabel(std::string_view label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
  return std::all_of(label.begin(), label.end(),
                     [](unsigned char c) { return std::isalnum(c) != 0 || c == '-'; });
}

bool isDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  if (name.starts_with("*.")) name.remove_prefix(2);
  std::string_view last;
  while (true) {
    const std::size_t dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (!isLabel(label)) return false;
    last = label;
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  return !std::all_of(last.begin(), last.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

}  // namespace

AlternativeName toAlternativeName(const std::string& name) {
  if (auto ip = parseIpLiteral(name)) {
    return {true, std::string(ip->begin(), ip->end())};
  }
  if (!isDnsName(name)) {
    throw Error(ErrorCode::InvalidArgument,
                "certificate name '" + name + "' is neither an IPv4/IPv6 literal nor a DNS name");
  }
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return {false, std::move(lower)};
}

std::vector<AlternativeName> toAlternativeNames(const std::vector<std::string>& names) {
  if (names.empty()) {
    throw Error(ErrorCode::InvalidArgument, "a server certificate needs at least one name");
  }
  std::vector<AlternativeName> result;
  for (const std::string& name : names) result.push_back(toAlternativeName(name));
  std::sort(result.begin(), result.end());
  result.erase(std::unique(result.begin(), result.end()), result.end());
  return result;
}

}  // namespace shoal::tls::detail
