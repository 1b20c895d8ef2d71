#include "host/HostApi.hpp"

#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>
#include <Poco/Util/AbstractConfiguration.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <string>
#include <string_view>

#include "common/Error.hpp"
#include "host/HostObjects.hpp"
#include "host/HostRuntime.hpp"
#include "host/PanelDefinition.hpp"
#include "host/StatsSample.hpp"
#include "shoal/BuildInfo.hpp"
#include "store/DocumentStore.hpp"

namespace shoal::host {
namespace {

std::string_view view(shoal_str s) {
  return s.data == nullptr ? std::string_view{} : std::string_view{s.data, s.len};
}

// Fills a host-owned buffer; released by bufferFree.
void fill(shoal_buffer* out, std::string_view text) {
  if (out == nullptr) return;
  out->data = static_cast<char*>(std::malloc(text.size() + 1));
  if (out->data == nullptr) {
    out->len = 0;
    return;
  }
  std::memcpy(out->data, text.data(), text.size());
  out->data[text.size()] = '\0';
  out->len = text.size();
}

// Runs a host callback body, turning kernel errors into a status and a message.
template <typename Body>
shoal_status run(shoal_buffer* outError, Body&& body) noexcept {
  try {
    return body();
  } catch (const Error& e) {
    fill(outError, e.what());
    return toStatus(e.code());
  } catch (const std::exception& e) {
    fill(outError, std::string("internal error: ") + e.what());
    return SHOAL_ERR_INTERNAL;
  } catch (...) {
    fill(outError, "internal error");
    return SHOAL_ERR_INTERNAL;
  }
}

void require(bool condition, const std::string& message) {
  if (!condition) throw Error(ErrorCode::InvalidArgument, message);
}

// Registration is only open during on_init; a refused registration refuses the plugin.
template <typename Body>
shoal_status registration(shoal_plugin_ctx* ctx, shoal_buffer* outError, const char* what,
                          Body&& body) noexcept {
  if (ctx == nullptr) {
    fill(outError, "no plugin context");
    return SHOAL_ERR_INVALID_ARGUMENT;
  }
  shoal_buffer message{nullptr, 0};
  shoal_status status = run(&message, [&] {
    if (!ctx->initializing)
      throw Error(ErrorCode::Unsupported, std::string(what) + " is only possible during on_init");
    body();
    return SHOAL_OK;
  });
  if (status != SHOAL_OK) {
    std::string text = message.data ? std::string(message.data, message.len) : "";
    if (ctx->firstRegistrationError.empty())
      ctx->firstRegistrationError = std::string(what) + ": " + text;
    fill(outError, text);
  }
  std::free(message.data);
  return status;
}

const std::regex& queueKindPattern() {
  static const std::regex pattern("[a-z0-9_-]+(\\.[a-z0-9_-]+)+");
  return pattern;
}
const std::regex& serviceNamePattern() {
  static const std::regex pattern("[a-z][a-z0-9_-]{0,31}");
  return pattern;
}
const std::regex& panelIdPattern() {
  static const std::regex pattern("[a-z0-9_-]{1,64}");
  return pattern;
}

// The size of a descriptor as ABI 1.0 defined it: through its last 1.0 field.
#define SHOAL_SIZE_THROUGH(type, field) (offsetof(type, field) + sizeof(((type*)nullptr)->field))

// A copy of a plugin's descriptor as this host knows it: fields the plugin's struct_size
// does not cover (it was built for an older minor) read as zero.
template <typename Desc>
Desc normalized(const Desc* desc, std::size_t v1_0Size, const char* name) {
  require(desc != nullptr, std::string(name) + " descriptor is NULL");
  require(desc->struct_size >= v1_0Size,
          std::string(name) + " descriptor is " + std::to_string(desc->struct_size) +
              " bytes, smaller than the " + std::to_string(v1_0Size) + " bytes of ABI 1.0");
  require(desc->struct_size <= sizeof(Desc),
          std::string(name) + " descriptor is " + std::to_string(desc->struct_size) +
              " bytes, larger than the " + std::to_string(sizeof(Desc)) +
              " bytes this shoald knows; upgrade shoald");
  Desc copy{};
  std::memcpy(&copy, desc, desc->struct_size);
  return copy;
}

// ---- callbacks ------------------------------------------------------------------------

void bufferFree(shoal_buffer* buffer) {
  if (buffer == nullptr) return;
  std::free(buffer->data);
  buffer->data = nullptr;
  buffer->len = 0;
}

void log(shoal_plugin_ctx* ctx, uint32_t level, shoal_str message) {
  if (ctx == nullptr || ctx->logger == nullptr) return;
  std::string text(view(message));
  switch (level) {
    case SHOAL_LOG_ERROR: ctx->logger->error(text); break;
    case SHOAL_LOG_WARNING: ctx->logger->warning(text); break;
    case SHOAL_LOG_DEBUG: ctx->logger->debug(text); break;
    default: ctx->logger->information(text); break;
  }
}

shoal_status configGet(shoal_plugin_ctx* ctx, shoal_str key, shoal_buffer* outValue,
                       shoal_buffer* outError) {
  return run(outError, [&] {
    require(ctx != nullptr, "no plugin context");
    static const std::regex keyPattern("[A-Za-z0-9_.-]{1,128}");
    std::string name(view(key));
    require(std::regex_match(name, keyPattern),
            "configuration key '" + name + "' must match [A-Za-z0-9_.-]{1,128}");
    std::string path = "plugin." + ctx->pluginName + "." + name;
    if (ctx->config == nullptr || !ctx->config->hasProperty(path))
      throw Error(ErrorCode::NotFound, "configuration value " + path + " is not set");
    fill(outValue, ctx->config->getRawString(path));
    return SHOAL_OK;
  });
}

void replyAppend(shoal_reply* reply, shoal_str text) {
  if (reply != nullptr) reply->output.append(view(text));
}

void replySetError(shoal_reply* reply, shoal_str message) {
  if (reply != nullptr) reply->error.assign(view(message));
}

shoal_status registerQueueHandler(shoal_plugin_ctx* ctx, const shoal_queue_handler_desc* desc0,
                                  shoal_buffer* outError) {
  return registration(ctx, outError, "registering a queue handler", [&] {
    const auto d = normalized(desc0, SHOAL_SIZE_THROUGH(shoal_queue_handler_desc, on_apply), "queue handler");
    const auto* desc = &d;
    QueueHandlerEntry entry{ctx->pluginName,    std::string(view(desc->kind)),
                            std::string(view(desc->description)), desc->user,
                            desc->on_validate, desc->on_apply, desc->on_apply_ctx};
    require(std::regex_match(entry.kind, queueKindPattern()),
            "queue handler kind '" + entry.kind +
                "' must be lower-case dotted words, e.g. 'http.vhost.put'");
    require(entry.onApply != nullptr || entry.onApplyCtx != nullptr,
            "queue handler '" + entry.kind + "' has neither on_apply nor on_apply_ctx");
    for (const auto& staged : ctx->staged.queueHandlers)
      if (staged.kind == entry.kind)
        throw Error(ErrorCode::Conflict, "queue handler kind '" + entry.kind + "' registered twice");
    ctx->registries->checkQueueHandlerFree(entry.kind);
    ctx->staged.queueHandlers.push_back(std::move(entry));
  });
}

shoal_status registerProbe(shoal_plugin_ctx* ctx, const shoal_probe_desc* desc0,
                           shoal_buffer* outError) {
  return registration(ctx, outError, "registering a probe", [&] {
    const auto d = normalized(desc0, SHOAL_SIZE_THROUGH(shoal_probe_desc, http_expect_status), "probe");
    const auto* desc = &d;
    ProbeEntry entry;
    entry.plugin = ctx->pluginName;
    entry.service = std::string(view(desc->service));
    require(std::regex_match(entry.service, serviceNamePattern()),
            "probe service '" + entry.service + "' must match [a-z][a-z0-9_-]{0,31}");
    require(desc->kind == SHOAL_PROBE_TCP || desc->kind == SHOAL_PROBE_HTTP,
            "probe '" + entry.service + "': kind " + std::to_string(desc->kind) +
                " is neither SHOAL_PROBE_TCP (1) nor SHOAL_PROBE_HTTP (2)");
    entry.kind = static_cast<shoal_probe_kind>(desc->kind);
    require(desc->port != 0, "probe '" + entry.service + "': port must be 1-65535");
    entry.port = desc->port;
    entry.tls = desc->use_tls != 0;
    entry.intervalMs = desc->interval_ms;
    entry.timeoutMs = desc->timeout_ms;
    entry.rise = desc->rise;
    entry.fall = desc->fall;
    require(entry.intervalMs == 0 || entry.intervalMs >= 100,
            "probe '" + entry.service + "': interval_ms must be 0 (default) or at least 100");
    require(entry.timeoutMs == 0 || entry.intervalMs == 0 || entry.timeoutMs <= entry.intervalMs,
            "probe '" + entry.service + "': timeout_ms must not exceed interval_ms");
    require(desc->step_count == 0 || desc->steps != nullptr,
            "probe '" + entry.service + "': steps is NULL but step_count is " +
                std::to_string(desc->step_count));
    require(desc->step_count <= 16, "probe '" + entry.service + "': at most 16 steps");
    for (std::size_t i = 0; i < desc->step_count; ++i)
      entry.steps.emplace_back(std::string(view(desc->steps[i].send)),
                               std::string(view(desc->steps[i].expect)));
    if (entry.kind == SHOAL_PROBE_HTTP) {
      entry.httpMethod = std::string(view(desc->http_method));
      entry.httpPath = std::string(view(desc->http_path));
      entry.httpHost = std::string(view(desc->http_host));
      entry.httpExpectStatus = desc->http_expect_status;
      static const std::regex method("[A-Z]{1,16}");
      require(std::regex_match(entry.httpMethod, method),
              "probe '" + entry.service + "': http_method '" + entry.httpMethod +
                  "' must be an upper-case HTTP method");
      require(!entry.httpPath.empty() && entry.httpPath[0] == '/' &&
                  entry.httpPath.find_first_of(" \r\n") == std::string::npos,
              "probe '" + entry.service + "': http_path must start with '/' and hold no spaces");
      require(entry.httpHost.find_first_of(" \r\n") == std::string::npos,
              "probe '" + entry.service + "': http_host must hold no spaces");
      require(entry.httpExpectStatus >= 100 && entry.httpExpectStatus <= 599,
              "probe '" + entry.service + "': http_expect_status must be 100-599");
    }
    // ABI 1.3: read only when the plugin's descriptor covers it (normalized zeroes the rest).
    if (desc0->struct_size >= SHOAL_SIZE_THROUGH(shoal_probe_desc, daemon)) {
      entry.daemon = std::string(view(desc->daemon));
      static const std::regex daemonName("[a-z0-9_.-]{1,64}");
      require(entry.daemon.empty() || std::regex_match(entry.daemon, daemonName),
              "probe '" + entry.service + "': daemon '" + entry.daemon + "' must match [a-z0-9_.-]{1,64}");
    }
    for (const auto& staged : ctx->staged.probes)
      if (staged.service == entry.service)
        throw Error(ErrorCode::Conflict, "probe for service '" + entry.service + "' registered twice");
    ctx->registries->checkProbeFree(entry.service);
    ctx->staged.probes.push_back(std::move(entry));
  });
}

shoal_status registerPanel(shoal_plugin_ctx* ctx, const shoal_panel_desc* desc0,
                           shoal_buffer* outError) {
  return registration(ctx, outError, "registering a panel", [&] {
    const auto d = normalized(desc0, SHOAL_SIZE_THROUGH(shoal_panel_desc, on_action), "panel");
    const auto* desc = &d;
    PanelEntry entry{ctx->pluginName, std::string(view(desc->id)),
                     std::string(view(desc->definition_json)), desc->user, desc->on_data,
                     desc->on_action};
    require(std::regex_match(entry.id, panelIdPattern()),
            "panel id '" + entry.id + "' must match [a-z0-9_-]{1,64}");
    validatePanelDefinition(entry.definitionJson);
    for (const auto& staged : ctx->staged.panels)
      if (staged.id == entry.id)
        throw Error(ErrorCode::Conflict, "panel '" + entry.id + "' registered twice");
    ctx->staged.panels.push_back(std::move(entry));
  });
}

shoal_status registerHook(shoal_plugin_ctx* ctx, const shoal_hook_desc* desc0,
                          shoal_buffer* outError) {
  return registration(ctx, outError, "registering a hook", [&] {
    const auto d = normalized(desc0, SHOAL_SIZE_THROUGH(shoal_hook_desc, on_event), "hook");
    const auto* desc = &d;
    HookEntry entry{ctx->pluginName, std::string(view(desc->event)), desc->user, desc->on_event};
    bool known = false;
    std::string list;
    for (const auto& event : knownHookEvents()) {
      known = known || event == entry.event;
      list += (list.empty() ? "" : ", ") + event;
    }
    require(known, "hook event '" + entry.event + "' is not one of " + list);
    require(entry.onEvent != nullptr, "hook for '" + entry.event + "' has no on_event");
    ctx->staged.hooks.push_back(std::move(entry));
  });
}

shoal_status registerApi(shoal_plugin_ctx* ctx, const shoal_api_desc* desc0, shoal_buffer* outError) {
  return registration(ctx, outError, "registering an API endpoint", [&] {
    const auto d = normalized(desc0, SHOAL_SIZE_THROUGH(shoal_api_desc, on_request), "API endpoint");
    require(d.on_request != nullptr, "API endpoint has no on_request");
    require(ctx->staged.apis.empty(), "a plugin registers at most one API endpoint");
    ctx->staged.apis.push_back(ApiEntry{ctx->pluginName, d.user, d.on_request});
  });
}

shoal_status registerConnections(shoal_plugin_ctx* ctx, const shoal_connections_desc* desc0,
                                 shoal_buffer* outError) {
  return registration(ctx, outError, "registering a connection counter", [&] {
    const auto d = normalized(desc0, SHOAL_SIZE_THROUGH(shoal_connections_desc, on_node_connections),
                              "connection counter");
    require(d.on_node_connections != nullptr, "connection counter has no on_node_connections");
    require(ctx->staged.connections.empty(), "a plugin registers at most one connection counter");
    ctx->staged.connections.push_back(ConnectionsEntry{ctx->pluginName, d.user, d.on_node_connections});
  });
}

shoal_status registerMetrics(shoal_plugin_ctx* ctx, const shoal_metrics_desc* desc0, shoal_buffer* outError) {
  return registration(ctx, outError, "registering metrics", [&] {
    const auto d = normalized(desc0, SHOAL_SIZE_THROUGH(shoal_metrics_desc, on_collect), "metrics");
    require(d.on_collect != nullptr, "metrics descriptor has no on_collect");
    require(ctx->staged.metrics.empty(), "a plugin registers metrics at most once");
    ctx->staged.metrics.push_back(MetricsEntry{ctx->pluginName, d.user, d.on_collect});
  });
}

shoal_status registerLimit(shoal_plugin_ctx* ctx, const shoal_limit_desc* desc0, shoal_buffer* outError) {
  return registration(ctx, outError, "declaring a limit", [&] {
    const auto d = normalized(desc0, SHOAL_SIZE_THROUGH(shoal_limit_desc, counts), "limit");
    LimitEntry entry;
    entry.plugin = ctx->pluginName;
    entry.dimension = std::string(view(d.dimension));
    static const std::regex dimensionPattern("[a-z][a-z0-9_]{0,31}");
    require(std::regex_match(entry.dimension, dimensionPattern),
            "limit dimension '" + entry.dimension + "' must match [a-z][a-z0-9_]{0,31}");
    entry.name = ctx->pluginName + "." + entry.dimension;
    entry.label = std::string(view(d.label));
    require(!entry.label.empty(), "limit '" + entry.name + "': label is empty");
    require(entry.label.size() <= 64, "limit '" + entry.name + "': label is " +
                                          std::to_string(entry.label.size()) + " bytes, at most 64");
    for (unsigned char c : entry.label)
      require(c >= 0x20 && c != 0x7f,
              "limit '" + entry.name + "': label must be one line without control characters");
    entry.counts = std::string(view(d.counts));
    require(entry.counts.empty() || entry.counts == "domains",
            "limit '" + entry.name + "': counts '" + entry.counts +
                "' must be \"domains\" (the kernel counts the account's domains) or empty (the plugin counts)");
    for (const auto& staged : ctx->staged.limits)
      if (staged.dimension == entry.dimension)
        throw Error(ErrorCode::Conflict, "limit '" + entry.name + "' declared twice");
    ctx->staged.limits.push_back(std::move(entry));
  });
}

shoal_status replySetHttpStatus(shoal_reply* reply, uint32_t httpStatus) {
  if (reply == nullptr) return SHOAL_ERR_INVALID_ARGUMENT;
  if (!reply->forApiRequest) {
    reply->error = "reply_set_http_status is only possible on the reply of an API request";
    return SHOAL_ERR_UNSUPPORTED;
  }
  if (!pluginHttpStatusAllowed(httpStatus)) return SHOAL_ERR_INVALID_ARGUMENT;
  reply->httpStatus = httpStatus;
  return SHOAL_OK;
}

// The daemon's runtime, or Error(Unsupported) when this process has none (yet).
HostRuntime& runtimeOf(shoal_plugin_ctx* ctx, const char* what) {
  require(ctx != nullptr, std::string(what) + " needs a plugin context");
  HostRuntime* runtime = ctx->runtime ? ctx->runtime->load() : nullptr;
  if (runtime == nullptr)
    throw Error(ErrorCode::Unsupported, std::string(what) + " is not available in this shoald command or before it runs");
  return *runtime;
}

shoal_status hostInfo(shoal_plugin_ctx* ctx, shoal_buffer* outJson, shoal_buffer* outError) {
  return run(outError, [&] {
    fill(outJson, runtimeOf(ctx, "host_info").hostInfoJson());
    return SHOAL_OK;
  });
}

shoal_status enqueue(shoal_plugin_ctx* ctx, shoal_str request, shoal_buffer* outJson, shoal_buffer* outError) {
  return run(outError, [&] {
    fill(outJson, runtimeOf(ctx, "enqueue").enqueue(std::string(view(request))));
    return SHOAL_OK;
  });
}

shoal_status commandGet(shoal_plugin_ctx* ctx, int64_t commandId, shoal_buffer* outJson, shoal_buffer* outError) {
  return run(outError, [&] {
    fill(outJson, runtimeOf(ctx, "command_get").commandJson(commandId));
    return SHOAL_OK;
  });
}

shoal_status healthList(shoal_plugin_ctx* ctx, shoal_buffer* outJson, shoal_buffer* outError) {
  return run(outError, [&] {
    fill(outJson, runtimeOf(ctx, "health_list").healthJson());
    return SHOAL_OK;
  });
}

shoal_status statsEmit(shoal_plugin_ctx* ctx, shoal_str samplesJson, shoal_buffer* outError) {
  return run(outError, [&] {
    auto& runtime = runtimeOf(ctx, "stats_emit");
    runtime.emitStats(parseStatsSamples(view(samplesJson), ctx->pluginName + ".", unixNowSeconds()));
    return SHOAL_OK;
  });
}

shoal_status statsDeclare(shoal_plugin_ctx* ctx, shoal_str seriesJson, shoal_buffer* outError) {
  return run(outError, [&] {
    runtimeOf(ctx, "stats_declare").declareStats(ctx->pluginName, std::string(view(seriesJson)));
    return SHOAL_OK;
  });
}

shoal_status limitCheck(shoal_plugin_ctx* ctx, shoal_str account, shoal_str dimension, int64_t wouldHave,
                        shoal_buffer* outError) {
  return run(outError, [&] {
    require(ctx != nullptr && ctx->registries != nullptr, "limit_check needs a plugin context");
    const std::string accountName(view(account)), dimensionName(view(dimension));
    require(!accountName.empty(), "limit_check: account is empty");
    require(!dimensionName.empty(), "limit_check: dimension is empty");
    require(wouldHave >= 0, "limit_check: would_have is " + std::to_string(wouldHave) + ", must be >= 0");
    ctx->registries->checkLimit(accountName, ctx->pluginName + "." + dimensionName, wouldHave);
    return SHOAL_OK;
  });
}

shoal_status txnBegin(shoal_plugin_ctx* ctx, shoal_txn** outTxn, shoal_buffer* outError) {
  return run(outError, [&] {
    require(ctx != nullptr && outTxn != nullptr, "txn_begin needs a context and out_txn");
    if (ctx->initializing)
      throw Error(ErrorCode::Unsupported, "the document store is not available during on_init");
    if (ctx->documents == nullptr)
      throw Error(ErrorCode::Unsupported, "the document store is not open in this shoald command");
    auto txn = std::make_unique<shoal_txn>();
    txn->transaction = ctx->documents->begin(ctx->pluginName);
    *outTxn = txn.release();
    return SHOAL_OK;
  });
}

shoal_status txnCommit(shoal_txn* txn, shoal_buffer* outError) {
  std::unique_ptr<shoal_txn> owned(txn);
  return run(outError, [&] {
    require(owned != nullptr, "txn_commit of a NULL transaction");
    owned->transaction->commit();
    return SHOAL_OK;
  });
}

void txnEnd(shoal_txn* txn) {
  std::unique_ptr<shoal_txn> owned(txn);
  if (owned == nullptr) return;
  try {
    owned->transaction->rollback();
  } catch (...) {
    // The transaction is discarded either way; the session goes back to the pool.
  }
}

shoal_status docGet(shoal_txn* txn, shoal_str collection, shoal_str key, shoal_buffer* outJson,
                    int64_t* outRevision, shoal_buffer* outError) {
  return run(outError, [&] {
    require(txn != nullptr, "doc_get on a NULL transaction");
    auto doc = txn->transaction->get(view(collection), view(key));
    if (!doc)
      throw Error(ErrorCode::NotFound, "no document '" + std::string(view(key)) +
                                           "' in collection '" + std::string(view(collection)) + "'");
    fill(outJson, doc->json);
    if (outRevision != nullptr) *outRevision = doc->revision;
    return SHOAL_OK;
  });
}

shoal_status docPut(shoal_txn* txn, shoal_str collection, shoal_str key, shoal_str json,
                    int64_t expectedRevision, int64_t* outRevision, shoal_buffer* outError) {
  return run(outError, [&] {
    require(txn != nullptr, "doc_put on a NULL transaction");
    require(expectedRevision >= -1, "expected_revision must be -1, 0 or a revision");
    int64_t revision = txn->transaction->put(view(collection), view(key), view(json), expectedRevision);
    if (outRevision != nullptr) *outRevision = revision;
    return SHOAL_OK;
  });
}

shoal_status docDelete(shoal_txn* txn, shoal_str collection, shoal_str key,
                       shoal_buffer* outError) {
  return run(outError, [&] {
    require(txn != nullptr, "doc_delete on a NULL transaction");
    if (!txn->transaction->remove(view(collection), view(key)))
      throw Error(ErrorCode::NotFound, "no document '" + std::string(view(key)) +
                                           "' in collection '" + std::string(view(collection)) + "'");
    return SHOAL_OK;
  });
}

shoal_status docList(shoal_txn* txn, shoal_str collection, shoal_str keyPrefix,
                     int (*visit)(void*, shoal_str, shoal_str, int64_t), void* visitUser,
                     shoal_buffer* outError) {
  return run(outError, [&] {
    require(txn != nullptr, "doc_list on a NULL transaction");
    require(visit != nullptr, "doc_list needs a visit function");
    txn->transaction->list(view(collection), view(keyPrefix), [&](const store::Document& doc) {
      return visit(visitUser, shoal_str{doc.key.data(), doc.key.size()},
                   shoal_str{doc.json.data(), doc.json.size()}, doc.revision) == 0;
    });
    return SHOAL_OK;
  });
}

shoal_host_api makeTable() {
  shoal_host_api api{};
  api.struct_size = sizeof api;
  api.abi_major = SHOAL_ABI_VERSION_MAJOR;
  api.abi_minor = SHOAL_ABI_VERSION_MINOR;
  api.host_version = shoal_str{build::kVersion, std::strlen(build::kVersion)};
  api.callback_buffer_free = &bufferFree;
  api.callback_log = &log;
  api.callback_config_get = &configGet;
  api.callback_reply_append = &replyAppend;
  api.callback_reply_set_error = &replySetError;
  api.callback_register_queue_handler = &registerQueueHandler;
  api.callback_register_probe = &registerProbe;
  api.callback_register_panel = &registerPanel;
  api.callback_register_hook = &registerHook;
  api.callback_txn_begin = &txnBegin;
  api.callback_txn_commit = &txnCommit;
  api.callback_txn_end = &txnEnd;
  api.callback_doc_get = &docGet;
  api.callback_doc_put = &docPut;
  api.callback_doc_delete = &docDelete;
  api.callback_doc_list = &docList;
  api.callback_host_info = &hostInfo;
  api.callback_enqueue = &enqueue;
  api.callback_health_list = &healthList;
  api.callback_register_api = &registerApi;
  api.callback_stats_emit = &statsEmit;
  // ABI 1.3
  api.callback_register_connections = &registerConnections;
  api.callback_reply_set_http_status = &replySetHttpStatus;
  api.callback_command_get = &commandGet;
  api.callback_register_metrics = &registerMetrics;
  // ABI 1.4
  api.callback_stats_declare = &statsDeclare;
  // ABI 1.5
  api.callback_register_limit = &registerLimit;
  api.callback_limit_check = &limitCheck;
  return api;
}

}  // namespace

void HostRuntime::declareStats(const std::string& plugin, const std::string&) {
  throw Error(ErrorCode::Unsupported,
              "declaring statistics series (" + plugin + ") is only possible on the manager");
}

shoal_status toStatus(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return SHOAL_ERR_INVALID_ARGUMENT;
    case ErrorCode::NotFound: return SHOAL_ERR_NOT_FOUND;
    case ErrorCode::Conflict: return SHOAL_ERR_CONFLICT;
    case ErrorCode::Unsupported: return SHOAL_ERR_UNSUPPORTED;
    case ErrorCode::Failed: return SHOAL_ERR_FAILED;
    case ErrorCode::Internal: return SHOAL_ERR_INTERNAL;
  }
  return SHOAL_ERR_INTERNAL;
}

