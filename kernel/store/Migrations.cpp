#include "store/Migrations.hpp"

namespace shoal::store {

// Conventions shared by both backends:
// - Key columns compare as plain bytes, so keys are case-sensitive, trailing blanks count and
//   ORDER BY is byte order. SQLite's default BINARY collation does this for TEXT; on MySQL the
//   key columns are VARBINARY (utf8mb4_bin would ignore trailing blanks, being a PAD SPACE
//   collation, and would refuse bytes that are not UTF-8).
// - Key column lengths are in bytes and fit InnoDB's 3072-byte index limit
//   (64 + 128 + 255 = 447 bytes for the plugin_documents primary key).
// - Text bodies are utf8mb4 on MySQL (4-byte characters such as emoji round-trip).
// - Timestamps are UTC ISO-8601 text written by shoald ("2024-05-01T12:00:00.123Z"), so both
//   backends hold the same value and no server time zone is involved.
// - DDL uses IF NOT EXISTS: MySQL commits DDL implicitly, and a process that dies between a
//   migration's DDL and its schema_migrations row can then simply run it again.

const std::string& schemaMigrationsTableSqlite() {
  static const std::string sql =
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version INTEGER NOT NULL PRIMARY KEY,"
      " name VARCHAR(128) NOT NULL,"
      " applied_at VARCHAR(32) NOT NULL)";
  return sql;
}

const std::string& schemaMigrationsTableMysql() {
  static const std::string sql =
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version INT NOT NULL PRIMARY KEY,"
      " name VARCHAR(128) NOT NULL,"
      " applied_at VARCHAR(32) NOT NULL"
      ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
  return sql;
}

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> list = {
      {1,
       "plugin_documents",
       {"CREATE TABLE IF NOT EXISTS plugin_documents ("
        " plugin VARCHAR(64) NOT NULL,"
        " collection VARCHAR(128) NOT NULL,"
        " doc_key VARCHAR(255) NOT NULL,"
        " body TEXT NOT NULL,"
        " revision BIGINT NOT NULL,"
        " updated_at VARCHAR(32) NOT NULL,"
        " PRIMARY KEY (plugin, collection, doc_key)"
        ") WITHOUT ROWID"},
       {"CREATE TABLE IF NOT EXISTS plugin_documents ("
        " plugin VARBINARY(64) NOT NULL,"
        " collection VARBINARY(128) NOT NULL,"
        " doc_key VARBINARY(255) NOT NULL,"
        " body LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " revision BIGINT NOT NULL,"
        " updated_at VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " PRIMARY KEY (plugin, collection, doc_key)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}},
      {2,
       "cluster_meta",
       {"CREATE TABLE IF NOT EXISTS cluster_meta ("
        " meta_key VARCHAR(64) NOT NULL PRIMARY KEY,"
        " meta_value TEXT NOT NULL"
        ") WITHOUT ROWID"},
       {"CREATE TABLE IF NOT EXISTS cluster_meta ("
        " meta_key VARBINARY(64) NOT NULL PRIMARY KEY,"
        " meta_value TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}},
  };
  return list;
}

}  // namespace shoal::store
