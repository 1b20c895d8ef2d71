#include "agent/NodeAgent.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "agent/Journal.hpp"
#include "agent/ManagerClient.hpp"
#include "agent/StatsForwarder.hpp"
#include "api/JoinToken.hpp"
#include "api/NodeQueueMessages.hpp"
#include "common/Error.hpp"
#include "common/Files.hpp"
#include "common/Platform.hpp"
#include "host/HostObjects.hpp"
#include "host/Registries.hpp"
#include "shoal/BuildInfo.hpp"
#include "tls/Contexts.hpp"

namespace shoal::agent {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;


// At most this many results in one POST /v1/node/results (the manager takes up to 1000).
constexpr std::size_t kResultsPerReport = 500;

Object::Ptr result(std::int64_t deliveryId, bool succeeded, const std::string& output) {
  Object::Ptr o = new Object;
  o->set("delivery_id", deliveryId);
  o->set("succeeded", succeeded);
  o->set("output", output);
  return o;
}

}  // namespace

NodeAgent::NodeAgent(const host::Registries& registries, NodeAgentSettings settings)
    : registries_(registries), settings_(std::move(settings)) {}

NodeAgent::~NodeAgent() { stop(); }

std::filesystem::path NodeAgent::identityFile(const std::filesystem::path& dataDir) {
  return dataDir / "node-identity.json";
}

std::optional<NodeIdentity> NodeAgent::loadIdentity(const std::filesystem::path& dataDir) {
  std::ifstream in(identityFile(dataDir));
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(text).extract<Object::Ptr>();
    return NodeIdentity{o->getValue<std::int64_t>("node_id"), o->getValue<std::string>("credential"),
                        o->getValue<std::string>("manager"), o->getValue<std::string>("ca_file")};
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Failed, identityFile(dataDir).string() + " is damaged: " + e.what());
  }
}

NodeIdentity NodeAgent::enrol(const std::filesystem::path& dataDir, const std::string& joinToken,
                              const std::string& advertiseAddress) {
  if (auto existing = loadIdentity(dataDir))
    throw Error(ErrorCode::Conflict, "this node is already enrolled as node " + std::to_string(existing->nodeId) +
                                         " of " + existing->manager + "; remove " +
                                         identityFile(dataDir).string() + " to join again");
  auto token = api::decodeJoinToken(joinToken);
  auto pin = std::make_shared<tls::PinResult>();
  ManagerClient client(token.manager, tls::makePinnedClientContext(token.caFingerprint, pin), token.secret);

  auto facts = detectPlatform();
  Object::Ptr report = new Object;
  report->set("hostname", facts.hostname);
  report->set("os_id", facts.osId);
  report->set("os_version", facts.osVersion);
  report->set("arch", facts.arch);
  report->set("shoal_version", std::string(build::kVersion));
  if (!advertiseAddress.empty()) report->set("address", advertiseAddress);
  ApiReply reply;
  try {
    reply = client.call("POST", "/v1/join", report);
  } catch (const Error& e) {
    std::lock_guard lock(pin->mutex);
    throw Error(ErrorCode::Failed, std::string(e.what()) +
                                       (pin->lastError.empty() ? "" : " (TLS: " + pin->lastError + ")"));
  }
  if (reply.status != 201)
    throw Error(ErrorCode::Failed, "the manager refused to enrol this node: " + reply.errorMessage());

  NodeIdentity identity;
  identity.nodeId = reply.body->getObject("node")->getValue<std::int64_t>("id");
  identity.credential = reply.body->getValue<std::string>("credential");
  identity.manager = token.manager;
  identity.caFile = dataDir / "tls" / "manager-ca.crt";
  {
    std::lock_guard lock(pin->mutex);
    writeFileAtomically(identity.caFile, pin->caCertificatePem);
  }
  Object identityJson;
  identityJson.set("node_id", identity.nodeId);
  identityJson.set("credential", identity.credential);
  identityJson.set("manager", identity.manager);
  identityJson.set("ca_file", identity.caFile.string());
  std::ostringstream text;
  identityJson.stringify(text);
  writeFileAtomically(identityFile(dataDir), text.str() + "\n");
  Poco::Logger::get("shoald.node").information("enrolled as node " + std::to_string(identity.nodeId) + " of " +
                                               identity.manager);
  return identity;
}

