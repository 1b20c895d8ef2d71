#pragma once
// A node's journal of applied deliveries: an append-only file, written before the result is
// reported and synced before the next pull, so a redelivery (lost acknowledgement, manager
// restart, lease expiry) is answered from the journal instead of applying the command a
// second time.
//
// Each result stays in the journal until the manager has taken it: unreported() lists them,
// so an agent that restarts, or reconnects to a restarted manager, reports them again before
// anything else. acknowledge() forgets results the manager took (an acknowledgement record is
// appended, unsynced: losing it in a power cut only means reporting a taken result again,
// which the manager answers as a repeat). After `compactAfter` acknowledgements the file is
// rewritten with only what is still held (a new file synced, then renamed over the old), so
// it does not grow without bound on a node that runs for years.
//
// Records: "<delivery id> <0|1> <base64 output>;" and "<delivery id> ack;", one a line; the
// ';' marks a complete record.
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace shoal::agent {

struct JournalEntry {
  bool succeeded = false;
  std::string output;
};

class Journal {
 public:
  // Opens (creating) the file and reads every complete record; a torn last record (a crash
  // mid-write) is cut off, without writing anything (the disk may be full).
  explicit Journal(std::filesystem::path file, std::size_t compactAfter = 1000);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  std::optional<JournalEntry> find(std::int64_t deliveryId) const;
  // Appends a record; durable after the next sync(). Throws Error(Failed) "cannot record the
  // result in the journal FILE: REASON" (REASON as strerror says it, "No space left on
  // device") when the write fails; then neither the file nor find() has the record (a partly
  // written record is cut off again).
  void record(std::int64_t deliveryId, const JournalEntry& entry);
  // Throws Error(Failed) "cannot sync the journal FILE: REASON".
  void sync();
  // The manager took these results: forget them; compacts the file every `compactAfter`.
  // Never throws for a write that fails (the results are forgotten in memory all the same).
  void acknowledge(const std::vector<std::int64_t>& deliveryIds);
  // Results the manager has not taken, by delivery id.
  std::vector<std::pair<std::int64_t, JournalEntry>> unreported() const;
  std::size_t size() const;
  // Result records in the file now (complete lines, acknowledgements not counted), for tests.
  std::size_t recordsInFile() const;
  const std::filesystem::path& file() const { return file_; }

 private:
  void append(const std::string& line);  // with mutex_ held; throws Error(Failed) with strerror
  void compact();                        // with mutex_ held

  std::filesystem::path file_;
  std::size_t compactAfter_;
  std::size_t acknowledgedSinceCompaction_ = 0;
  int fd_ = -1;
  mutable std::mutex mutex_;
  std::map<std::int64_t, JournalEntry> entries_;
};

}  // namespace shoal::agent
