#pragma once
// The store's pool of Poco::Data sessions, with what Poco 1.11's SessionPool lacks:
// waiting briefly when every session is in use (Poco throws at once), SQLite connection
// settings on every new session, and reconnecting MySQL sessions the server dropped while idle.
#include <memory>

#include <Poco/AutoPtr.h>
#include <Poco/Data/Session.h>

#include "store/ConnectionSetting.hpp"

namespace shoal::store {

class StoreSessionPool {
 public:
  static constexpr int kMaxSessions = 32;
  static constexpr int kIdleSeconds = 60;
  static constexpr int kSqliteBusyTimeoutMs = 15000;  // how long SQLite waits for a lock

  explicit StoreSessionPool(const ConnectionSetting& setting);
  ~StoreSessionPool();
  StoreSessionPool(const StoreSessionPool&) = delete;
  StoreSessionPool& operator=(const StoreSessionPool&) = delete;

  // A usable session. Throws Error(Internal) when the database cannot be reached or every
  // session stays in use for 30 seconds.
  Poco::Data::Session acquire();

 private:
  class Pool;
  ConnectionSetting setting_;
  Poco::AutoPtr<Pool> pool_;
};

}  // namespace shoal::store
