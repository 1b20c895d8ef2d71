#include "agent/StatsForwarder.hpp"

#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>

#include "agent/ManagerClient.hpp"
#include "common/Error.hpp"

namespace shoal::agent {

StatsForwarder::StatsForwarder(std::unique_ptr<ManagerClient> client, StatsForwarderSettings settings)
    : client_(std::move(client)), settings_(settings) {}

StatsForwarder::~StatsForwarder() { stop(); }

void StatsForwarder::start() {
  std::lock_guard lock(mutex_);
  if (running_) return;
  running_ = true;
  worker_ = std::thread([this] { run(); });
}

void StatsForwarder::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!running_) return;
    running_ = false;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void StatsForwarder::submit(std::vector<host::StatsSample> samples) {
  std::lock_guard lock(mutex_);
  for (auto& s : samples) queue_.push_back(std::move(s));
  if (queue_.size() > settings_.maxQueued) {
    const auto dropped = queue_.size() - settings_.maxQueued;
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(dropped));
    if (!overflowWarned_) {
      overflowWarned_ = true;
      Poco::Logger::get("shoald.node").warning(
          "statistics: the manager has not taken samples for a while; dropping the oldest (" +
          std::to_string(settings_.maxQueued) + " kept)");
    }
  }
}

std::size_t StatsForwarder::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

bool StatsForwarder::flush() {
  for (;;) {
    std::vector<host::StatsSample> batch;
    {
      std::lock_guard lock(mutex_);
      const auto n = std::min(queue_.size(), settings_.maxBatch);
      if (n == 0) return true;
      batch.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    }
    Poco::JSON::Object::Ptr body = new Poco::JSON::Object;
    body->set("samples", Poco::JSON::Parser().parse(host::statsSamplesToJson(batch)));
    try {
      auto reply = client_->call("POST", "/v1/node/stats", body, std::chrono::seconds(10));
      if (reply.status >= 500) return false;  // try again later
      if (reply.status != 200)
        // Refused as malformed: sending the same batch again would be refused again.
        Poco::Logger::get("shoald.node").warning("statistics: the manager refused " + std::to_string(batch.size()) +
                                                 " sample(s): " + reply.errorMessage());
    } catch (const Error&) {
      return false;
    }
    std::lock_guard lock(mutex_);
    // submit() appends and, on overflow, trims the front: what was sent is the front unless
    // the queue overflowed meanwhile, and then the samples lost are the overflow's anyway.
    const auto sent = std::min(batch.size(), queue_.size());
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(sent));
    overflowWarned_ = false;
  }
}

void StatsForwarder::run() {
  std::unique_lock lock(mutex_);
  while (running_) {
    wake_.wait_for(lock, settings_.flushEvery, [this] { return !running_; });
    lock.unlock();
    flush();
    lock.lock();
  }
}

}  // namespace shoal::agent
