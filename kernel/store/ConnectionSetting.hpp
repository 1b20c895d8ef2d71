#pragma once
// The parsed form of the store connection setting (syntax in store/Store.hpp).
#include <filesystem>
#include <string>

#include "store/Store.hpp"

namespace shoal::store {

class ConnectionSetting {
 public:
  // Throws Error(InvalidArgument) naming the setting (password masked) and the accepted forms.
  static ConnectionSetting parse(const std::string& value, const std::filesystem::path& dataDir);

  Backend backend() const { return backend_; }
  std::string describe() const;

  // The Poco::Data connector name and connection string for this target.
  std::string pocoConnector() const;
  std::string pocoConnectionString() const;

  // SQLite: the database file; "sqlite" without a path means <dataDir>/shoal.db and its
  // directory is created on open.
  const std::filesystem::path& sqlitePath() const { return sqlitePath_; }
  bool createsDataDir() const { return createsDataDir_; }

  // MySQL parts.
  const std::string& user() const { return user_; }
  const std::string& password() const { return password_; }
  const std::string& host() const { return host_; }
  unsigned port() const { return port_; }
  const std::string& database() const { return database_; }
  const std::string& socket() const { return socket_; }  // empty for TCP

  // The accepted forms, for messages.
  static const char* acceptedForms();
  // value with the password of a mysql:// URL replaced by ***, for messages.
  static std::string masked(const std::string& value);
  // Removes the password from a driver message, should a driver ever echo it.
  std::string scrub(std::string message) const;

 private:
  Backend backend_ = Backend::Sqlite;
  std::filesystem::path sqlitePath_;
  bool createsDataDir_ = false;
  std::string user_;
  std::string password_;
  std::string host_;
  unsigned port_ = 3306;
  std::string database_;
  std::string socket_;
};

}  // namespace shoal::store
