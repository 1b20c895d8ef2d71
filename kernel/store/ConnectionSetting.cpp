#include "store/ConnectionSetting.hpp"

#include <cctype>
#include <charconv>
#include <string_view>

#include "common/Error.hpp"

namespace shoal::store {

namespace {

constexpr std::string_view kMysqlScheme = "mysql://";
constexpr std::string_view kSqlitePrefix = "sqlite:";

[[noreturn]] void invalid(const std::string& value, const std::string& reason) {
  throw Error(ErrorCode::InvalidArgument,
              "invalid store connection setting \"" + ConnectionSetting::masked(value) +
                  "\": " + reason + ". Accepted forms: " + ConnectionSetting::acceptedForms());
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding of one URL component; ok tells whether every %-escape was well formed.
std::string decode(std::string_view in, bool& ok) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || hexDigit(in[i + 1]) < 0 || hexDigit(in[i + 2]) < 0) {
      ok = false;
      return {};
    }
    out.push_back(static_cast<char>(hexDigit(in[i + 1]) * 16 + hexDigit(in[i + 2])));
    i += 2;
  }
  ok = true;
  return out;
}

bool hasSurroundingBlank(const std::string& s) {
  return !s.empty() && (std::isspace(static_cast<unsigned char>(s.front())) ||
                        std::isspace(static_cast<unsigned char>(s.back())));
}

// The Poco MySQL connection string separates name=value pairs by ';' and trims blanks.
void requireCarriable(const std::string& value, const char* part, const std::string& text) {
  if (text.find(';') != std::string::npos)
    invalid(value,
            std::string("the ") + part + " contains ';', which the MySQL connector cannot carry");
  if (hasSurroundingBlank(text))
    invalid(value, std::string("the ") + part + " starts or ends with a blank");
  if (text.find('\0') != std::string::npos)
    invalid(value, std::string("the ") + part + " contains a NUL byte");
}

}  // namespace

const char* ConnectionSetting::acceptedForms() {
  return "sqlite | sqlite:/absolute/path.db | mysql://user:password@host[:port]/database | "
         "mysql://user:password@localhost/database?socket=/path/to.sock";
}

std::string ConnectionSetting::masked(const std::string& value) {
  // Any URL-like value (a mistyped scheme too) may carry user:password@. Masks from the first
  // ':' after "://" to the last '@': too much rather than too little when the password holds
  // unescaped '/', '?' or '@'.
  const std::size_t scheme = value.find("://");
  if (scheme == std::string::npos) return value;
  const std::size_t start = scheme + 3;
  const std::size_t at = value.rfind('@');
  if (at == std::string::npos || at < start) return value;
  const std::size_t colon = value.find(':', start);
  if (colon == std::string::npos || colon > at) return value;
  return value.substr(0, colon + 1) + "***" + value.substr(at);
}

