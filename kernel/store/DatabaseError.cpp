#include "store/DatabaseError.hpp"

#include <cstdlib>

#include <Poco/Data/SQLite/SQLiteException.h>

namespace shoal::store {

namespace {

// Poco's MySQL exceptions carry no code; the number is in the text as
// "[mysql_stmt_errno]: 1062" (statements) or "[mysql_errno]: 2013" (connections).
int numberAfter(const std::string& text, const std::string& label) {
  const std::size_t pos = text.find(label);
  if (pos == std::string::npos) return 0;
  return std::atoi(text.c_str() + pos + label.size());
}

}  // namespace

int DatabaseError::mysqlErrorNumber(const Poco::Exception& e) {
  const std::string text = e.displayText();
  if (int n = numberAfter(text, "[mysql_stmt_errno]:"); n != 0) return n;
  if (int n = numberAfter(text, "[mysql_errno]:"); n != 0) return n;
  return e.code();
}

DatabaseError::Kind DatabaseError::classify(const Poco::Exception& e) {
  if (dynamic_cast<const Poco::Data::SQLite::DBLockedException*>(&e) != nullptr ||
      dynamic_cast<const Poco::Data::SQLite::TableLockedException*>(&e) != nullptr)
    return Kind::Contention;
  if (dynamic_cast<const Poco::Data::SQLite::ConstraintViolationException*>(&e) != nullptr)
    return e.displayText().find("UNIQUE") != std::string::npos ? Kind::DuplicateKey : Kind::Other;
  switch (mysqlErrorNumber(e)) {
    case 1062:  // ER_DUP_ENTRY
      return Kind::DuplicateKey;
    case 1205:  // ER_LOCK_WAIT_TIMEOUT
    case 1213:  // ER_LOCK_DEADLOCK
      return Kind::Contention;
    default:
      return Kind::Other;
  }
}

std::string DatabaseError::reason(const Poco::Exception& e) {
  std::string text = e.displayText();
  for (char& c : text)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return text;
}

}  // namespace shoal::store
