#pragma once
// A node's journal of applied deliveries: an append-only file, synced before the result is
// reported, so a redelivery (lost acknowledgement, manager restart, lease expiry) is answered
// from the journal instead of applying the command a second time.
//
// Once the manager has taken a result, it never offers that delivery again (a retry is only
// for a failed one, and a failed attempt is applied again anyway): acknowledge() forgets it,
// and after `compactAfter` acknowledgements the file is rewritten with only what is still
// unacknowledged (a new file synced, then renamed over the old), so it does not grow without
// bound on a node that runs for years.
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace shoal::agent {

struct JournalEntry {
  bool succeeded = false;
  std::string output;
};

class Journal {
 public:
  // Opens (creating) the file and reads every complete record; a torn last record (a crash
  // mid-write) is ignored.
  explicit Journal(std::filesystem::path file, std::size_t compactAfter = 1000);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  std::optional<JournalEntry> find(std::int64_t deliveryId) const;
  // Appends a record; durable after the next sync().
  void record(std::int64_t deliveryId, const JournalEntry& entry);
  void sync();
  // The manager took these results: forget them; compacts the file every `compactAfter`.
  void acknowledge(const std::vector<std::int64_t>& deliveryIds);
  std::size_t size() const;
  // Records in the file now (complete lines), for tests and the log.
  std::size_t recordsInFile() const;

 private:
  void compact();  // with mutex_ held

  std::filesystem::path file_;
  std::size_t compactAfter_;
  std::size_t acknowledgedSinceCompaction_ = 0;
  int fd_ = -1;
  mutable std::mutex mutex_;
  std::unordered_map<std::int64_t, JournalEntry> entries_;
};

}  // namespace shoal::agent
