#include "store/Transaction.hpp"

#include "common/Error.hpp"
#include "store/DatabaseError.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::store {

Transaction::Transaction(Poco::Data::Session session, Backend backend)
    : session_(std::move(session)), backend_(backend) {
  try {
    if (backend_ == Backend::Sqlite) {
      session_ << "BEGIN IMMEDIATE", now;
    } else {
      session_ << "SET TRANSACTION ISOLATION LEVEL READ COMMITTED", now;
      session_ << "START TRANSACTION", now;
    }
  } catch (const Poco::Exception& e) {
    const bool busy = DatabaseError::classify(e) == DatabaseError::Kind::Contention;
    throw Error(ErrorCode::Internal,
                std::string(busy ? "the store stayed busy; cannot begin a transaction: "
                                 : "cannot begin a store transaction: ") +
                    DatabaseError::reason(e));
  }
  active_ = true;
}

Transaction::~Transaction() {
  rollback();
}

void Transaction::commit() {
  if (!active_) throw Error(ErrorCode::Failed, "the transaction is already over");
  try {
    session_ << "COMMIT", now;
    active_ = false;
  } catch (const Poco::Exception& e) {
    rollback();
    if (DatabaseError::classify(e) == DatabaseError::Kind::Contention)
      throw Error(ErrorCode::Conflict,
                  "the transaction lost against a concurrent one and was rolled back: " +
                      DatabaseError::reason(e));
    throw Error(ErrorCode::Internal,
                "committing a store transaction failed: " + DatabaseError::reason(e));
  }
}

void Transaction::rollback() noexcept {
  if (!active_) return;
  active_ = false;
  try {
    session_ << "ROLLBACK", now;
  } catch (...) {
    // The connection is gone or the transaction already ended: nothing is left to undo.
  }
}

}  // namespace shoal::store
