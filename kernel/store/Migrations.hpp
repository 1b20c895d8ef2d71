#pragma once
// The numbered schema migrations, in order. Each gives the statements for both backends; the
// two describe the same logical schema. A released migration is never edited: a change to the
// schema is a new migration at the end of the list.
#include <string>
#include <vector>

namespace shoal::store {

struct Migration {
  int version;
  std::string name;
  std::vector<std::string> sqlite;
  std::vector<std::string> mysql;
};

// Ordered by version, starting at 1, without gaps.
const std::vector<Migration>& migrations();

// The schema_migrations table itself, created before anything else (not a migration).
const std::string& schemaMigrationsTableSqlite();
const std::string& schemaMigrationsTableMysql();

}  // namespace shoal::store