void NodeAgent::start() {
  auto identity = loadIdentity(settings_.dataDir);
  if (!identity)
    throw Error(ErrorCode::Failed, "this node is not enrolled: start it once with --join TOKEN "
                                   "(shoalctl node join-token prints one)");
  identity_ = *identity;
  journal_ = std::make_unique<Journal>(settings_.dataDir / "journal.log");
  client_ = std::make_unique<ManagerClient>(identity_.manager, tls::makeClientContext(identity_.caFile),
                                            identity_.credential);
  stats_ = std::make_unique<StatsForwarder>(
      std::make_unique<ManagerClient>(identity_.manager, tls::makeClientContext(identity_.caFile),
                                      identity_.credential));
  stats_->start();
  running_ = true;
  worker_ = std::thread([this] { run(); });
  Poco::Logger::get("shoald.node").information("node " + std::to_string(identity_.nodeId) + " pulling from " +
                                               identity_.manager + " (" + std::to_string(journal_->size()) +
                                               " deliveries in the journal)");
}

void NodeAgent::stop() {
  if (running_.exchange(false) && worker_.joinable()) worker_.join();
  if (stats_) stats_->stop();
}

void NodeAgent::forwardStats(std::vector<host::StatsSample> samples) {
  if (!stats_) throw Error(ErrorCode::Unsupported, "the node agent is not running; statistics cannot be forwarded");
  stats_->submit(std::move(samples));
}

