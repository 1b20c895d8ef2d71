#include "store/Store.hpp"

#include <mutex>
#include <system_error>

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/SQLiteException.h>
#include <Poco/Data/Statement.h>

#include "common/Error.hpp"
#include "store/ConnectionSetting.hpp"
#include "store/DatabaseError.hpp"
#include "store/Migrations.hpp"
#include "store/MySqlClient.hpp"
#include "store/StoreSessionPool.hpp"
#include "store/Timestamp.hpp"
#include "store/Transaction.hpp"
#include "store/Utf8.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::store {

namespace {

constexpr int kMigrationLockSeconds = 60;
constexpr std::size_t kMetaKeyMax = 64;
constexpr std::size_t kMetaValueMax = 65535;

void registerSqliteConnector() {
  static std::once_flag once;
  std::call_once(once, [] { Poco::Data::SQLite::Connector::registerConnector(); });
}

bool schemaTableExists(Poco::Data::Session& session, Backend backend) {
  Poco::Int64 count = 0;
  if (backend == Backend::Sqlite) {
    session << "SELECT COUNT(*) FROM sqlite_master"
               " WHERE type = 'table' AND name = 'schema_migrations'",
        into(count), now;
  } else {
    session << "SELECT COUNT(*) FROM information_schema.tables"
               " WHERE table_schema = DATABASE() AND table_name = 'schema_migrations'",
        into(count), now;
  }
  return count > 0;
}

int readSchemaVersion(Poco::Data::Session& session, Backend backend) {
  if (!schemaTableExists(session, backend)) return 0;
  Poco::Int64 version = 0;
  session << "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", into(version), now;
  return static_cast<int>(version);
}

[[noreturn]] void refuseNewerSchema(int current, int latest) {
  throw Error(ErrorCode::Failed, "the store is at schema version " + std::to_string(current) +
                                     " but this shoald knows only up to " + std::to_string(latest) +
                                     "; upgrade shoald");
}

void recordMigration(Poco::Data::Session& session, const Migration& m) {
  int version = m.version;
  std::string name = m.name;
  std::string appliedAt = utcTimestampNow();
  session << "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
      use(version), use(name), use(appliedAt), now;
}

std::string migrationLabel(const Migration& m) {
  return std::to_string(m.version) + " " + m.name;
}

// What to do with a damaged SQLite file, for the message that refuses it.
std::string sqliteRecoverySteps(const std::filesystem::path& file) {
  const std::string f = file.string();
  const std::string recovered = (file.parent_path() / "shoal-recovered.db").string();
  return "shoald will not use a damaged store. Stop shoald, then either restore " + f +
         " from a backup, or recover what is readable into a new file: sqlite3 " + f +
         " \".recover\" | sqlite3 " + recovered + " ; check the recovered file (sqlite3 " + recovered +
         " \"PRAGMA integrity_check\"), move " + f + " and its -wal and -shm files away, and put the "
         "recovered file in its place";
}

[[noreturn]] void refuseDamagedSqlite(const std::filesystem::path& file, const std::string& finding) {
  throw Error(ErrorCode::Failed,
              "the store " + file.string() + " is damaged (" + finding + "); " + sqliteRecoverySteps(file));
}

// A driver error that means the file is not a sound database, as opposed to one that cannot
// be reached (permissions, a missing directory).
bool isDamagedSqlite(const Poco::Exception& e) {
  if (dynamic_cast<const Poco::Data::SQLite::CorruptImageException*>(&e) != nullptr) return true;
  const std::string text = e.displayText();
  return text.find("malformed") != std::string::npos || text.find("not a database") != std::string::npos;
}

// PRAGMA quick_check reads every page of every b-tree (without comparing indexes to their
// tables), so a damaged page is found at start rather than by the first query that reads it.
void quickCheckSqlite(Poco::Data::Session& probe, const std::filesystem::path& file) {
  std::vector<std::string> findings;
  try {
    probe << "PRAGMA quick_check(5)", into(findings), now;
  } catch (const Poco::Exception& e) {
    // A page too broken to walk makes the check itself fail.
    if (isDamagedSqlite(e)) refuseDamagedSqlite(file, "SQLite quick_check: " + DatabaseError::reason(e));
    throw;
  }
  if (findings.size() == 1 && findings.front() == "ok") return;
  std::string text;
  for (const auto& line : findings) text += (text.empty() ? "" : "; ") + line;
  refuseDamagedSqlite(file, "SQLite quick_check: " + (text.empty() ? std::string("no answer") : text));
}

}  // namespace

