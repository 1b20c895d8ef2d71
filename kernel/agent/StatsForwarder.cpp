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
  if (refused_) return;
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

std::size_t StatsForwarder::attempts() const {
  std::lock_guard lock(mutex_);
  return attempts_;
}

bool StatsForwarder::refused() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

StatsForwarder::Outcome StatsForwarder::flush() {
  for (;;) {
    std::vector<host::StatsSample> batch;
    {
      std::lock_guard lock(mutex_);
      const auto n = std::min(queue_.size(), settings_.maxBatch);
      if (n == 0 || refused_) return Outcome::Sent;
      batch.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      ++attempts_;
    }
    Poco::JSON::Object::Ptr body = new Poco::JSON::Object;
    body->set("samples", Poco::JSON::Parser().parse(host::statsSamplesToJson(batch)));
    try {
      auto reply = client_->call("POST", "/v1/node/stats", body, std::chrono::seconds(10));
      if (reply.status >= 500) return Outcome::Retry;
      if (reply.status == 401) {
        Poco::Logger::get("shoald.node").warning(
            "statistics: the manager refused this node's credential (was the node removed?): " +
            reply.errorMessage() + "; no more samples are sent");
        std::lock_guard lock(mutex_);
        refused_ = true;
        queue_.clear();
        return Outcome::Refused;
      }
      if (reply.status != 200)
        // Refused as malformed: sending the same batch again would be refused again.
        Poco::Logger::get("shoald.node").warning("statistics: the manager refused " + std::to_string(batch.size()) +
                                                 " sample(s): " + reply.errorMessage());
    } catch (const Error&) {
      return Outcome::Retry;
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
  auto wait = settings_.flushEvery;
  std::unique_lock lock(mutex_);
  while (running_) {
    wake_.wait_for(lock, wait, [this] { return !running_; });
    lock.unlock();
    const auto outcome = flush();
    lock.lock();
    if (outcome == Outcome::Refused) return;
    // Doubling while the manager cannot take a batch; the usual pace once it can.
    wait = outcome == Outcome::Retry ? std::min(wait * 2, std::max(settings_.maxBackoff, settings_.flushEvery))
                                     : settings_.flushEvery;
  }
}

}  // namespace shoal::agent
