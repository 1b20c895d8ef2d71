#pragma once
// The kernel's store: one relational database behind Poco::Data, either an embedded SQLite file
// (the default) or a MySQL/MariaDB server, chosen by one connection setting.
//
// Connection setting (StoreSettings::connection), one of:
//   sqlite
//       the file <dataDir>/shoal.db; dataDir is created when missing
//   sqlite:/absolute/path.db
//       that file (its directory must exist)
//   mysql://user:password@host[:port]/database
//       TCP; port defaults to 3306; host may be an IPv6 literal in brackets ([::1])
//   mysql://user:password@localhost/database?socket=/path/to.sock
//       a Unix socket (host must be localhost)
// user and password are URL-decoded (%40 for '@', %3A for ':', %2F for '/'); the password may
// be left out (mysql://user@host/db). They may not contain ';' or surrounding blanks (the Poco
// MySQL connector cannot carry them). The MySQL client library reads the socket path once per
// process: every mysql store of a process has to use the same socket (or TCP).
//
// Every schema change is a numbered migration (store/Migrations.cpp), recorded in
// schema_migrations; migrate() applies the pending ones in order and is safe to run from several
// processes at once.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <Poco/Data/Session.h>

namespace shoal::store {

enum class Backend { Sqlite, MySql };

struct StoreSettings {
  std::string connection;         // see the syntax above
  std::filesystem::path dataDir;  // where "sqlite" puts shoal.db
};

struct MigrationReport {
  int fromVersion = 0;
  int toVersion = 0;
  std::vector<std::string> applied;  // "<version> <name>" of each migration applied, in order
};

class ConnectionSetting;
class StoreSessionPool;

class Store {
 public:
  // Parses the connection setting and opens a session pool, connecting once to prove it works.
  // Throws shoal::Error(InvalidArgument) for a malformed setting (the message names the setting
  // and lists the accepted forms) and shoal::Error(Internal) when the database cannot be reached
  // (the message names the target, never the password, and gives the driver's reason).
  // A SQLite file is checked (PRAGMA quick_check) before it is used: a damaged one, or one
  // that is not a database, is Error(Failed) naming the file and the ways to recover
  // (restore from a backup, or sqlite3 ".recover" into a new file).
  static std::unique_ptr<Store> open(const StoreSettings& settings);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Backend backend() const;
  // "sqlite /var/lib/shoal/shoal.db", "mysql shoal@127.0.0.1:3306/shoal",
  // "mysql shoal@localhost/shoal?socket=/run/mysqld/mysqld.sock". Never the password.
  std::string describe() const;

  // Applies the pending migrations in order; a no-op when there are none. Safe when several
  // processes start at once (MySQL: GET_LOCK; SQLite: BEGIN IMMEDIATE with a busy timeout).
  // Throws Error(Failed) when the database is at a schema version newer than this build knows.
  MigrationReport migrate();
  int schemaVersion();              // highest applied migration, 0 for an empty database
  int latestSchemaVersion() const;  // highest migration this build knows

  // A session from the pool; it goes back to the pool when the last copy is destroyed.
  // SQLite sessions have a busy timeout set. A MySQL session that the server dropped while it
  // was idle is reconnected before it is handed out.
  // For transactions use store::Transaction (store/Transaction.hpp), not Session::begin(): with
  // Poco 1.11 on MySQL, Session::commit() leaves the connection with autocommit switched off.
  // Throws Error(Internal) when no session can be had.
  Poco::Data::Session session();

  // The cluster_meta table (needs migration 2). Keys are 1..64 bytes, values up to 65535 bytes
  // of UTF-8.
  std::optional<std::string> meta(const std::string& key);
  void setMeta(const std::string& key, const std::string& value);

 private:
  Store(std::unique_ptr<ConnectionSetting> setting, std::unique_ptr<StoreSessionPool> pool);

  std::unique_ptr<ConnectionSetting> setting_;
  std::unique_ptr<StoreSessionPool> pool_;
};

}  // namespace shoal::store
