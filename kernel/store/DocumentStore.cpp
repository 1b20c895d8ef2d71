#include "store/DocumentStore.hpp"

#include <vector>

#include <Poco/Data/Statement.h>

#include "common/Error.hpp"
#include "common/Text.hpp"
#include "store/DatabaseError.hpp"
#include "store/JsonValidator.hpp"
#include "store/Timestamp.hpp"
#include "store/Transaction.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::store {

namespace {

constexpr std::size_t kPluginMax = 64;
constexpr std::size_t kCollectionMax = 128;
constexpr std::size_t kKeyMax = 255;
// Bodies are read in pieces: list() pages carry at most the first piece of each document, and
// on MySQL Poco 1.11 cannot fetch a LONGTEXT column directly (it sizes its buffer from the
// column's declared length), so bodies are fetched as byte substrings of bounded length.
constexpr std::size_t kFirstPiece = 64 * 1024;
constexpr std::size_t kPiece = 1024 * 1024;
constexpr std::size_t kPageRows = 32;

const std::string kWherePk = " WHERE plugin = ? AND collection = ? AND doc_key = ?";


void validatePlugin(std::string_view plugin) {
  if (plugin.empty() || plugin.size() > kPluginMax || plugin.find('\0') != std::string_view::npos)
    throw Error(ErrorCode::InvalidArgument,
                "plugin name \"" + shownValue(plugin) + "\" must be 1 to 64 bytes without NUL");
}

void validateCollection(std::string_view collection) {
  bool ok = !collection.empty() && collection.size() <= kCollectionMax;
  for (char c : collection) {
    if (!ok) break;
    ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-';
  }
  if (!ok)
    throw Error(ErrorCode::InvalidArgument,
                "collection \"" + shownValue(collection) +
                    "\" must be 1 to 128 characters of A-Z a-z 0-9 _ . : -");
}

void validateKey(std::string_view key, const char* field = "key") {
  if (key.empty() || key.size() > kKeyMax || key.find('\0') != std::string_view::npos)
    throw Error(ErrorCode::InvalidArgument,
                std::string(field) + " \"" + shownValue(key) + "\" must be 1 to 255 bytes without NUL");
}

// The smallest string above every string that starts with prefix; none when prefix is empty
// or all 0xFF bytes.
std::optional<std::string> successor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xFF) prefix.pop_back();
  if (prefix.empty()) return std::nullopt;
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

std::string bodyColumns(Backend backend) {
  // Byte length and the first piece of the body, as bytes.
  return backend == Backend::Sqlite ? "length(CAST(body AS BLOB)), substr(CAST(body AS BLOB), 1, " +
                                          std::to_string(kFirstPiece) + ")"
                                    : "LENGTH(body), SUBSTRING(CAST(body AS BINARY), 1, " +
                                          std::to_string(kFirstPiece) + ")";
}

}  // namespace

DocumentTransaction::DocumentTransaction(std::unique_ptr<Transaction> tx, std::string plugin)
    : tx_(std::move(tx)), plugin_(std::move(plugin)) {}

DocumentTransaction::~DocumentTransaction() {
  rollback();
}

void DocumentTransaction::requireOpen() const {
  if (state_ == State::Committed)
    throw Error(ErrorCode::Failed, "the document transaction is already committed");
  if (state_ == State::RolledBack)
    throw Error(ErrorCode::Failed, "the document transaction is already rolled back");
}

void DocumentTransaction::fail(const std::string& action, const std::exception& e) {
  // Whatever the database refused, this transaction is over: a deadlock has rolled it back
  // already, and after a lost connection nothing of it is left.
  const auto* poco = dynamic_cast<const Poco::Exception*>(&e);
  const std::string reason = poco ? DatabaseError::reason(*poco) : std::string(e.what());
  const bool contention = poco && DatabaseError::classify(*poco) == DatabaseError::Kind::Contention;
  tx_->rollback();
  state_ = State::RolledBack;
  if (poco && DatabaseError::mysqlErrorNumber(*poco) == 1153)  // ER_NET_PACKET_TOO_LARGE
    throw Error(ErrorCode::Internal,
                action +
                    " failed: the MySQL server's max_allowed_packet is smaller than the "
                    "document; set it to at least 32M (documents may have 16 MiB): " +
                    reason);
  if (contention)
    throw Error(ErrorCode::Conflict, action +
                                         " lost a lock against a concurrent transaction, "
                                         "which was rolled back: " +
                                         reason);
  throw Error(ErrorCode::Internal, action + " failed: " + reason);
}

