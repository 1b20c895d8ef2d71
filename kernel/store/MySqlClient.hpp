#pragma once
// What the store needs from the MySQL client library (MariaDB Connector/C) beyond Poco 1.11.
#include <optional>
#include <string>

#include <Poco/Data/Session.h>

namespace shoal::store {

class MySqlClient {
 public:
  // Registers Poco's MySQL connector, once per process. The client library reads its Unix
  // socket path once, when it initialises (from MYSQL_UNIX_PORT / MARIADB_UNIX_PORT), and
  // Poco 1.11 offers no per-connection socket option; so the first call fixes the socket path
  // for the whole process: socket when not empty. The environment is restored afterwards.
  static void registerConnector(const std::string& socket);

  // The socket path fixed for this process, or nullopt when it is the library's default.
  static std::optional<std::string> processSocket();

  // The Unix socket the session is connected through (empty for TCP).
  static std::string socketOf(Poco::Data::Session& session);

  // Pings the session's connection; when the server has dropped it (idle past wait_timeout,
  // killed, server restarted), reconnects it in place. Returns an empty string when the session
  // is usable, else the client library's reason.
  static std::string ensureConnected(Poco::Data::Session& session);
};

}  // namespace shoal::store
