#include "store/StoreSessionPool.hpp"

#include <chrono>
#include <optional>
#include <thread>

#include <Poco/Data/DataException.h>
#include <Poco/Data/SessionPool.h>

#include "common/Error.hpp"
#include "store/DatabaseError.hpp"
#include "store/MySqlClient.hpp"

using namespace Poco::Data::Keywords;

namespace shoal::store {

class StoreSessionPool::Pool : public Poco::Data::SessionPool {
 public:
  explicit Pool(const ConnectionSetting& setting)
      : Poco::Data::SessionPool(setting.pocoConnector(), setting.pocoConnectionString(), 1,
                                kMaxSessions, kIdleSeconds),
        backend_(setting.backend()) {}

 protected:
  void customizeSession(Poco::Data::Session& session) override {
    if (backend_ != Backend::Sqlite) return;
    session << "PRAGMA busy_timeout = " + std::to_string(kSqliteBusyTimeoutMs), now;
    session << "PRAGMA foreign_keys = ON", now;
  }

 private:
  Backend backend_;
};

StoreSessionPool::StoreSessionPool(const ConnectionSetting& setting)
    : setting_(setting), pool_(new Pool(setting_)) {}

StoreSessionPool::~StoreSessionPool() {
  try {
    pool_->shutdown();
  } catch (...) {
    // Closing connections that are already gone.
  }
}

Poco::Data::Session StoreSessionPool::acquire() {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    std::optional<Poco::Data::Session> session;
    try {
      session.emplace(pool_->get());
    } catch (const Poco::Data::SessionPoolExhaustedException&) {
      if (Clock::now() >= deadline)
        throw Error(ErrorCode::Internal, "all " + std::to_string(kMaxSessions) +
                                             " sessions to the store (" + setting_.describe() +
                                             ") stayed in use for 30 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      continue;
    } catch (const Poco::Exception& e) {
      throw Error(ErrorCode::Internal, "cannot reach the store (" + setting_.describe() +
                                           "): " + setting_.scrub(DatabaseError::reason(e)));
    }
    if (setting_.backend() == Backend::MySql) {
      if (std::string why = MySqlClient::ensureConnected(*session); !why.empty())
        throw Error(ErrorCode::Internal, "lost the connection to the store (" +
                                             setting_.describe() +
                                             ") and cannot reconnect: " + setting_.scrub(why));
    }
    return std::move(*session);
  }
}

}  // namespace shoal::store
