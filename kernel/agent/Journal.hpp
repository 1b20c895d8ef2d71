#pragma once
// A node's journal of applied deliveries: an append-only file, synced before the result is
// acknowledged, so a redelivery (lost acknowledgement, manager restart, lease expiry) is
// answered from the journal instead of applying the command a second time.
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace shoal::agent {

struct JournalEntry {
  bool succeeded = false;
  std::string output;
};

class Journal {
 public:
  // Opens (creating) the file and reads every complete record; a torn last record (a crash
  // mid-write) is ignored.
  explicit Journal(std::filesystem::path file);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  std::optional<JournalEntry> find(std::int64_t deliveryId) const;
  // Appends a record; durable after the next sync().
  void record(std::int64_t deliveryId, const JournalEntry& entry);
  void sync();
  std::size_t size() const;

 private:
  std::filesystem::path file_;
  int fd_ = -1;
  mutable std::mutex mutex_;
  std::unordered_map<std::int64_t, JournalEntry> entries_;
};

}  // namespace shoal::agent