void NodeAgent::run() {
  auto& log = Poco::Logger::get("shoald.node");
  // Results not yet taken by the manager, by delivery id: what the journal holds at start
  // (this agent or the manager may have stopped before taking them), then what is applied.
  std::map<std::int64_t, JournalEntry> unreported;
  for (auto& [id, entry] : journal_->unreported()) unreported.emplace(id, std::move(entry));
  // Deliveries whose handler ran but whose result the journal could not record (a full
  // disk): reported as failed with the disk's reason, and answered from here, never applied
  // again, until the journal takes the result. Lost if this process stops meanwhile.
  std::map<std::int64_t, JournalEntry> unrecorded;
  auto backoff = std::chrono::milliseconds(200);
  bool warned = false;
  // Whether the manager knows this agent holds no claimed delivery. True between batches, so
  // it is said at start and again after any failed exchange: a pull whose answer was lost
  // (manager restart, cut link) is then offered again at once instead of after its lease.
  bool announced = false;
  auto refusedCredential = [](const ApiReply& reply) {
    if (reply.status == 401) throw Error(ErrorCode::Failed, "the manager refused this node's credential (was it removed?)");
  };
  auto unrecordedResult = [](const Error& e) {
    return JournalEntry{false, std::string("the command was applied, but ") + e.what() +
                                   "; it is not applied again, and its result is reported once the journal can "
                                   "be written (retry the delivery then)"};
  };
  while (running_) {
    try {
      // Results first, then `started`: what this node finished is taken as finished before the
      // manager offers again what the node held, so nothing it applied comes back as new work.
      while (!unreported.empty()) {
        Array::Ptr batch = new Array;
        for (auto it = unreported.begin(); it != unreported.end() && batch->size() < kResultsPerReport; ++it)
          batch->add(result(it->first, it->second.succeeded, it->second.output));
        Object::Ptr body = new Object;
        body->set("results", batch);
        auto reply = client_->call("POST", "/v1/node/results", body);
        refusedCredential(reply);
        if (reply.status != 200) throw Error(ErrorCode::Failed, "results refused: " + reply.errorMessage());
        std::set<std::int64_t> refused;
        auto refusals = reply.body->getArray("refused");
        for (std::size_t i = 0; refusals && i < refusals->size(); ++i) {
          auto r = refusals->getObject(static_cast<unsigned>(i));
          const auto id = r->getValue<std::int64_t>("delivery_id");
          refused.insert(id);
          const bool applied = unreported.count(id) && unreported.at(id).succeeded;
          log.warning("the manager no longer takes the result of delivery " + std::to_string(id) + ": " +
                      r->getValue<std::string>("reason") +
                      (applied ? "; the journal keeps it, so the command is not applied again if it is offered again"
                               : ""));
        }
        // Taken: forgotten. Refused: no longer offered; a success stays in the journal all the
        // same (the command was applied, and a redelivery must be answered, not re-applied),
        // while a failed attempt is no answer and is let go.
        std::vector<std::int64_t> forget;
        for (std::size_t i = 0; i < batch->size(); ++i) {
          const auto id = batch->getObject(static_cast<unsigned>(i))->getValue<std::int64_t>("delivery_id");
          if (!refused.count(id) || !unreported.at(id).succeeded) forget.push_back(id);
          unreported.erase(id);
        }
        journal_->acknowledge(forget);
      }
      if (!announced) {
        auto reply = client_->call("POST", "/v1/node/started");
        refusedCredential(reply);
        if (reply.status != 200) throw Error(ErrorCode::Failed, "start refused: " + reply.errorMessage());
        announced = true;
      }
      auto reply = client_->call("GET", "/v1/node/deliveries?wait_ms=" + std::to_string(settings_.pollWait.count()) +
                                            "&limit=" + std::to_string(settings_.batchLimit),
                                 nullptr, settings_.pollWait + std::chrono::seconds(5));
      refusedCredential(reply);
      if (reply.status != 200) throw Error(ErrorCode::Failed, "pull refused: " + reply.errorMessage());
      if (warned) log.information("connected to the manager at " + identity_.manager + " again");
      warned = false;
      backoff = std::chrono::milliseconds(200);

      const auto deliveries = api::parseDeliveryList(reply.body);
      std::vector<std::int64_t> recorded;  // in this batch, durable once synced
      for (const api::OfferedDelivery& d : deliveries) {
        const auto id = d.id;
        // Applied, but not yet recorded: record it now if the journal can take it.
        if (auto held = unrecorded.find(id); held != unrecorded.end()) {
          try {
            journal_->record(id, held->second);
            journal_->sync();
            unreported[id] = held->second;
            unrecorded.erase(held);
            log.information("the journal took the result of delivery " + std::to_string(id) + " at last");
          } catch (const Error& e) {
            unreported[id] = unrecordedResult(e);
          }
          continue;
        }
        // Already applied (the acknowledgement was lost): answer from the journal. A failed
        // attempt is not an answer: the delivery comes back to be tried again (backoff, or an
        // admin's retry), and trying is what it asks for.
        if (auto done = journal_->find(id); done && done->succeeded) {
          unreported[id] = *done;
          continue;
        }
        const auto entry = apply(d);
        try {
          journal_->record(id, entry);
          recorded.push_back(id);
          unreported[id] = entry;
        } catch (const Error& e) {
          log.error("delivery " + std::to_string(id) + ": " + e.what());
          unrecorded[id] = entry;
          unreported[id] = unrecordedResult(e);
        }
      }
      if (!recorded.empty()) {
        try {
          journal_->sync();
        } catch (const Error& e) {
          // Written, but perhaps not durable: treated as not recorded, answered from memory.
          log.error(e.what());
          for (auto id : recorded) {
            unrecorded[id] = unreported.at(id);
            unreported[id] = unrecordedResult(e);
          }
        }
      }
    } catch (const std::exception& e) {
      announced = false;
      if (!warned) log.warning(std::string("manager unreachable or refusing: ") + e.what() + "; retrying");
      warned = true;
      for (auto slept = std::chrono::milliseconds(0); running_ && slept < backoff; slept += std::chrono::milliseconds(50))
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }
}

JournalEntry NodeAgent::apply(const api::OfferedDelivery& d) const {
  auto handler = registries_.queueHandler(d.kind);
  if (!handler) return {false, "no plugin on this node handles command kind '" + d.kind + "'"};
  shoal_reply out;
  shoal_status status = SHOAL_ERR_INTERNAL;
  try {
    const shoal_str payloadText{d.payload.data(), d.payload.size()};
    if (handler->onApplyCtx != nullptr) {
      // ABI 1.3: the delivery's identity, for a handler that makes itself idempotent.
      shoal_apply_context context{};
      context.struct_size = sizeof context;
      context.attempt = d.attempts;
      context.command_id = d.commandId;
      context.delivery_id = d.id;
      context.node_id = identity_.nodeId;
      context.kind = shoal_str{d.kind.data(), d.kind.size()};
      context.ordering_key = shoal_str{d.orderingKey.data(), d.orderingKey.size()};
      status = handler->onApplyCtx(handler->user, &context, payloadText, &out);
    } else {
      status = handler->onApply(handler->user, payloadText, &out);
    }
  } catch (...) {
    out.error = "the handler threw an exception";
  }
  return {status == SHOAL_OK, status == SHOAL_OK ? out.output : (out.error.empty() ? out.output : out.error)};
}

}  // namespace shoal::agent