const shoal_host_api* hostApiTable() {
  static const shoal_host_api table = makeTable();
  return &table;
}

bool pluginHttpStatusAllowed(std::uint32_t httpStatus) {
  switch (httpStatus) {
    case 200: case 201: case 202: case 204:
    case 400: case 403: case 404: case 405: case 409: case 410: case 412: case 422: case 429: case 503:
      return true;
    default:
      return false;
  }
}

PluginHttpAnswer pluginHttpAnswer(shoal_status status, std::uint32_t chosen, bool post) {
  const bool chosenSuccess = chosen >= 200 && chosen < 300, chosenError = chosen >= 400;
  if (status == SHOAL_OK) return {chosenSuccess ? static_cast<int>(chosen) : (post ? 201 : 200), ""};
  auto code = [](int http) -> const char* {
    switch (http) {
      case 400: return "invalid_argument";
      case 403: return "forbidden";
      case 404: return "not_found";
      case 405: return "method_not_allowed";
      case 409: return "conflict";
      case 410: return "gone";
      case 412: return "precondition_failed";
      case 422: return "failed";
      case 429: return "too_many_requests";
      case 501: return "unsupported";
      case 503: return "unavailable";
      default: return "internal";
    }
  };
  int http = 500;
  switch (status) {
    case SHOAL_ERR_INVALID_ARGUMENT: http = 400; break;
    case SHOAL_ERR_NOT_FOUND: http = 404; break;
    case SHOAL_ERR_CONFLICT: http = 409; break;
    case SHOAL_ERR_UNSUPPORTED: http = 501; break;
    case SHOAL_ERR_FAILED: http = 422; break;
    case SHOAL_ERR_METHOD_NOT_ALLOWED: http = 405; break;
    default: http = 500; break;
  }
  if (chosenError) http = static_cast<int>(chosen);
  return {http, code(http)};
}

