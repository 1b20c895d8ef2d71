#pragma once
// The plugin document store: JSON documents by (collection, key), each with a revision, in the
// namespace of one plugin. A plugin sees only its own documents.
//
// Revisions: a new document gets revision 1 and every put adds 1. remove() deletes the
// document; a later put creates it afresh at revision 1.
// Optimistic concurrency: put() with an expected revision succeeds only when the stored
// revision still is that one, also against other transactions and other processes; of several
// writers expecting the same revision exactly one wins, the others get Error(Conflict).
//
// Limits (Error(InvalidArgument), naming the field and the value):
//   plugin      1..64 bytes, no NUL
//   collection  1..128 characters of [A-Za-z0-9_.:-]
//   key         1..255 bytes, no NUL; compared and ordered as bytes (case-sensitive)
//   document    a JSON value (Poco::JSON::Parser; nesting up to 128 levels), up to 16 MiB
// On MySQL the server's max_allowed_packet must exceed the largest document (32M for 16 MiB).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "store/Store.hpp"

namespace shoal::store {

class Transaction;

struct Document {
  std::string key;
  std::string json;
  std::int64_t revision = 0;
};

// One transaction on one pooled session; it belongs to one thread. The Store must outlive it.
// SQLite serialises transactions (begin() waits for the write lock); MySQL runs them
// concurrently at READ COMMITTED, put() locking the row it writes.
class DocumentTransaction {
 public:
  static constexpr std::size_t kMaxDocumentBytes = 16u * 1024u * 1024u;

  ~DocumentTransaction();  // rolls back unless commit() or rollback() ran
  DocumentTransaction(const DocumentTransaction&) = delete;
  DocumentTransaction& operator=(const DocumentTransaction&) = delete;

  std::optional<Document> get(std::string_view collection, std::string_view key);

  // json must parse as a JSON value, else Error(InvalidArgument, "document is not valid JSON:
  // ..."), and nothing is written.
  // expectedRevision: -1 unconditional; 0 the document must not exist; n > 0 the stored
  // revision must be n. A mismatch throws Error(Conflict) naming both revisions and leaves the
  // transaction open. Returns the new revision (1 for a new document, +1 per put).
  std::int64_t put(std::string_view collection, std::string_view key, std::string_view json,
                   std::int64_t expectedRevision = -1);

  bool remove(std::string_view collection, std::string_view key);  // false when absent

  // The documents of a collection whose key starts with keyPrefix (empty: all), in byte order
  // of key. keyPrefix is literal ('%' and '_' are ordinary characters). visit returns false to
  // stop. Documents are read in pages, so visit may use this transaction.
  void list(std::string_view collection, std::string_view keyPrefix,
            const std::function<bool(const Document&)>& visit);

  // After commit() the transaction is finished and every further call but rollback() throws
  // Error(Failed). A commit that loses against a concurrent transaction throws Error(Conflict).
  void commit();
  // Idempotent, and a no-op after commit().
  void rollback();

  // When the database itself gives up on a lock (deadlock, lock wait timeout, SQLite busy
  // timeout) the call throws Error(Conflict) and the transaction is rolled back and finished.

 private:
  friend class DocumentStore;
  DocumentTransaction(std::unique_ptr<Transaction> tx, std::string plugin);

  void requireOpen() const;
  [[noreturn]] void fail(const std::string& action, const std::exception& e);
  std::optional<Document> read(const std::string& collection, const std::string& key,
                               bool lockShared);
  std::string readRest(const std::string& collection, const std::string& key, std::string first,
                       std::size_t length);

  std::unique_ptr<Transaction> tx_;
  std::string plugin_;
  enum class State { Open, Committed, RolledBack } state_ = State::Open;
};

class DocumentStore {
 public:
  explicit DocumentStore(Store& store);

  // plugin: the plugin's name, its namespace. Throws Error(InvalidArgument) for a bad name and
  // Error(Internal) when the store is unreachable.
  std::unique_ptr<DocumentTransaction> begin(const std::string& plugin);

 private:
  Store& store_;
};

}  // namespace shoal::store
