#include "manager/RolloutRunner.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>

#include <chrono>
#include <sstream>

#include "cluster/CommandQueue.hpp"
#include "cluster/NodeRegistry.hpp"
#include "common/Error.hpp"
#include "manager/DeliveryNotifier.hpp"
#include "host/Registries.hpp"
#include "manager/HealthService.hpp"
#include "store/DocumentStore.hpp"

namespace shoal::manager {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

const char* kNamespace = "shoal.rollouts";
const char* kCollection = "rollouts";

std::string serialize(const Object::Ptr& o) {
  std::ostringstream out;
  o->stringify(out);
  return out.str();
}

Object::Ptr parse(const std::string& json) {
  Poco::JSON::Parser parser;
  return parser.parse(json).extract<Object::Ptr>();
}

std::string keyOf(std::int64_t id) {
  // Zero-padded so key order is creation order.
  std::string digits = std::to_string(id);
  return std::string(12 - std::min<std::size_t>(12, digits.size()), '0') + digits;
}

}  // namespace

RolloutRunner::RolloutRunner(store::Store& store, cluster::CommandQueue& queue, cluster::NodeRegistry& nodes,
                             DeliveryNotifier& notifier, HealthService& health,
                             const host::Registries* registries)
    : store_(store),
      documents_(std::make_unique<store::DocumentStore>(store)),
      queue_(queue),
      nodes_(nodes),
      notifier_(notifier),
      health_(health),
      registries_(registries) {}

RolloutRunner::~RolloutRunner() { stop(); }

