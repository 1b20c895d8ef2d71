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
                             DeliveryNotifier& notifier)
    : store_(store),
      documents_(std::make_unique<store::DocumentStore>(store)),
      queue_(queue),
      nodes_(nodes),
      notifier_(notifier) {}

RolloutRunner::~RolloutRunner() { stop(); }

Object::Ptr RolloutRunner::create(const std::string& service, const std::string& kind, const std::string& role,
                                  int batch) {
  if (batch < 1 || batch > 100) throw Error(ErrorCode::InvalidArgument, "batch must be 1-100");
  std::lock_guard lock(mutex_);
  Array::Ptr targets = new Array;
  for (const auto& node : nodes_.list(false)) {
    if (!role.empty() && std::find(node.roles.begin(), node.roles.end(), role) == node.roles.end()) continue;
    Object::Ptr n = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    n->set("id", node.id);
    n->set("hostname", node.hostname);
    n->set("state", "pending");
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
  rollout->set("state", "running");
  rollout->set("message", "");
  rollout->set("nodes", targets);
  rollout->set("created_at_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch()).count());
  txn->put(kCollection, keyOf(id), serialize(rollout), 0);
  txn->commit();
  Poco::Logger::get("shoald.rollout").information("rollout " + std::to_string(id) + ": " + kind + " on " +
                                                  std::to_string(targets->size()) + " node(s), " +
                                                  std::to_string(batch) + " at a time");
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
    bool changed = false, inFlight = false;
    for (std::size_t i = 0; i < targets->size(); ++i) {
      auto node = targets->getObject(static_cast<unsigned>(i));
      if (node->getValue<std::string>("state") != "running") continue;
      auto command = queue_.find(node->getValue<std::int64_t>("command_id"));
      const auto* delivery = command && !command->deliveries.empty() ? &command->deliveries.front() : nullptr;
      if (delivery && delivery->state == cluster::DeliveryState::Done) {
        node->set("state", "done");
        changed = true;
      } else if (!delivery || delivery->state == cluster::DeliveryState::Failed ||
                 delivery->state == cluster::DeliveryState::Skipped) {
        node->set("state", "failed");
        rollout->set("state", "failed");
        rollout->set("message", kind + " failed on node " + node->getValue<std::string>("id") + " (" +
                                    node->getValue<std::string>("hostname") + "): " +
                                    (delivery ? delivery->output : std::string("its command is gone")) +
                                    "; the remaining nodes were left as they are");
        log.warning("rollout " + rollout->getValue<std::string>("id") + ": " + rollout->getValue<std::string>("message"));
        changed = true;
      } else {
        inFlight = true;
      }
    }
    if (rollout->getValue<std::string>("state") == "running" && !inFlight) {
      int started = 0;
      const int batch = rollout->getValue<int>("batch");
      for (std::size_t i = 0; i < targets->size() && started < batch; ++i) {
        auto node = targets->getObject(static_cast<unsigned>(i));
        if (node->getValue<std::string>("state") != "pending") continue;
        cluster::Target target{};
        target.kind = cluster::Target::Kind::Node;
        target.nodeId = node->getValue<std::int64_t>("id");
        Object payload;
        payload.set("service", rollout->getValue<std::string>("service"));
        std::ostringstream text;
        payload.stringify(text);
        try {
          auto command = queue_.enqueue(kind, text.str(), "rollout." + rollout->getValue<std::string>("id"), target);
          node->set("command_id", command.id);
          node->set("state", "running");
        } catch (const Error& e) {
          node->set("state", "failed");
          rollout->set("state", "failed");
          rollout->set("message", std::string("cannot enqueue on ") + node->getValue<std::string>("hostname") + ": " + e.what());
          break;
        }
        ++started;
        changed = true;
      }
      if (started > 0) notifier_.notifyAll();
      if (started == 0 && rollout->getValue<std::string>("state") == "running") {
        rollout->set("state", "done");
        rollout->set("message", kind + " succeeded on every node");
        log.information("rollout " + rollout->getValue<std::string>("id") + " done");
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