std::optional<Document> DocumentTransaction::read(const std::string& collection,
                                                  const std::string& key, bool lockShared) {
  Poco::Data::Session& s = tx_->session();
  const Backend backend = tx_->backend();
  std::string plugin = plugin_, c = collection, k = key;
  std::int64_t revision = 0;
  if (backend == Backend::Sqlite) {
    // Transactions are serialised: one statement reads the whole body.
    std::string body;
    Poco::Data::Statement select(s);
    select << "SELECT revision, body FROM plugin_documents" + kWherePk, use(plugin), use(c), use(k),
        into(revision), into(body);
    if (select.execute() == 0) return std::nullopt;
    return Document{key, std::move(body), revision};
  }
  std::int64_t length = 0;
  std::string first;
  Poco::Data::Statement select(s);
  select << "SELECT revision, " + bodyColumns(backend) + " FROM plugin_documents" + kWherePk +
                (lockShared ? " LOCK IN SHARE MODE" : ""),
      use(plugin), use(c), use(k), into(revision), into(length), into(first);
  if (select.execute() == 0) return std::nullopt;
  if (static_cast<std::size_t>(length) <= first.size())
    return Document{key, std::move(first), revision};
  // A long body takes several statements; a shared row lock keeps it from changing in between.
  if (!lockShared) return read(collection, key, true);
  return Document{
      key, readRest(collection, key, std::move(first), static_cast<std::size_t>(length)), revision};
}

std::string DocumentTransaction::readRest(const std::string& collection, const std::string& key,
                                          std::string first, std::size_t length) {
  Poco::Data::Session& s = tx_->session();
  std::string plugin = plugin_, c = collection, k = key;
  std::string body = std::move(first);
  body.reserve(length);
  while (body.size() < length) {
    std::int64_t from = static_cast<std::int64_t>(body.size()) + 1;  // SQL counts from 1
    std::string piece;
    Poco::Data::Statement select(s);
    select << "SELECT SUBSTRING(CAST(body AS BINARY), ?, " + std::to_string(kPiece) +
                  ") FROM plugin_documents" + kWherePk,
        use(from), use(plugin), use(c), use(k), into(piece);
    if (select.execute() == 0 || piece.empty())
      throw Error(ErrorCode::Internal, "document \"" + shownValue(collection) + "/" + shownValue(key) +
                                           "\" changed while it was being read");
    body += piece;
  }
  return body;
}

std::optional<Document> DocumentTransaction::get(std::string_view collection,
                                                 std::string_view key) {
  requireOpen();
  validateCollection(collection);
  validateKey(key);
  try {
    return read(std::string(collection), std::string(key), false);
  } catch (const Poco::Exception& e) {
    fail("reading document \"" + shownValue(collection) + "/" + shownValue(key) + "\"", e);
  }
}

std::int64_t DocumentTransaction::put(std::string_view collection, std::string_view key,
                                      std::string_view json, std::int64_t expectedRevision) {
  requireOpen();
  validateCollection(collection);
  validateKey(key);
  if (expectedRevision < -1)
    throw Error(ErrorCode::InvalidArgument,
                "expected revision " + std::to_string(expectedRevision) +
                    " is invalid: use -1 (any), 0 (must not exist) or a stored revision");
  if (json.size() > kMaxDocumentBytes)
    throw Error(ErrorCode::InvalidArgument, "document \"" + shownValue(collection) + "/" + shownValue(key) +
                                                "\" is " + std::to_string(json.size()) +
                                                " bytes; the limit is " +
                                                std::to_string(kMaxDocumentBytes));
  JsonValidator::check(json);

  const std::string what = "document \"" + shownValue(collection) + "/" + shownValue(key) +
                           "\" of plugin \"" + shownValue(plugin_) + "\"";
  auto conflict = [&](std::optional<std::int64_t> stored) -> Error {
    return Error(ErrorCode::Conflict,
                 "conflict on " + what + ": expected revision " + std::to_string(expectedRevision) +
                     ", stored revision " +
                     (stored ? std::to_string(*stored) : "0 (the document does not exist)"));
  };

  Poco::Data::Session& s = tx_->session();
  const Backend backend = tx_->backend();
  std::string plugin = plugin_, c(collection), k(key), body(json);
  // MySQL: FOR UPDATE reads the latest committed revision and locks the row until the end of
  // the transaction, so the check and the write cannot be separated by another writer.
  const std::string selectRevision = "SELECT revision FROM plugin_documents" + kWherePk +
                                     (backend == Backend::MySql ? " FOR UPDATE" : "");
  auto storedRevision = [&]() -> std::optional<std::int64_t> {
    std::int64_t revision = 0;
    Poco::Data::Statement select(s);
    select << selectRevision, use(plugin), use(c), use(k), into(revision);
    if (select.execute() == 0) return std::nullopt;
    return revision;
  };

  try {
    for (int attempt = 0;; ++attempt) {
      const std::optional<std::int64_t> stored = storedRevision();
      if (expectedRevision == 0 && stored) throw conflict(stored);
      if (expectedRevision > 0 && stored != expectedRevision) throw conflict(stored);
      std::string updatedAt = utcTimestampNow();
      if (stored) {
        std::int64_t next = *stored + 1;
        s << "UPDATE plugin_documents SET body = ?, revision = ?, updated_at = ?" + kWherePk,
            use(body), use(next), use(updatedAt), use(plugin), use(c), use(k), now;
        return next;
      }
      try {
        std::int64_t first = 1;
        s << "INSERT INTO plugin_documents (plugin, collection, doc_key, body, revision, "
             "updated_at)"
             " VALUES (?, ?, ?, ?, ?, ?)",
            use(plugin), use(c), use(k), use(body), use(first), use(updatedAt), now;
        return first;
      } catch (const Poco::Exception& e) {
        // Another transaction created the document after the check (MySQL only; the
        // statement alone was undone). An unconditional put then updates it.
        if (DatabaseError::classify(e) != DatabaseError::Kind::DuplicateKey) throw;
        if (expectedRevision == -1 && attempt == 0) continue;
        throw conflict(storedRevision());
      }
    }
  } catch (const Poco::Exception& e) {
    fail("writing " + what, e);
  }
}