Object::Ptr RolloutRunner::create(const std::string& service, const std::string& kind, const std::string& role,
                                  const RolloutOptions& options) {
  const int batch = options.batch;
  if (batch < 1 || batch > 100) throw Error(ErrorCode::InvalidArgument, "max-unavailable (batch) must be 1-100");
  if (options.healthTimeoutSeconds < 5 || options.healthTimeoutSeconds > 3600)
    throw Error(ErrorCode::InvalidArgument, "health_timeout_seconds must be 5-3600");
  std::lock_guard lock(mutex_);
  const auto sharing = registries_ ? registries_->servicesSharingDaemon(service) : std::vector<std::string>{service};
  bool probed = false;
  Array::Ptr targets = new Array;
  for (const auto& node : nodes_.list(false)) {
    if (!role.empty() && std::find(node.roles.begin(), node.roles.end(), role) == node.roles.end()) continue;
    Object::Ptr n = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    n->set("id", node.id);
    n->set("hostname", node.hostname);
    n->set("state", "pending");
    // The restarted service, and those sharing its daemon that run on this node.
    Array::Ptr services = new Array;
    for (const auto& s : sharing) {
      if (s != service && std::find(node.roles.begin(), node.roles.end(), s) == node.roles.end()) continue;
      services->add(s);
      probed = probed || health_.isProbed(s);
    }
    n->set("services", services);
    targets->add(n);
  }
  if (targets->size() == 0)
    throw Error(ErrorCode::InvalidArgument, role.empty() ? "there are no nodes to restart " + service + " on"
                                                         : "no node has role '" + role + "'");
  auto txn = documents_->begin(kNamespace);
  std::int64_t id = 1;
  txn->list(kCollection, "", [&](const store::Document& doc) {
    id = std::max<std::int64_t>(id, std::stoll(doc.key) + 1);
    return true;
  });
  Object::Ptr rollout = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  rollout->set("id", id);
  rollout->set("service", service);
  rollout->set("kind", kind);
  rollout->set("batch", batch);
  rollout->set("drain", options.drain && probed);
  rollout->set("health_timeout_seconds", options.healthTimeoutSeconds);
  rollout->set("state", "running");
  rollout->set("message", "");
  rollout->set("nodes", targets);
  rollout->set("created_at_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch()).count());
  txn->put(kCollection, keyOf(id), serialize(rollout), 0);
  txn->commit();
  Poco::Logger::get("shoald.rollout").information("rollout " + std::to_string(id) + ": " + kind + " on " +
                                                  std::to_string(targets->size()) + " node(s), " +
                                                  std::to_string(batch) + " at a time" +
                                                  (rollout->getValue<bool>("drain") ? ", draining each first" : ""));
  return rollout;
}

Object::Ptr RolloutRunner::find(std::int64_t id) {
  auto doc = documents_->begin(kNamespace)->get(kCollection, keyOf(id));
  if (!doc) throw Error(ErrorCode::NotFound, "no rollout " + std::to_string(id));
  return parse(doc->json);
}

Array::Ptr RolloutRunner::list(std::size_t limit) {
  std::vector<std::string> all;
  documents_->begin(kNamespace)->list(kCollection, "", [&](const store::Document& doc) {
    all.push_back(doc.json);
    return true;
  });
  Array::Ptr newest = new Array;
  for (auto it = all.rbegin(); it != all.rend() && newest->size() < limit; ++it) newest->add(parse(*it));
  return newest;
}

namespace {

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Array::Ptr idArray(const std::vector<std::int64_t>& ids) {
  Array::Ptr a = new Array;
  for (auto id : ids) a->add(id);
  return a;
}

// The services a node's restart takes down (see the header); a rollout stored before nodes
// carried "services" restarted just its own.
std::vector<std::string> servicesOf(const Object::Ptr& node, const std::string& service) {
  std::vector<std::string> out;
  if (auto list = node->getArray("services"))
    for (std::size_t i = 0; i < list->size(); ++i) out.push_back(list->getElement<std::string>(static_cast<unsigned>(i)));
  if (out.empty()) out.push_back(service);
  return out;
}

// Probes completed for `service` when the node's restart was applied.
std::uint64_t checksAtRestart(const Object::Ptr& node, const std::string& service) {
  if (auto byService = node->getObject("checks_at_restart")) return byService->optValue<std::uint64_t>(service, 0);
  return node->optValue<std::uint64_t>("checks_at_restart", 0);
}

}  // namespace

// Whether every command in `ids` has been applied on every node it went to. Sets `failure`
// when one of them failed or was skipped (or is gone).
bool RolloutRunner::commandsApplied(const Array::Ptr& ids, std::string& failure) {
  if (!ids) return true;
  bool all = true;
  for (std::size_t i = 0; i < ids->size(); ++i) {
    const auto id = ids->getElement<std::int64_t>(static_cast<unsigned>(i));
    auto command = queue_.find(id);
    if (!command) {
      failure = "command " + std::to_string(id) + " is gone";
      return false;
    }
    for (const auto& d : command->deliveries) {
      if (d.state == cluster::DeliveryState::Failed || d.state == cluster::DeliveryState::Skipped) {
        failure = command->kind + " (command " + std::to_string(id) + ") " + cluster::toString(d.state) +
                  " on node " + std::to_string(d.nodeId) + ": " + d.output;
        return false;
      }
      if (d.state != cluster::DeliveryState::Done) all = false;
    }
  }
  return all;
}

void RolloutRunner::advance() {
  std::lock_guard lock(mutex_);
  std::vector<store::Document> active;
  {
    auto txn = documents_->begin(kNamespace);
    txn->list(kCollection, "", [&](const store::Document& doc) {
      if (doc.json.find("\"state\":\"running\"") != std::string::npos) active.push_back(doc);
      return true;
    });
  }
  auto& log = Poco::Logger::get("shoald.rollout");
  for (const auto& doc : active) {
    auto rollout = parse(doc.json);
    if (rollout->getValue<std::string>("state") != "running") continue;
    auto targets = rollout->getArray("nodes");
    const auto kind = rollout->getValue<std::string>("kind");
    const auto service = rollout->getValue<std::string>("service");
    const auto rolloutId = rollout->getValue<std::string>("id");
    const bool drain = rollout->optValue<bool>("drain", false);
    const std::int64_t healthTimeoutMs = rollout->optValue<std::int64_t>("health_timeout_seconds", 120) * 1000;
    bool changed = false;
    int inFlight = 0;

    // Maintenance on or off for every service of the node's daemon; the commands hooks
    // enqueued for all of them.
    auto setMaintenance = [&](const Object::Ptr& node, bool on) {
      std::vector<std::int64_t> commands;
      for (const auto& s : servicesOf(node, service)) {
        auto ids = health_.setMaintenance(node->getValue<std::int64_t>("id"), s, on);
        commands.insert(commands.end(), ids.begin(), ids.end());
      }
      return idArray(commands);
    };

    auto fail = [&](Object::Ptr node, const std::string& why) {
      node->set("state", "failed");
      rollout->set("state", "failed");
      rollout->set("message", why + "; the remaining nodes were left as they are");
      log.warning("rollout " + rolloutId + ": " + why);
      // Health decides again whether the failed node serves.
      if (drain) setMaintenance(node, false);
      changed = true;
    };
    auto where = [](Object::Ptr node) {
      return "node " + node->getValue<std::string>("id") + " (" + node->getValue<std::string>("hostname") + ")";
    };
    auto enqueueRestart = [&](Object::Ptr node) {
      cluster::Target target = cluster::Target::node(node->getValue<std::int64_t>("id"));
      Object payload;
      payload.set("service", service);
      std::ostringstream text;
      payload.stringify(text);
      auto command = queue_.enqueue(kind, text.str(), "rollout." + rolloutId, target);
      node->set("command_id", command.id);
      node->set("state", "running");
      notifier_.notifyAll();
      changed = true;
    };

    for (std::size_t i = 0; i < targets->size() && rollout->getValue<std::string>("state") == "running"; ++i) {
      auto node = targets->getObject(static_cast<unsigned>(i));
      const auto state = node->getValue<std::string>("state");
      const auto nodeId = node->getValue<std::int64_t>("id");
      std::string failure;
      if (state == "draining") {
        if (commandsApplied(node->getArray("wait_commands"), failure)) {
          try {
            enqueueRestart(node);
          } catch (const Error& e) {
            fail(node, "cannot enqueue " + kind + " on " + where(node) + ": " + e.what());
          }
        } else if (!failure.empty()) {
          fail(node, "draining " + where(node) + " failed: " + failure);
        }
      } else if (state == "running") {
        auto command = queue_.find(node->getValue<std::int64_t>("command_id"));
        const auto* delivery = command && !command->deliveries.empty() ? &command->deliveries.front() : nullptr;
        if (delivery && delivery->state == cluster::DeliveryState::Done) {
          if (drain) {
            Object::Ptr checks = new Object;
            for (const auto& s : servicesOf(node, service)) {
              auto status = health_.find(nodeId, s);
              checks->set(s, status ? status->status.checks : 0);
            }
            node->set("state", "recovering");
            node->set("restarted_at_ms", nowMs());
            node->set("checks_at_restart", checks);
          } else {
            node->set("state", "done");
          }
          changed = true;
        } else if (!delivery || delivery->state == cluster::DeliveryState::Failed ||
                   delivery->state == cluster::DeliveryState::Skipped) {
          fail(node, kind + " failed on " + where(node) + ": " +
                         (delivery ? delivery->output : std::string("its command is gone")));
        }
      } else if (state == "recovering") {
        // Every service of the daemon must be healthy again before any of them is restored.
        std::string notHealthy, why;
        for (const auto& s : servicesOf(node, service)) {
          auto status = health_.find(nodeId, s);
          if (!status) continue;  // not probed on this node: nothing to wait for
          const auto rise = std::max<std::uint64_t>(1, status->status.effectiveRise);
          const bool healthy = status->status.state == health::HealthState::Healthy &&
                               status->status.consecutiveSuccesses >= rise &&
                               status->status.checks >= checksAtRestart(node, s) + rise;
          if (healthy) continue;
          notHealthy += (notHealthy.empty() ? "" : ", ") + s;
          if (why.empty() && !status->status.lastError.empty()) why = s + ": " + status->status.lastError;
        }
        if (notHealthy.empty()) {
          node->set("wait_commands", setMaintenance(node, false));
          node->set("state", "restoring");
          changed = true;
        } else if (nowMs() - node->getValue<std::int64_t>("restarted_at_ms") > healthTimeoutMs) {
          fail(node, notHealthy + " on " + where(node) + " was not healthy " + std::to_string(healthTimeoutMs / 1000) +
                         " s after the restart" + (why.empty() ? std::string() : ": " + why));
        }
      } else if (state == "restoring") {
        if (commandsApplied(node->getArray("wait_commands"), failure)) {
          node->set("state", "done");
          changed = true;
        } else if (!failure.empty()) {
          fail(node, "restoring " + where(node) + " failed: " + failure);
        }
      }
      const auto now = node->getValue<std::string>("state");
      if (now == "draining" || now == "running" || now == "recovering" || now == "restoring") ++inFlight;
    }

    if (rollout->getValue<std::string>("state") == "running") {
      const int batch = rollout->getValue<int>("batch");
      bool pendingLeft = false;
      for (std::size_t i = 0; i < targets->size(); ++i) {
        auto node = targets->getObject(static_cast<unsigned>(i));
        if (node->getValue<std::string>("state") != "pending") continue;
        pendingLeft = true;
        if (inFlight >= batch) break;
        try {
          if (drain) {
            node->set("wait_commands", setMaintenance(node, true));
            node->set("state", "draining");
            changed = true;
          } else {
            enqueueRestart(node);
          }
        } catch (const Error& e) {
          fail(node, std::string("cannot start on ") + where(node) + ": " + e.what());
          break;
        }
        ++inFlight;
      }
      if (!pendingLeft && inFlight == 0) {
        rollout->set("state", "done");
        rollout->set("message", kind + " succeeded on every node");
        log.information("rollout " + rolloutId + " done");
        changed = true;
      }
    }
    if (changed) {
      auto txn = documents_->begin(kNamespace);
      txn->put(kCollection, doc.key, serialize(rollout), doc.revision);
      txn->commit();
    }
  }
}

void RolloutRunner::start() {
  running_ = true;
  worker_ = std::thread([this] {
    while (running_) {
      try {
        advance();
      } catch (const std::exception& e) {
        Poco::Logger::get("shoald.rollout").error(std::string("advancing rollouts: ") + e.what());
      }
      for (int i = 0; i < 4 && running_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
}

void RolloutRunner::stop() {
  if (running_.exchange(false) && worker_.joinable()) worker_.join();
}

}  // namespace shoal::manager
