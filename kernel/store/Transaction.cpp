#include "store/Transaction.hpp"

#include <chrono>

#include "store/StoreSessionPool.hpp"

#include "common/Error.hpp"
#include "store/DatabaseError.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::store {

namespace {
// One writer at a time per process for SQLite (see Transaction.hpp).
std::timed_mutex& sqliteWriters() {
  static std::timed_mutex mutex;
  return mutex;
}
}  // namespace

Transaction::Transaction(Poco::Data::Session session, Backend backend)
    : session_(std::move(session)), backend_(backend) {
  if (backend_ == Backend::Sqlite) {
    writerTurn_ = std::unique_lock(sqliteWriters(), std::defer_lock);
    if (!writerTurn_.try_lock_for(std::chrono::milliseconds(StoreSessionPool::kSqliteBusyTimeoutMs)))
      throw Error(ErrorCode::Internal, "the store stayed busy; cannot begin a transaction: another transaction "
                                       "of this process held it for " +
                                           std::to_string(StoreSessionPool::kSqliteBusyTimeoutMs) + " ms");
  }
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
    if (writerTurn_.owns_lock()) writerTurn_.unlock();
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
  if (writerTurn_.owns_lock()) writerTurn_.unlock();
}

}  // namespace shoal::store
