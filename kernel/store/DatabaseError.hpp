#pragma once
// Sorts the exceptions of the Poco::Data drivers into the few cases the store acts on.
#include <string>

#include <Poco/Exception.h>

namespace shoal::store {

class DatabaseError {
 public:
  enum class Kind {
    DuplicateKey,  // a unique key already holds the value (MySQL 1062, SQLite UNIQUE)
    Contention,    // a lock could not be had: deadlock, lock wait timeout, SQLITE_BUSY/LOCKED
    Other
  };

  static Kind classify(const Poco::Exception& e);
  // The MySQL error number in the exception (0 when there is none).
  static int mysqlErrorNumber(const Poco::Exception& e);
  // The driver's text without Poco's framing, on one line.
  static std::string reason(const Poco::Exception& e);
};

}  // namespace shoal::store