bool DocumentTransaction::remove(std::string_view collection, std::string_view key) {
  requireOpen();
  validateCollection(collection);
  validateKey(key);
  std::string plugin = plugin_, c(collection), k(key);
  try {
    Poco::Data::Statement del(tx_->session());
    del << "DELETE FROM plugin_documents" + kWherePk, use(plugin), use(c), use(k);
    return del.execute() > 0;
  } catch (const Poco::Exception& e) {
    fail("removing document \"" + shownValue(collection) + "/" + shownValue(key) + "\"", e);
  }
}

void DocumentTransaction::list(std::string_view collection, std::string_view keyPrefix,
                               const std::function<bool(const Document&)>& visit) {
  requireOpen();
  validateCollection(collection);
  if (!keyPrefix.empty()) validateKey(keyPrefix, "key prefix");

  Poco::Data::Session& s = tx_->session();
  const Backend backend = tx_->backend();
  std::string plugin = plugin_, c(collection);
  const std::string prefix(keyPrefix);
  // A key range instead of LIKE: no wildcards to escape, byte order on both backends, and it
  // uses the primary key index.
  std::optional<std::string> upper = successor(prefix);
  std::string lower = prefix;
  bool afterLower = false;  // the first page includes lower itself, later pages start after it

  const std::string action = "listing collection \"" + shownValue(collection) + "\"";
  for (;;) {
    std::vector<std::string> keys, firsts;
    std::vector<std::int64_t> revisions, lengths;
    try {
      Poco::Data::Statement select(s);
      select << "SELECT doc_key, revision, " + bodyColumns(backend) +
                    " FROM plugin_documents WHERE plugin = ? AND collection = ? AND doc_key " +
                    (afterLower ? ">" : ">=") + " ?" + (upper ? " AND doc_key < ?" : "") +
                    " ORDER BY doc_key LIMIT " + std::to_string(kPageRows),
          use(plugin), use(c), use(lower);
      if (upper) select, use(*upper);
      select, into(keys), into(revisions), into(lengths), into(firsts);
      select.execute();
    } catch (const Poco::Exception& e) {
      fail(action, e);
    }

    // The visitor runs outside the try blocks: its exceptions are its own.
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (keys[i].compare(0, prefix.size(), prefix) != 0) return;
      Document doc{keys[i], std::move(firsts[i]), revisions[i]};
      if (static_cast<std::size_t>(lengths[i]) > doc.json.size()) {
        // A long body is read on its own; on MySQL it may have gone meanwhile.
        std::optional<Document> full;
        try {
          full = read(c, keys[i], backend == Backend::MySql);
        } catch (const Poco::Exception& e) {
          fail(action, e);
        }
        if (!full) continue;
        doc = std::move(*full);
      }
      if (!visit(doc)) return;
      requireOpen();  // the visitor may have ended the transaction
    }
    if (keys.size() < kPageRows) return;
    lower = keys.back();
    afterLower = true;
  }
}

void DocumentTransaction::commit() {
  requireOpen();
  try {
    tx_->commit();
  } catch (...) {
    state_ = State::RolledBack;
    throw;
  }
  state_ = State::Committed;
}

void DocumentTransaction::rollback() {
  if (state_ != State::Open) return;
  tx_->rollback();
  state_ = State::RolledBack;
}

DocumentStore::DocumentStore(Store& store) : store_(store) {}

std::unique_ptr<DocumentTransaction> DocumentStore::begin(const std::string& plugin) {
  validatePlugin(plugin);
  auto tx = std::make_unique<Transaction>(store_.session(), store_.backend());
  return std::unique_ptr<DocumentTransaction>(new DocumentTransaction(std::move(tx), plugin));
}

}  // namespace shoal::store
