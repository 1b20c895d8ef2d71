#include "UserspaceDataplane.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "ProxySession.hpp"
#include "ServiceScheduler.hpp"

namespace shoal::lvs::userspace {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::chrono::seconds kRateWindow{2};

std::string endpointText(const std::string& address, std::uint16_t port) {
  const bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

}  // namespace

// One listening socket. Its acceptor is only touched under mutex_, so apply() can close it
// from its own thread while the accept loop runs on an event loop.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  using ContextPicker = std::function<asio::io_context&()>;

  // Opens, binds and listens at once; throws DataplaneError naming address:port and errno.
  Listener(asio::io_context& io, const std::string& address,
           std::uint16_t port, std::shared_ptr<ServiceScheduler> scheduler,
           const UserspaceSettings& settings, ContextPicker pickContext)
      : acceptor_(io),
        retryTimer_(io),
        scheduler_(std::move(scheduler)),
        settings_(settings),
        pickContext_(std::move(pickContext)) {
    const tcp::endpoint endpoint(asio::ip::make_address(address), port);
    boost::system::error_code error;
    acceptor_.open(endpoint.protocol(), error);
    if (!error) acceptor_.set_option(tcp::acceptor::reuse_address(true), error);
    if (!error) acceptor_.bind(endpoint, error);
    if (!error) acceptor_.listen(asio::socket_base::max_listen_connections, error);
    if (error)
      throw DataplaneError("cannot listen on " + endpointText(address, port) + ": " +
                           error.message());
  }

  void start() {
    std::lock_guard lock(mutex_);
    acceptNext();
  }

  // The port is free when this returns; connections already accepted carry on.
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    boost::system::error_code ignored;
    retryTimer_.cancel();
    acceptor_.close(ignored);
  }

 private:
  // Called with mutex_ held.
  void acceptNext() {
    if (closed_) return;
    auto self = shared_from_this();
    acceptor_.async_accept(
        [this, self](const boost::system::error_code& error, tcp::socket socket) {
          if (error == asio::error::operation_aborted) return;
          if (!error) serve(std::move(socket));
          std::lock_guard lock(mutex_);
          if (closed_) return;
          if (!error) {
            acceptNext();
            return;
          }
          // Out of descriptors or memory: pause rather than spin on the failing accept.
          retryTimer_.expires_after(std::chrono::milliseconds(100));
          retryTimer_.async_wait([this, self](const boost::system::error_code& e) {
            if (e) return;
            std::lock_guard lock(mutex_);
            acceptNext();
          });
        });
  }

  void serve(tcp::socket accepted) {
    boost::system::error_code error;
    const auto peer = accepted.remote_endpoint(error);
    if (error) return;  // already gone
    const auto local = accepted.local_endpoint(error);
    if (error) return;
    // The connection moves to the event loop it will live on. Accepting straight into that
    // loop would leave, at shutdown, one loop's queue holding a socket of another loop that
    // may already be destroyed.
    const int fd = accepted.release(error);
    if (error) return;
    tcp::socket socket(pickContext_());
    socket.assign(peer.protocol(), fd, error);
    if (error) {
      ::close(fd);
      return;
    }
    auto assignment = scheduler_->schedule(peer.address());
    if (!assignment.target) return;  // no real server takes connections: close at once
    auto session = std::make_shared<ProxySession>(std::move(socket), scheduler_,
                                                  std::move(assignment), local.port(), settings_);
    asio::post(session->executor(), [session] { session->start(); });
  }

  std::mutex mutex_;
  bool closed_ = false;
  tcp::acceptor acceptor_;
  asio::steady_timer retryTimer_;
  std::shared_ptr<ServiceScheduler> scheduler_;
  const UserspaceSettings& settings_;
  ContextPicker pickContext_;
};

class Engine {
 public:
  explicit Engine(UserspaceSettings settings) : settings_(std::move(settings)) {
    const unsigned threads = std::max(1u, settings_.threads);
    for (unsigned i = 0; i < threads; ++i) {
      contexts_.push_back(std::make_unique<asio::io_context>(1));
      guards_.emplace_back(contexts_.back()->get_executor());
    }
    estimator_.emplace(*contexts_.front());
    lastTick_ = std::chrono::steady_clock::now();
    armEstimator();
    for (auto& context : contexts_) {
      threads_.emplace_back([io = context.get()] {
        // A splice to a peer that has gone raises SIGPIPE in the calling thread; blocked
        // here it stays pending and harmless, and the call fails with EPIPE.
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
        io->run();
      });
    }
  }

  ~Engine() {
    {
      std::lock_guard lock(tableMutex_);
      for (auto& [key, service] : services_)
        for (auto& [endpoint, listener] : service.listeners) listener->close();
    }
    guards_.clear();
    for (auto& context : contexts_) context->stop();
    for (auto& thread : threads_) thread.join();
    services_.clear();
    estimator_.reset();
    // Handlers still queued (and the connections they keep alive) go with their contexts.
    contexts_.clear();
  }