Store::Store(std::unique_ptr<ConnectionSetting> setting, std::unique_ptr<StoreSessionPool> pool)
    : setting_(std::move(setting)), pool_(std::move(pool)) {}

Store::~Store() = default;

std::unique_ptr<Store> Store::open(const StoreSettings& settings) {
  auto setting = std::make_unique<ConnectionSetting>(
      ConnectionSetting::parse(settings.connection, settings.dataDir));

  if (setting->backend() == Backend::Sqlite) {
    registerSqliteConnector();
    if (setting->createsDataDir()) {
      std::error_code ec;
      std::filesystem::create_directories(setting->sqlitePath().parent_path(), ec);
      if (ec)
        throw Error(ErrorCode::Internal, "cannot create the data directory " +
                                             setting->sqlitePath().parent_path().string() +
                                             " for the store: " + ec.message());
    }
  } else {
    MySqlClient::registerConnector(setting->socket());
    if (!setting->socket().empty()) {
      if (auto fixed = MySqlClient::processSocket(); fixed && *fixed != setting->socket())
        throw Error(ErrorCode::Unsupported, "store " + setting->describe() +
                                                ": this process already connects to MySQL "
                                                "through the socket " +
                                                *fixed +
                                                ", and the MySQL client library takes one "
                                                "socket path per process");
    }
  }

  // One connection up front, with a short login timeout, so a wrong setting fails here.
  // (Poco's SQLite connector retries a file it cannot open until the timeout is over.)
  const std::size_t loginTimeout = setting->backend() == Backend::Sqlite ? 1 : 10;
  try {
    Poco::Data::Session probe(setting->pocoConnector(), setting->pocoConnectionString(),
                              loginTimeout);
    if (setting->backend() == Backend::Sqlite) {
      // WAL lets readers proceed while a writer holds the lock; the mode is kept in the file.
      std::string mode;
      probe << "PRAGMA busy_timeout = " + std::to_string(StoreSessionPool::kSqliteBusyTimeoutMs),
          now;
      probe << "PRAGMA journal_mode = WAL", into(mode), now;
      quickCheckSqlite(probe, setting->sqlitePath());
    } else if (!setting->socket().empty()) {
      const std::string actual = MySqlClient::socketOf(probe);
      if (actual != setting->socket())
        throw Error(ErrorCode::Unsupported,
                    "store " + setting->describe() + ": connected through " +
                        (actual.empty() ? std::string("TCP") : "the socket " + actual) +
                        " instead; the MySQL client library takes one socket path per process");
    }
  } catch (const Poco::Exception& e) {
    if (setting->backend() == Backend::Sqlite && isDamagedSqlite(e))
      refuseDamagedSqlite(setting->sqlitePath(), DatabaseError::reason(e));
    throw Error(ErrorCode::Internal, "cannot reach the store (" + setting->describe() +
                                         "): " + setting->scrub(DatabaseError::reason(e)));
  }

  auto pool = std::make_unique<StoreSessionPool>(*setting);
  return std::unique_ptr<Store>(new Store(std::move(setting), std::move(pool)));
}

Backend Store::backend() const {
  return setting_->backend();
}

std::string Store::describe() const {
  return setting_->describe();
}

int Store::latestSchemaVersion() const {
  return migrations().empty() ? 0 : migrations().back().version;
}

int Store::schemaVersion() {
  Poco::Data::Session s = session();
  try {
    return readSchemaVersion(s, backend());
  } catch (const Poco::Exception& e) {
    throw Error(ErrorCode::Internal,
                "reading the schema version of the store failed: " + DatabaseError::reason(e));
  }
}