ConnectionSetting ConnectionSetting::parse(const std::string& value,
                                           const std::filesystem::path& dataDir) {
  ConnectionSetting s;
  if (value == "sqlite") {
    if (dataDir.empty()) invalid(value, "\"sqlite\" needs a data directory, and none is set");
    s.backend_ = Backend::Sqlite;
    s.sqlitePath_ = (std::filesystem::absolute(dataDir) / "shoal.db").lexically_normal();
    s.createsDataDir_ = true;
    return s;
  }
  if (value.compare(0, kSqlitePrefix.size(), kSqlitePrefix) == 0) {
    const std::string path = value.substr(kSqlitePrefix.size());
    if (path.empty() || path.front() != '/') invalid(value, "the SQLite path must be absolute");
    if (path.back() == '/') invalid(value, "the SQLite path names a directory, not a file");
    if (path.find('\0') != std::string::npos) invalid(value, "the SQLite path contains a NUL byte");
    s.backend_ = Backend::Sqlite;
    s.sqlitePath_ = std::filesystem::path(path).lexically_normal();
    return s;
  }
  if (value.compare(0, kMysqlScheme.size(), kMysqlScheme) != 0) {
    if (value.empty()) invalid(value, "the setting is empty");
    invalid(value, "unknown kind of store");
  }

  s.backend_ = Backend::MySql;
  std::string_view rest(value);
  rest.remove_prefix(kMysqlScheme.size());

  std::string_view query;
  if (const std::size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  const std::size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos)
    invalid(value, "the database name is missing (.../database)");
  std::string_view authority = rest.substr(0, slash);
  const std::string_view databasePart = rest.substr(slash + 1);

  const std::size_t at = authority.rfind('@');
  if (at == std::string_view::npos) invalid(value, "the user is missing (user:password@host)");
  const std::string_view userinfo = authority.substr(0, at);
  const std::string_view hostport = authority.substr(at + 1);

  bool ok = false;
  if (const std::size_t colon = userinfo.find(':'); colon != std::string_view::npos) {
    s.user_ = decode(userinfo.substr(0, colon), ok);
    if (!ok) invalid(value, "the user has a bad %-escape");
    s.password_ = decode(userinfo.substr(colon + 1), ok);
    if (!ok) invalid(value, "the password has a bad %-escape");
  } else {
    s.user_ = decode(userinfo, ok);
    if (!ok) invalid(value, "the user has a bad %-escape");
  }
  if (s.user_.empty()) invalid(value, "the user is empty");
  requireCarriable(value, "user", s.user_);
  requireCarriable(value, "password", s.password_);

  std::string_view portPart;
  bool hasPort = false;
  if (!hostport.empty() && hostport.front() == '[') {
    const std::size_t close = hostport.find(']');
    if (close == std::string_view::npos) invalid(value, "the IPv6 host lacks its closing ']'");
    s.host_ = std::string(hostport.substr(1, close - 1));
    const std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') invalid(value, "unexpected text after the IPv6 host");
      portPart = after.substr(1);
      hasPort = true;
    }
  } else {
    const std::size_t colon = hostport.rfind(':');
    if (colon != std::string_view::npos) {
      s.host_ = std::string(hostport.substr(0, colon));
      portPart = hostport.substr(colon + 1);
      hasPort = true;
    } else {
      s.host_ = std::string(hostport);
    }
  }
  if (s.host_.empty()) invalid(value, "the host is empty");
  if (s.host_.find_first_of("; \t/@") != std::string::npos)
    invalid(value, "the host \"" + s.host_ + "\" is not a host name or address");
  if (hasPort) {
    unsigned port = 0;
    const auto [end, ec] =
        std::from_chars(portPart.data(), portPart.data() + portPart.size(), port);
    if (portPart.empty() || ec != std::errc() || end != portPart.data() + portPart.size() ||
        port == 0 || port > 65535)
      invalid(value, "the port \"" + std::string(portPart) + "\" is not a number from 1 to 65535");
    s.port_ = port;
  }

  s.database_ = decode(databasePart, ok);
  if (!ok) invalid(value, "the database name has a bad %-escape");
  if (s.database_.empty()) invalid(value, "the database name is empty");
  if (s.database_.size() > 64) invalid(value, "the database name is longer than 64 characters");
  requireCarriable(value, "database name", s.database_);

  if (!query.empty()) {
    std::string_view remaining = query;
    while (!remaining.empty()) {
      const std::size_t amp = remaining.find('&');
      const std::string_view pair = remaining.substr(0, amp);
      remaining = amp == std::string_view::npos ? std::string_view() : remaining.substr(amp + 1);
      const std::size_t eq = pair.find('=');
      const std::string_view name = pair.substr(0, eq);
      if (name != "socket")
        invalid(value, "unknown option \"" + std::string(name) + "\" (only socket= is known)");
      if (eq == std::string_view::npos) invalid(value, "socket= needs a path");
      s.socket_ = decode(pair.substr(eq + 1), ok);
      if (!ok) invalid(value, "the socket path has a bad %-escape");
      if (s.socket_.empty() || s.socket_.front() != '/')
        invalid(value, "the socket path must be absolute");
      requireCarriable(value, "socket path", s.socket_);
    }
    if (!s.socket_.empty()) {
      if (s.host_ != "localhost") invalid(value, "a socket needs the host localhost");
      if (hasPort) invalid(value, "a socket connection takes no port");
    }
  }
  return s;
}

std::string ConnectionSetting::describe() const {
  if (backend_ == Backend::Sqlite) return "sqlite " + sqlitePath_.string();
  std::string out = "mysql " + user_ + "@";
  out += host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_;
  if (socket_.empty()) out += ":" + std::to_string(port_);
  out += "/" + database_;
  if (!socket_.empty()) out += "?socket=" + socket_;
  return out;
}

std::string ConnectionSetting::pocoConnector() const {
  return backend_ == Backend::Sqlite ? "SQLite" : "MySQL";
}

std::string ConnectionSetting::pocoConnectionString() const {
  if (backend_ == Backend::Sqlite) return sqlitePath_.string();
  return "host=" + host_ + ";port=" + std::to_string(port_) + ";user=" + user_ +
         ";password=" + password_ + ";db=" + database_ + ";character-set=utf8mb4";
}

std::string ConnectionSetting::scrub(std::string message) const {
  // A password of a few characters would match ordinary words; drivers do not echo it anyway.
  if (password_.size() < 4) return message;
  for (std::size_t pos = message.find(password_); pos != std::string::npos;
       pos = message.find(password_, pos + 3))
    message.replace(pos, password_.size(), "***");
  return message;
}

}  // namespace shoal::store
