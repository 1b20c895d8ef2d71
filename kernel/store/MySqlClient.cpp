#include "store/MySqlClient.hpp"

#include <cstdlib>
#include <mutex>

#include <Poco/Any.h>
#include <Poco/Data/MySQL/Connector.h>
#include <mysql/mysql.h>

namespace shoal::store {

namespace {

std::once_flag registered;
std::optional<std::string> fixedSocket;

MYSQL* handleOf(Poco::Data::Session& session) {
  // Poco's MySQL session publishes its connection handle as the property "handle".
  return Poco::AnyCast<MYSQL*>(session.getProperty("handle"));
}

class EnvOverride {
 public:
  EnvOverride(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~EnvOverride() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

void MySqlClient::registerConnector(const std::string& socket) {
  std::call_once(registered, [&socket] {
    if (socket.empty()) {
      if (const char* env = std::getenv("MYSQL_UNIX_PORT"); env && *env)
        fixedSocket = env;
      else if (const char* env2 = std::getenv("MARIADB_UNIX_PORT"); env2 && *env2)
        fixedSocket = env2;
      Poco::Data::MySQL::Connector::registerConnector();
      return;
    }
    fixedSocket = socket;
    EnvOverride mysqlPort("MYSQL_UNIX_PORT", socket);
    EnvOverride mariadbPort("MARIADB_UNIX_PORT", socket);
    Poco::Data::MySQL::Connector::registerConnector();
  });
}

std::optional<std::string> MySqlClient::processSocket() {
  return fixedSocket;
}

std::string MySqlClient::socketOf(Poco::Data::Session& session) {
  MYSQL* handle = handleOf(session);
  const char* path = nullptr;
  if (mariadb_get_infov(handle, MARIADB_CONNECTION_UNIX_SOCKET, &path) != 0 || path == nullptr)
    return {};
  // Set only when the connection really goes through a socket.
  const char* hostInfo = mysql_get_host_info(handle);
  if (hostInfo == nullptr || std::string(hostInfo).find("socket") == std::string::npos) return {};
  return path;
}

std::string MySqlClient::ensureConnected(Poco::Data::Session& session) {
  MYSQL* handle = handleOf(session);
  if (mysql_ping(handle) == 0) return {};
  // Reconnect in place: the same MYSQL handle, the same parameters (host, port, socket,
  // character set). Only allowed for this ping, so a connection lost in the middle of a
  // transaction is never silently replaced by a fresh one in autocommit mode.
  my_bool on = 1;
  mysql_optionsv(handle, MYSQL_OPT_RECONNECT, &on);
  int rc = mysql_ping(handle);
  if (rc != 0) rc = mysql_ping(handle);
  my_bool off = 0;
  mysql_optionsv(handle, MYSQL_OPT_RECONNECT, &off);
  if (rc == 0) return {};
  const char* why = mysql_error(handle);
  return why != nullptr && *why != '\0' ? why : "the connection was lost and could not be restored";
}

}  // namespace shoal::store