MigrationReport Store::migrate() {
  const int latest = latestSchemaVersion();
  MigrationReport report;
  Poco::Data::Session s = session();
  const Migration* running = nullptr;
  try {
    if (backend() == Backend::Sqlite) {
      // One IMMEDIATE transaction per migration: the version is read under the write lock, so
      // a second process waits and then finds the work done.
      for (bool first = true;; first = false) {
        Transaction tx(s, Backend::Sqlite);
        s << schemaMigrationsTableSqlite(), now;
        const int current = readSchemaVersion(s, Backend::Sqlite);
        if (first) report.fromVersion = current;
        if (current > latest) refuseNewerSchema(current, latest);
        if (current == latest) {
          tx.commit();
          break;
        }
        const Migration& m = migrations().at(static_cast<std::size_t>(current));
        running = &m;
        for (const std::string& statement : m.sqlite) s << statement, now;
        recordMigration(s, m);
        tx.commit();
        running = nullptr;
        report.applied.push_back(migrationLabel(m));
      }
    } else {
      // MySQL commits DDL implicitly, so the migrations are serialised by a named lock.
      const std::string lockName = ("shoal.migrate." + setting_->database()).substr(0, 64);
      std::string name = lockName;
      Poco::Int64 locked = -1;
      s << "SELECT GET_LOCK(?, " + std::to_string(kMigrationLockSeconds) + ")", use(name),
          into(locked), now;
      if (locked != 1)
        throw Error(ErrorCode::Failed,
                    "another process has been migrating the store (" + describe() + ") for " +
                        std::to_string(kMigrationLockSeconds) + " s; try again later");
      struct Unlock {
        Poco::Data::Session& session;
        std::string name;
        ~Unlock() {
          try {
            Poco::Int64 released = 0;
            session << "SELECT RELEASE_LOCK(?)", use(name), into(released), now;
          } catch (...) {
            // The lock goes with the connection if the connection is gone.
          }
        }
      } unlock{s, lockName};

      s << schemaMigrationsTableMysql(), now;
      int current = readSchemaVersion(s, Backend::MySql);
      report.fromVersion = current;
      if (current > latest) refuseNewerSchema(current, latest);
      while (current < latest) {
        const Migration& m = migrations().at(static_cast<std::size_t>(current));
        running = &m;
        // Data statements of a migration commit together with its row; DDL commits itself.
        Transaction tx(s, Backend::MySql);
        for (const std::string& statement : m.mysql) s << statement, now;
        recordMigration(s, m);
        tx.commit();
        running = nullptr;
        report.applied.push_back(migrationLabel(m));
        current = m.version;
      }
    }
  } catch (const Poco::Exception& e) {
    throw Error(ErrorCode::Internal,
                (running ? "migration " + migrationLabel(*running) + " of the store failed: "
                         : std::string("migrating the store failed: ")) +
                    DatabaseError::reason(e));
  }
  report.toVersion = latest;
  return report;
}

Poco::Data::Session Store::session() {
  return pool_->acquire();
}

std::optional<std::string> Store::meta(const std::string& key) {
  if (key.empty() || key.size() > kMetaKeyMax)
    throw Error(ErrorCode::InvalidArgument,
                "meta key \"" + key + "\" must be 1 to " + std::to_string(kMetaKeyMax) + " bytes");
  Poco::Data::Session s = session();
  try {
    std::string k = key;
    std::string value;
    Poco::Data::Statement select(s);
    select << "SELECT meta_value FROM cluster_meta WHERE meta_key = ?", use(k), into(value);
    if (select.execute() == 0) return std::nullopt;
    return value;
  } catch (const Poco::Exception& e) {
    throw Error(ErrorCode::Internal,
                "reading meta \"" + key + "\" from the store failed: " + DatabaseError::reason(e));
  }
}

void Store::setMeta(const std::string& key, const std::string& value) {
  if (key.empty() || key.size() > kMetaKeyMax)
    throw Error(ErrorCode::InvalidArgument,
                "meta key \"" + key + "\" must be 1 to " + std::to_string(kMetaKeyMax) + " bytes");
  if (value.size() > kMetaValueMax)
    throw Error(ErrorCode::InvalidArgument,
                "meta value for \"" + key + "\" is " + std::to_string(value.size()) +
                    " bytes; the limit is " + std::to_string(kMetaValueMax));
  if (!isValidUtf8(value))
    throw Error(ErrorCode::InvalidArgument, "meta value for \"" + key + "\" is not valid UTF-8");
  Poco::Data::Session s = session();
  try {
    std::string k = key;
    std::string v = value;
    if (backend() == Backend::Sqlite) {
      s << "INSERT INTO cluster_meta (meta_key, meta_value) VALUES (?, ?)"
           " ON CONFLICT (meta_key) DO UPDATE SET meta_value = excluded.meta_value",
          use(k), use(v), now;
    } else {
      s << "INSERT INTO cluster_meta (meta_key, meta_value) VALUES (?, ?)"
           " ON DUPLICATE KEY UPDATE meta_value = VALUES(meta_value)",
          use(k), use(v), now;
    }
  } catch (const Poco::Exception& e) {
    throw Error(ErrorCode::Internal,
                "writing meta \"" + key + "\" to the store failed: " + DatabaseError::reason(e));
  }
}

}  // namespace shoal::store