std::string statusName(shoal_status status) {
  switch (status) {
    case SHOAL_OK: return "SHOAL_OK";
    case SHOAL_ERR_INVALID_ARGUMENT: return "SHOAL_ERR_INVALID_ARGUMENT";
    case SHOAL_ERR_NOT_FOUND: return "SHOAL_ERR_NOT_FOUND";
    case SHOAL_ERR_CONFLICT: return "SHOAL_ERR_CONFLICT";
    case SHOAL_ERR_UNSUPPORTED: return "SHOAL_ERR_UNSUPPORTED";
    case SHOAL_ERR_FAILED: return "SHOAL_ERR_FAILED";
    case SHOAL_ERR_EXCEPTION: return "SHOAL_ERR_EXCEPTION";
    case SHOAL_ERR_INTERNAL: return "SHOAL_ERR_INTERNAL";
    case SHOAL_ERR_METHOD_NOT_ALLOWED: return "SHOAL_ERR_METHOD_NOT_ALLOWED";
  }
  return "status " + std::to_string(static_cast<int>(status));
}

void throwUnlessOk(shoal_status status, const std::string& plugin, const std::string& message) {
  const std::string text = message.empty() ? plugin + " answered " + statusName(status) : message;
  switch (status) {
    case SHOAL_OK: return;
    case SHOAL_ERR_INVALID_ARGUMENT: throw Error(ErrorCode::InvalidArgument, text);
    case SHOAL_ERR_NOT_FOUND: throw Error(ErrorCode::NotFound, text);
    case SHOAL_ERR_CONFLICT: throw Error(ErrorCode::Conflict, text);
    case SHOAL_ERR_UNSUPPORTED: throw Error(ErrorCode::Unsupported, text);
    case SHOAL_ERR_METHOD_NOT_ALLOWED: throw Error(ErrorCode::Unsupported, text);
    case SHOAL_ERR_FAILED: throw Error(ErrorCode::Failed, text);
    default: throw Error(ErrorCode::Internal, plugin + ": " + text);
  }
}

}  // namespace shoal::host