  ApplyReport apply(const std::vector<VirtualService>& desired);
  std::vector<VirtualServiceState> read();
  void zero();

 private:
  using EndpointKey = std::pair<std::string, std::uint16_t>;
  struct Service {
    std::shared_ptr<ServiceScheduler> scheduler;
    std::map<EndpointKey, std::shared_ptr<Listener>> listeners;
  };

  static std::string problemWith(const VirtualService& s);
  static std::vector<EndpointKey> endpointsOf(const VirtualService& s);
  std::map<EndpointKey, std::shared_ptr<Listener>> openListeners(
      const std::vector<EndpointKey>& endpoints,
      const std::shared_ptr<ServiceScheduler>& scheduler);
  asio::io_context& nextContext() {
    return *contexts_[nextContext_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
  }
  std::vector<std::shared_ptr<ServiceScheduler>> schedulersInOrder(
      std::vector<std::string>* keys = nullptr);
  void armEstimator();

  UserspaceSettings settings_;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> nextContext_{0};
  std::optional<asio::steady_timer> estimator_;
  std::chrono::steady_clock::time_point lastTick_;

  std::mutex applyMutex_;  // one apply() at a time; only apply() changes services_
  std::mutex tableMutex_;  // services_ and order_ while apply() changes them
  std::map<std::string, Service> services_;
  std::vector<std::string> order_;
};

// Why `s` cannot be held at all (empty when it can), without the service's name.
std::string Engine::problemWith(const VirtualService& s) {
  if (s.protocol != Protocol::Tcp)
    return std::string(protocolName(s.protocol)) +
           " is not supported by the userspace dataplane: it balances TCP only";
  if (!isSupportedScheduler(s.scheduler))
    return "scheduler '" + s.scheduler +
           "' is not supported by the userspace dataplane (supported: " + supportedSchedulers() +
           ")";
  if (s.fwmark != 0 && s.listeners.empty())
    return "a firewall-mark service needs at least one listener in the userspace dataplane";
  boost::system::error_code error;
  for (const auto& [address, port] : endpointsOf(s)) {
    asio::ip::make_address(address, error);
    if (error) return "'" + address + "' is not an IP address";
    if (port == 0) return "cannot listen on port 0 of " + address;
  }
  std::set<std::pair<std::string, std::uint16_t>> reals;
  for (const RealServer& r : s.reals) {
    const auto address = asio::ip::make_address(r.address, error);
    if (error) return "real server '" + r.address + "' is not an IP address";
    if (r.port == 0 && s.fwmark == 0)
      return "real server " + r.address +
             " needs a port (0 only in a firewall-mark service)";
    if (!reals.emplace(address.to_string(), r.port).second)
      return "real server " + endpointText(r.address, r.port) + " is listed twice";
  }
  return {};
}

std::vector<Engine::EndpointKey> Engine::endpointsOf(const VirtualService& s) {
  std::vector<EndpointKey> endpoints;
  if (s.fwmark == 0) {
    endpoints.emplace_back(s.address, s.port);
  } else {
    for (const auto& l : s.listeners) endpoints.emplace_back(l.address, l.port);
  }
  return endpoints;
}

// Opens every endpoint or none: on a failure the ones opened are closed and the error thrown.
std::map<Engine::EndpointKey, std::shared_ptr<Listener>> Engine::openListeners(
    const std::vector<EndpointKey>& endpoints,
    const std::shared_ptr<ServiceScheduler>& scheduler) {
  std::map<EndpointKey, std::shared_ptr<Listener>> opened;
  try {
    for (const EndpointKey& e : endpoints) {
      if (opened.count(e)) continue;
      opened[e] = std::make_shared<Listener>(
          nextContext(), e.first, e.second, scheduler, settings_,
          [this]() -> asio::io_context& { return nextContext(); });
    }
  } catch (...) {
    for (auto& [e, listener] : opened) listener->close();
    throw;
  }
  return opened;
}

ApplyReport Engine::apply(const std::vector<VirtualService>& desired) {
  std::lock_guard applying(applyMutex_);
  ApplyReport report;
  std::set<std::string> wanted;
  std::vector<const VirtualService*> valid;
  std::vector<std::string> order;
  for (const VirtualService& s : desired) {
    const std::string key = s.key();
    if (!wanted.insert(key).second) {
      report.failures.push_back({key, "listed twice in the table"});
      continue;
    }
    order.push_back(key);
    if (auto problem = problemWith(s); !problem.empty())
      report.failures.push_back({key, problem});
    else
      valid.push_back(&s);
  }

  // Removals first, so a port a removed service held is free for a new one.
  for (auto it = services_.begin(); it != services_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    for (auto& [endpoint, listener] : it->second.listeners) listener->close();
    ++report.servicesRemoved;
    it->second.scheduler->retire();
    std::lock_guard lock(tableMutex_);
    it = services_.erase(it);
  }
  // Likewise listeners that staying services give up, so another service may take them over.
  for (const VirtualService* s : valid) {
    auto found = services_.find(s->key());
    if (found == services_.end()) continue;
    const auto endpoints = endpointsOf(*s);
    const std::set<EndpointKey> keep(endpoints.begin(), endpoints.end());
    auto& listeners = found->second.listeners;
    for (auto it = listeners.begin(); it != listeners.end();) {
      if (keep.count(it->first)) {
        ++it;
        continue;
      }
      it->second->close();
      std::lock_guard lock(tableMutex_);
      it = listeners.erase(it);
    }
  }

  for (const VirtualService* s : valid) {
    const std::string key = s->key();
    const auto endpoints = endpointsOf(*s);
    auto found = services_.find(key);
    try {
      if (found == services_.end()) {
        Service service;
        service.scheduler = std::make_shared<ServiceScheduler>(*s, settings_.finTimeout);
        service.listeners = openListeners(endpoints, service.scheduler);
        for (auto& [e, listener] : service.listeners) listener->start();
        ++report.servicesAdded;
        report.realsAdded += s->reals.size();
        std::lock_guard lock(tableMutex_);
        services_.emplace(key, std::move(service));
        continue;
      }
      // A listener that could not be opened before (or was given up above) opens now; if
      // one cannot, the service keeps its previous settings and the next apply retries.
      Service& service = found->second;
      std::vector<EndpointKey> missing;
      for (const EndpointKey& e : endpoints)
        if (!service.listeners.count(e)) missing.push_back(e);
      auto opened = openListeners(missing, service.scheduler);
      if (!service.scheduler->update(*s, report)) ++report.servicesUnchanged;
      std::lock_guard lock(tableMutex_);
      for (auto& [e, listener] : opened) {
        listener->start();
        service.listeners.emplace(e, listener);
      }
    } catch (const DataplaneError& e) {
      report.failures.push_back({key, e.what()});
    }
  }

  {
    std::lock_guard lock(tableMutex_);
    order_.clear();
    for (const std::string& key : order)
      if (services_.count(key)) order_.push_back(key);
  }
  // Failures in the order of the desired table, whichever pass found them.
  std::map<std::string, std::size_t> position;
  for (std::size_t i = 0; i < desired.size(); ++i) position.emplace(desired[i].key(), i);
  std::stable_sort(report.failures.begin(), report.failures.end(),
                   [&](const ServiceFailure& a, const ServiceFailure& b) {
                     return position[a.service] < position[b.service];
                   });
  return report;
}

std::vector<std::shared_ptr<ServiceScheduler>> Engine::schedulersInOrder(
    std::vector<std::string>* keys) {
  std::lock_guard lock(tableMutex_);
  std::vector<std::shared_ptr<ServiceScheduler>> schedulers;
  for (const std::string& key : order_) {
    auto found = services_.find(key);
    if (found == services_.end()) continue;
    schedulers.push_back(found->second.scheduler);
    if (keys) keys->push_back(key);
  }
  return schedulers;
}

std::vector<VirtualServiceState> Engine::read() {
  std::vector<VirtualServiceState> states;
  for (const auto& scheduler : schedulersInOrder()) states.push_back(scheduler->state());
  return states;
}

void Engine::zero() {
  for (const auto& scheduler : schedulersInOrder()) scheduler->zero();
}

// Runs on the first event loop every 2 s, as the IPVS estimator's timer does.
void Engine::armEstimator() {
  estimator_->expires_after(kRateWindow);
  estimator_->async_wait([this](const boost::system::error_code& error) {
    if (error) return;
    const auto now = std::chrono::steady_clock::now();
    const std::chrono::duration<double> window = now - lastTick_;
    lastTick_ = now;
    for (const auto& scheduler : schedulersInOrder()) scheduler->tick(window);
    armEstimator();
  });
}

}  // namespace shoal::lvs::userspace

namespace shoal::lvs {

UserspaceDataplane::UserspaceDataplane(UserspaceSettings settings)
    : engine_(std::make_unique<userspace::Engine>(std::move(settings))) {}

UserspaceDataplane::~UserspaceDataplane() = default;

ApplyReport UserspaceDataplane::apply(const std::vector<VirtualService>& desired) {
  return engine_->apply(desired);
}

std::vector<VirtualServiceState> UserspaceDataplane::read() {
  return engine_->read();
}

void UserspaceDataplane::zeroCounters() {
  engine_->zero();
}

}  // namespace shoal::lvs
