#pragma once
// A database transaction on one pooled session, begun on construction.
//   SQLite: BEGIN IMMEDIATE, so the write lock is taken up front (waiting up to the busy
//           timeout); transactions are serialised and a read followed by a write never fails
//           half-way for lack of the lock. Within one process they queue on a mutex first:
//           SQLite's own busy handler waits by sleeping in growing steps (up to 100 ms), which
//           made contended commits slow, while a mutex hands the lock over at once.
//   MySQL:  READ COMMITTED, START TRANSACTION; writers lock rows with SELECT ... FOR UPDATE.
// Poco's Session::begin()/commit() are not used: with Poco 1.11 on MySQL they leave autocommit
// switched off after the commit.
#include <Poco/Data/Session.h>

#include <mutex>

#include "store/Store.hpp"

namespace shoal::store {

class Transaction {
 public:
  // Throws Error(Internal) when the transaction cannot be begun.
  Transaction(Poco::Data::Session session, Backend backend);
  ~Transaction();  // rolls back when neither commit() nor rollback() ran
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Poco::Data::Session& session() { return session_; }
  Backend backend() const { return backend_; }
  bool active() const { return active_; }

  // Throws Error(Conflict) when a concurrent transaction made the commit fail, Error(Internal)
  // for other failures; the transaction is over either way.
  void commit();
  // Idempotent; never throws (a failed ROLLBACK leaves the server to discard the transaction).
  void rollback() noexcept;

 private:
  std::unique_lock<std::timed_mutex> writerTurn_;  // SQLite only
  Poco::Data::Session session_;
  Backend backend_;
  bool active_ = false;
};

}  // namespace shoal::store
