// shoal C++ SDK — a header-only veneer over the C ABI in <shoal/abi.h>.
//
// A plugin author writes one class and one export line:
//
//   class Hello final : public shoal::Plugin {
//    public:
//     void init(shoal::Registrar& reg) override {
//       reg.queueHandler("hello.greet", "Writes a greeting",
//                        [this](std::string_view payload, shoal::Reply& reply) { ... });
//     }
//   };
//   SHOAL_PLUGIN(Hello, "hello", "1.0.0", "Says hello")
//
// What the veneer promises:
//   - No exception ever crosses into the host. Every callback runs inside a guard: a
//     shoal::PluginError becomes its own status and message, any other exception becomes
//     SHOAL_ERR_EXCEPTION with its what() text.
//   - The plugin object is constructed in on_init (so a throwing constructor is reported,
//     not fatal) and destroyed in on_shutdown, together with every callback it registered.
//   - Host calls that fail throw shoal::HostError carrying the host's status and message.
//   - Callbacks of this ABI version missing from an older host are reported as
//     SHOAL_ERR_UNSUPPORTED rather than called.
//   - JSON is not the veneer's business: parse and write payloads with a JSON library
//     (docs/adr/0009-json-for-plugins.md recommends nlohmann/json; examples/hello uses it).
#pragma once

#include <shoal/abi.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shoal {

inline shoal_str toStr(std::string_view s) noexcept { return shoal_str{s.data(), s.size()}; }
inline std::string_view toView(shoal_str s) noexcept {
  return s.data == nullptr ? std::string_view{} : std::string_view{s.data, s.len};
}

// Throw from plugin code to fail with a specific status (default: SHOAL_ERR_FAILED).
class PluginError : public std::runtime_error {
 public:
  explicit PluginError(const std::string& message, shoal_status status = SHOAL_ERR_FAILED)
      : std::runtime_error(message), status_(status) {}
  shoal_status status() const noexcept { return status_; }

 private:
  shoal_status status_;
};

// Thrown by the veneer when a host call fails.
class HostError : public std::runtime_error {
 public:
  HostError(shoal_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  shoal_status status() const noexcept { return status_; }

 private:
  shoal_status status_;
};

class Host;

namespace detail {

// Owns a shoal_buffer filled by the host and frees it with the host's allocator.
class HostBuffer {
 public:
  explicit HostBuffer(const shoal_host_api* api) : api_(api) {}
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  ~HostBuffer() {
    if (buffer_.data != nullptr) api_->callback_buffer_free(&buffer_);
  }
  shoal_buffer* get() noexcept { return &buffer_; }
  std::string str() const { return buffer_.data ? std::string(buffer_.data, buffer_.len) : ""; }

 private:
  const shoal_host_api* api_;
  shoal_buffer buffer_{nullptr, 0};
};

// True when the host's table is large enough to contain `member`.
template <typename Member>
bool hostOffers(const shoal_host_api* api, Member shoal_host_api::*member) {
  const auto* base = reinterpret_cast<const char*>(api);
  const auto* field = reinterpret_cast<const char*>(&(api->*member));
  return static_cast<std::size_t>(field - base) + sizeof(Member) <= api->struct_size &&
         api->*member != nullptr;
}

// Throws HostError with the host's message (or a generic one) unless `status` is SHOAL_OK.
inline void check(shoal_status status, HostBuffer& error, const char* what) {
  if (status == SHOAL_OK) return;
  std::string message = error.str();
  if (message.empty()) message = std::string(what) + " failed with status " +
                                 std::to_string(static_cast<int>(status));
  throw HostError(status, message);
}

}  // namespace detail

// The answer of a callback: output text (command output, JSON data) and an error message.
class Reply {
 public:
  Reply(const shoal_host_api* api, shoal_reply* reply) : api_(api), reply_(reply) {}
  void append(std::string_view text) { api_->callback_reply_append(reply_, toStr(text)); }
  void setError(std::string_view message) {
    api_->callback_reply_set_error(reply_, toStr(message));
  }
  // ABI 1.3, API replies only: answer with `httpStatus` (abi.h callback_reply_set_http_status
  // lists the codes). Throws HostError for a code outside that set, on any other reply, or on
  // an older host.
  void setHttpStatus(std::uint32_t httpStatus) {
    if (!detail::hostOffers(api_, &shoal_host_api::callback_reply_set_http_status))
      throw HostError(SHOAL_ERR_UNSUPPORTED, "this shoald offers no reply_set_http_status; it needs ABI 1.3");
    const shoal_status status = api_->callback_reply_set_http_status(reply_, httpStatus);
    if (status != SHOAL_OK)
      throw HostError(status, "HTTP status " + std::to_string(httpStatus) +
                                  (status == SHOAL_ERR_UNSUPPORTED ? " can only be set on the reply of an API request"
                                                                   : " is not one a plugin may answer with"));
  }

 private:
  const shoal_host_api* api_;
  shoal_reply* reply_;
};

// What a queue handler learns about the delivery it applies (ABI 1.3 on_apply_ctx).
struct ApplyContext {
  std::int64_t commandId = 0;   // the same on every node the command reaches
  std::int64_t deliveryId = 0;  // this node's delivery of it
  std::int64_t nodeId = 0;
  std::uint32_t attempt = 1;    // 1 on the first try
  std::string_view kind, orderingKey;
};

struct Document {
  std::string key;
  std::string json;
  std::int64_t revision = 0;
};

// A document-store transaction in the plugin's namespace. Not committed = rolled back.
// The store is the process's own: on the manager the manager's, on a node that node's local
// store. Nothing replicates between them; a node's writes are invisible to the manager and
// the manager's to every node. Send state to nodes in commands; read what nodes did with
// Host::commandJson.
class Transaction {
 public:
  Transaction(const shoal_host_api* api, shoal_txn* txn) : api_(api), txn_(txn) {}
  Transaction(Transaction&& other) noexcept
      : api_(other.api_), txn_(std::exchange(other.txn_, nullptr)) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction() {
    if (txn_ != nullptr) api_->callback_txn_end(txn_);
  }

  std::optional<Document> get(std::string_view collection, std::string_view key) {
    detail::HostBuffer json(api_), error(api_);
    std::int64_t revision = 0;
    shoal_status s = api_->callback_doc_get(live(), toStr(collection), toStr(key), json.get(),
                                            &revision, error.get());
    if (s == SHOAL_ERR_NOT_FOUND) return std::nullopt;
    detail::check(s, error, "doc_get");
    return Document{std::string(key), json.str(), revision};
  }

  // expectedRevision: -1 unconditional, 0 must not exist, n must match. Returns the new one.
  std::int64_t put(std::string_view collection, std::string_view key, std::string_view json,
                   std::int64_t expectedRevision = -1) {
    detail::HostBuffer error(api_);
    std::int64_t revision = 0;
    detail::check(api_->callback_doc_put(live(), toStr(collection), toStr(key), toStr(json),
                                         expectedRevision, &revision, error.get()),
                  error, "doc_put");
    return revision;
  }

  // False when the document did not exist.
  bool remove(std::string_view collection, std::string_view key) {
    detail::HostBuffer error(api_);
    shoal_status s = api_->callback_doc_delete(live(), toStr(collection), toStr(key),
                                               error.get());
    if (s == SHOAL_ERR_NOT_FOUND) return false;
    detail::check(s, error, "doc_delete");
    return true;
  }

  std::vector<Document> list(std::string_view collection, std::string_view keyPrefix = {}) {
    std::vector<Document> out;
    detail::HostBuffer error(api_);
    auto visit = [](void* user, shoal_str key, shoal_str json, std::int64_t revision) -> int {
      static_cast<std::vector<Document>*>(user)->push_back(
          Document{std::string(toView(key)), std::string(toView(json)), revision});
      return 0;
    };
    detail::check(api_->callback_doc_list(live(), toStr(collection), toStr(keyPrefix), visit,
                                          &out, error.get()),
                  error, "doc_list");
    return out;
  }

  void commit() {
    detail::HostBuffer error(api_);
    shoal_txn* txn = std::exchange(txn_, nullptr);
    if (txn == nullptr) throw HostError(SHOAL_ERR_INVALID_ARGUMENT, "transaction already ended");
    detail::check(api_->callback_txn_commit(txn, error.get()), error, "txn_commit");
  }

 private:
  shoal_txn* live() const {
    if (txn_ == nullptr) throw HostError(SHOAL_ERR_INVALID_ARGUMENT, "transaction already ended");
    return txn_;
  }
  const shoal_host_api* api_;
  shoal_txn* txn_;
};

// What the host offers a plugin at any time after init began.
class Host {
 public:
  Host(const shoal_host_api* api, shoal_plugin_ctx* ctx) : api_(api), ctx_(ctx) {}

  void log(shoal_log_level level, std::string_view message) const {
    api_->callback_log(ctx_, level, toStr(message));
  }
  void info(std::string_view message) const { log(SHOAL_LOG_INFO, message); }
  void warning(std::string_view message) const { log(SHOAL_LOG_WARNING, message); }
  void error(std::string_view message) const { log(SHOAL_LOG_ERROR, message); }
  void debug(std::string_view message) const { log(SHOAL_LOG_DEBUG, message); }

  // The value of `key` in [plugin.NAME] of shoald's configuration, if set.
  std::optional<std::string> config(std::string_view key) const {
    detail::HostBuffer value(api_), error(api_);
    shoal_status s = api_->callback_config_get(ctx_, toStr(key), value.get(), error.get());
    if (s == SHOAL_ERR_NOT_FOUND) return std::nullopt;
    detail::check(s, error, "config_get");
    return value.str();
  }
  std::string config(std::string_view key, std::string fallback) const {
    auto value = config(key);
    return value ? *value : std::move(fallback);
  }

  Transaction transaction() const {
    detail::HostBuffer error(api_);
    shoal_txn* txn = nullptr;
    detail::check(api_->callback_txn_begin(ctx_, &txn, error.get()), error, "txn_begin");
    return Transaction(api_, txn);
  }

  // ---- ABI 1.1; each throws HostError(SHOAL_ERR_UNSUPPORTED) on an older host ----

  // {"role": ..., "node_id": ..., "data_dir": ..., "host_version": ...} (see abi.h).
  std::string hostInfoJson() const {
    return call(&shoal_host_api::callback_host_info, "host_info");
  }
  // Put a command into the Command Queue (manager only); returns {"id":..,"deliveries":..}.
  std::string enqueue(std::string_view requestJson) const {
    require(&shoal_host_api::callback_enqueue, "enqueue");
    detail::HostBuffer out(api_), error(api_);
    detail::check(api_->callback_enqueue(ctx_, toStr(requestJson), out.get(), error.get()), error,
                  "enqueue");
    return out.str();
  }
  // The health of every probed service on every node, a JSON array (manager only).
  std::string healthJson() const {
    return call(&shoal_host_api::callback_health_list, "health_list");
  }
  // True when the host offers ABI 1.1's callbacks.
  bool offersAbi11() const {
    return detail::hostOffers(api_, &shoal_host_api::callback_register_api);
  }

  // ---- ABI 1.2 ----

  // Hand statistics samples (a JSON array, see callback_stats_emit in abi.h) to the kernel.
  void emitStats(std::string_view samplesJson) const {
    require(&shoal_host_api::callback_stats_emit, "stats_emit", "1.2");
    detail::HostBuffer error(api_);
    detail::check(api_->callback_stats_emit(ctx_, toStr(samplesJson), error.get()), error, "stats_emit");
  }
  // True when the host records statistics samples (ABI 1.2).
  bool offersStats() const {
    return detail::hostOffers(api_, &shoal_host_api::callback_stats_emit);
  }

  // ---- ABI 1.4 ----

  // The series this plugin's nodes may report (a JSON array of names, see
  // callback_stats_declare in abi.h); manager only. Replaces the previous declaration.
  void declareStats(std::string_view seriesJson) const {
    require(&shoal_host_api::callback_stats_declare, "stats_declare", "1.4");
    detail::HostBuffer error(api_);
    detail::check(api_->callback_stats_declare(ctx_, toStr(seriesJson), error.get()), error, "stats_declare");
  }
  // True when the host takes declarations of statistics series (ABI 1.4).
  bool offersStatsDeclare() const {
    return detail::hostOffers(api_, &shoal_host_api::callback_stats_declare);
  }

  // ---- ABI 1.5 ----

  // Before creating an object of this plugin's limit `dimension` (declared with
  // Registrar::limit, counts empty) for `account`: may the account have `wouldHave` of them?
  // Returns when it may. Throws HostError: SHOAL_ERR_CONFLICT with the kernel's refusal
  // ("account 'acme' is at its limit of 3 for http.disk_mb (Disk space (MB))"), which a
  // handler lets through unchanged (an API answer of 409); SHOAL_ERR_NOT_FOUND for an unknown
  // account or an undeclared dimension; SHOAL_ERR_UNSUPPORTED on a node, or on a host older
  // than ABI 1.5. Manager only.
  void checkLimit(std::string_view account, std::string_view dimension, std::int64_t wouldHave) const {
    require(&shoal_host_api::callback_limit_check, "limit_check", "1.5");
    detail::HostBuffer error(api_);
    detail::check(api_->callback_limit_check(ctx_, toStr(account), toStr(dimension), wouldHave, error.get()),
                  error, "limit_check");
  }
  // True when the host takes limit declarations and checks (ABI 1.5).
  bool offersLimits() const {
    return detail::hostOffers(api_, &shoal_host_api::callback_register_limit) &&
           detail::hostOffers(api_, &shoal_host_api::callback_limit_check);
  }

  // ---- ABI 1.3 ----

  // One command and its deliveries, as JSON (manager only; see callback_command_get in
  // abi.h): what became of something the plugin enqueued. nullopt for an unknown id.
  std::optional<std::string> commandJson(std::int64_t commandId) const {
    require(&shoal_host_api::callback_command_get, "command_get", "1.3");
    detail::HostBuffer out(api_), error(api_);
    shoal_status s = api_->callback_command_get(ctx_, commandId, out.get(), error.get());
    if (s == SHOAL_ERR_NOT_FOUND) return std::nullopt;
    detail::check(s, error, "command_get");
    return out.str();
  }
  // True when the host offers ABI 1.3's callbacks.
  bool offersAbi13() const {
    return detail::hostOffers(api_, &shoal_host_api::callback_register_metrics);
  }

  // True when the host asks plugins how many connections they hold to a node (ABI 1.3).
  bool offersConnections() const {
    return detail::hostOffers(api_, &shoal_host_api::callback_register_connections);
  }

  std::string_view hostVersion() const { return toView(api_->host_version); }
  const shoal_host_api* api() const noexcept { return api_; }
  shoal_plugin_ctx* context() const noexcept { return ctx_; }

 private:
  template <typename Member>
  void require(Member shoal_host_api::*member, const char* what, const char* since = "1.1") const {
    if (!detail::hostOffers(api_, member))
      throw HostError(SHOAL_ERR_UNSUPPORTED, std::string("this shoald (ABI ") +
                                                 std::to_string(api_->abi_major) + "." +
                                                 std::to_string(api_->abi_minor) + ") offers no " +
                                                 what + "; it needs ABI " + since);
  }
  using JsonCallback = shoal_status (*)(shoal_plugin_ctx*, shoal_buffer*, shoal_buffer*);
  std::string call(JsonCallback shoal_host_api::*member, const char* what) const {
    require(member, what);
    detail::HostBuffer out(api_), error(api_);
    detail::check((api_->*member)(ctx_, out.get(), error.get()), error, what);
    return out.str();
  }

  const shoal_host_api* api_;
  shoal_plugin_ctx* ctx_;
};

// A probe description for the kernel's health engine.
struct ProbeSpec {
  std::string service;
  shoal_probe_kind kind = SHOAL_PROBE_TCP;
  std::uint16_t port = 0;
  bool tls = false;
  std::uint32_t intervalMs = 0, timeoutMs = 0, rise = 0, fall = 0;  // 0 = engine default
  std::vector<std::pair<std::string, std::string>> steps;            // {send, expect}
  std::string httpMethod = "GET", httpPath = "/", httpHost;
  std::uint32_t httpExpectStatus = 200;
  // ABI 1.3: the daemon serving the service ("nginx"); services naming the same daemon are
  // drained and restored together by a rolling restart. Empty = a daemon of its own.
  std::string daemonName;

  static ProbeSpec tcp(std::string service, std::uint16_t port) {
    ProbeSpec p;
    p.service = std::move(service);
    p.port = port;
    return p;
  }
  static ProbeSpec http(std::string service, std::uint16_t port, std::string path = "/",
                        std::uint32_t expectStatus = 200) {
    ProbeSpec p = tcp(std::move(service), port);
    p.kind = SHOAL_PROBE_HTTP;
    p.httpPath = std::move(path);
    p.httpExpectStatus = expectStatus;
    return p;
  }
  ProbeSpec& step(std::string send, std::string expect) {
    steps.emplace_back(std::move(send), std::move(expect));
    return *this;
  }
  ProbeSpec& withTls(bool on = true) { tls = on; return *this; }
  ProbeSpec& daemon(std::string name) { daemonName = std::move(name); return *this; }
  ProbeSpec& timing(std::uint32_t interval, std::uint32_t timeout, std::uint32_t riseCount,
                    std::uint32_t fallCount) {
    intervalMs = interval; timeoutMs = timeout; rise = riseCount; fall = fallCount;
    return *this;
  }
};

// ABI 1.5: the `counts` of a limit the kernel counts itself: the account's domains.
inline constexpr std::string_view kLimitCountsDomains = "domains";

// Callback signatures. Throw (PluginError or anything else) to fail.
using ApplyFn = std::function<void(std::string_view payloadJson, Reply& reply)>;
// ABI 1.3: apply with the delivery's identity.
using ApplyWithContextFn =
    std::function<void(const ApplyContext& context, std::string_view payloadJson, Reply& reply)>;
// ABI 1.3: the plugin's samples for /metrics, a JSON array (see shoal_metrics_desc).
using MetricsFn = std::function<std::string()>;
using ValidateFn = std::function<void(std::string_view payloadJson)>;
using PanelDataFn = std::function<std::string(std::string_view sectionId, std::string_view queryJson)>;
using PanelActionFn = std::function<std::string(std::string_view actionId, std::string_view inputJson)>;
using EventFn = std::function<void(std::string_view event, std::string_view payloadJson)>;
// An API request (ABI 1.1): returns the JSON response body. Throw PluginError with
// SHOAL_ERR_INVALID_ARGUMENT (400), SHOAL_ERR_NOT_FOUND (404), SHOAL_ERR_CONFLICT (409),
// SHOAL_ERR_FAILED (422), SHOAL_ERR_METHOD_NOT_ALLOWED (405, ABI 1.3), or HttpError for
// another status; answer 201/202/204 with ApiRequest::setStatus (ABI 1.3).
struct ApiRequest {
  std::string_view method, path, query, body;
  // ABI 1.3: the HTTP status of a successful answer, 200 201 202 or 204 (204 sends no body).
  // Throws HostError on an older host or for another code.
  void setStatus(std::uint32_t httpStatus) const {
    if (httpStatus < 200 || httpStatus >= 300)
      throw HostError(SHOAL_ERR_INVALID_ARGUMENT, "setStatus takes a success status; throw HttpError for " +
                                                      std::to_string(httpStatus));
    if (reply != nullptr) reply->setHttpStatus(httpStatus);
  }
  Reply* reply = nullptr;  // set by the veneer
};
using ApiFn = std::function<std::string(const ApiRequest& request)>;

// Throw from an API handler to answer an error status of abi.h's documented set (400 403 404
// 405 409 410 412 422 429 503) with `message`, e.g. HttpError(503, "the director is down").
class HttpError : public PluginError {
 public:
  HttpError(std::uint32_t httpStatus, const std::string& message)
      : PluginError(message, statusFor(httpStatus)), httpStatus_(httpStatus) {}
  std::uint32_t httpStatus() const noexcept { return httpStatus_; }

 private:
  static shoal_status statusFor(std::uint32_t http) {
    switch (http) {
      case 400: return SHOAL_ERR_INVALID_ARGUMENT;
      case 404: return SHOAL_ERR_NOT_FOUND;
      case 405: return SHOAL_ERR_METHOD_NOT_ALLOWED;
      case 409: return SHOAL_ERR_CONFLICT;
      case 422: return SHOAL_ERR_FAILED;
      default: return SHOAL_ERR_FAILED;  // the chosen status says the rest
    }
  }
  std::uint32_t httpStatus_;
};

// Answers 405 for a method the path does not take, e.g.
//   if (request.method != "GET") throw shoal::MethodNotAllowed(request, "GET");
class MethodNotAllowed : public HttpError {
 public:
  MethodNotAllowed(const ApiRequest& request, std::string_view allowed)
      : HttpError(405, std::string(request.method) + " is not allowed on " + std::string(request.path) +
                           " (allowed: " + std::string(allowed) + ")") {}
};

namespace detail {

// Runs `body`, turning every exception into a status and a message in `reply`.
template <typename Body>
shoal_status guard(const shoal_host_api* api, shoal_reply* reply, Body&& body) noexcept {
  try {
    body();
    return SHOAL_OK;
  } catch (const PluginError& e) {
    if (reply) api->callback_reply_set_error(reply, toStr(e.what()));
    return e.status() == SHOAL_OK ? SHOAL_ERR_FAILED : e.status();
  } catch (const HostError& e) {
    if (reply) api->callback_reply_set_error(reply, toStr(e.what()));
    return e.status() == SHOAL_OK ? SHOAL_ERR_FAILED : e.status();
  } catch (const std::exception& e) {
    if (reply) api->callback_reply_set_error(reply, toStr(std::string("exception: ") + e.what()));
    return SHOAL_ERR_EXCEPTION;
  } catch (...) {
    if (reply) api->callback_reply_set_error(reply, toStr("unknown exception"));
    return SHOAL_ERR_EXCEPTION;
  }
}

struct QueueHandlerBinding {
  const shoal_host_api* api;
  ApplyFn apply;
  ValidateFn validate;
  ApplyWithContextFn applyWithContext;
};
struct MetricsBinding {
  const shoal_host_api* api;
  MetricsFn collect;
};
struct PanelBinding {
  const shoal_host_api* api;
  PanelDataFn data;
  PanelActionFn action;
};
struct HookBinding {
  const shoal_host_api* api;
  EventFn handler;
};
struct ApiBinding {
  const shoal_host_api* api;
  ApiFn handler;
};
struct ConnectionsBinding {
  const shoal_host_api* api;
  std::function<std::string(std::string_view)> count;
};

}  // namespace detail

// Registration of contributions; valid only inside Plugin::init.
class Registrar {
 public:
  Registrar(const Host& host) : host_(host) {}

  void queueHandler(std::string_view kind, std::string_view description, ApplyFn apply,
                    ValidateFn validate = {}) {
    registerQueueHandler(kind, description,
                         detail::QueueHandlerBinding{host_.api(), std::move(apply), std::move(validate), {}});
  }
  // ABI 1.3: the handler also learns the command and delivery it applies. Throws
  // HostError(SHOAL_ERR_UNSUPPORTED) on an older host, which would not pass them.
  void queueHandler(std::string_view kind, std::string_view description, ApplyWithContextFn apply,
                    ValidateFn validate = {}) {
    if (!host_.offersAbi13())
      throw HostError(SHOAL_ERR_UNSUPPORTED, "this shoald passes no apply context; it needs ABI 1.3");
    registerQueueHandler(kind, description,
                         detail::QueueHandlerBinding{host_.api(), {}, std::move(validate), std::move(apply)});
  }

  // ABI 1.3: add samples to the manager's /metrics; `collect` returns the JSON array that
  // shoal_metrics_desc describes and runs on every scrape.
  void metrics(MetricsFn collect) {
    if (!host_.offersAbi13())
      throw HostError(SHOAL_ERR_UNSUPPORTED, "this shoald takes no plugin metrics; it needs ABI 1.3");
    auto* b = keep(metrics_, detail::MetricsBinding{host_.api(), std::move(collect)});
    shoal_metrics_desc d{};
    d.struct_size = sizeof d;
    d.user = b;
    d.on_collect = [](void* user, shoal_reply* reply) -> shoal_status {
      auto* self = static_cast<detail::MetricsBinding*>(user);
      return detail::guard(self->api, reply, [&] {
        std::string out = self->collect();
        self->api->callback_reply_append(reply, toStr(out));
      });
    };
    detail::HostBuffer error(host_.api());
    detail::check(host_.api()->callback_register_metrics(host_.context(), &d, error.get()), error,
                  "register_metrics");
  }

 private:
  void registerQueueHandler(std::string_view kind, std::string_view description,
                            detail::QueueHandlerBinding binding) {
    auto* b = keep(bindings_, std::move(binding));
    shoal_queue_handler_desc d{};
    d.struct_size = sizeof d;
    d.kind = toStr(kind);
    d.description = toStr(description);
    d.user = b;
    if (b->applyWithContext) {
      d.on_apply_ctx = [](void* user, const shoal_apply_context* context, shoal_str payload,
                          shoal_reply* reply) -> shoal_status {
        auto* self = static_cast<detail::QueueHandlerBinding*>(user);
        return detail::guard(self->api, reply, [&] {
          ApplyContext c;
          const auto covers = [&](std::size_t end) { return context->struct_size >= end; };
          if (covers(offsetof(shoal_apply_context, ordering_key) + sizeof(shoal_str))) {
            c.commandId = context->command_id;
            c.deliveryId = context->delivery_id;
            c.nodeId = context->node_id;
            c.attempt = context->attempt;
            c.kind = toView(context->kind);
            c.orderingKey = toView(context->ordering_key);
          }
          Reply r(self->api, reply);
          self->applyWithContext(c, toView(payload), r);
        });
      };
    } else {
      d.on_apply = [](void* user, shoal_str payload, shoal_reply* reply) -> shoal_status {
        auto* self = static_cast<detail::QueueHandlerBinding*>(user);
        return detail::guard(self->api, reply, [&] {
          Reply r(self->api, reply);
          self->apply(toView(payload), r);
        });
      };
    }
    if (b->validate) {
      d.on_validate = [](void* user, shoal_str payload, shoal_reply* reply) -> shoal_status {
        auto* self = static_cast<detail::QueueHandlerBinding*>(user);
        return detail::guard(self->api, reply, [&] { self->validate(toView(payload)); });
      };
    }
    detail::HostBuffer error(host_.api());
    detail::check(host_.api()->callback_register_queue_handler(host_.context(), &d, error.get()),
                  error, "register_queue_handler");
  }

 public:
  void probe(const ProbeSpec& spec) {
    std::vector<shoal_probe_step> steps;
    for (const auto& [send, expect] : spec.steps) steps.push_back({toStr(send), toStr(expect)});
    shoal_probe_desc d{};
    d.struct_size = sizeof d;
    d.service = toStr(spec.service);
    d.kind = spec.kind;
    d.port = spec.port;
    d.use_tls = spec.tls ? 1 : 0;
    d.interval_ms = spec.intervalMs;
    d.timeout_ms = spec.timeoutMs;
    d.rise = spec.rise;
    d.fall = spec.fall;
    d.steps = steps.data();
    d.step_count = steps.size();
    d.http_method = toStr(spec.httpMethod);
    d.http_path = toStr(spec.httpPath);
    d.http_host = toStr(spec.httpHost);
    d.http_expect_status = spec.httpExpectStatus;
    d.daemon = toStr(spec.daemonName);
    // A host older than 1.3 refuses a descriptor larger than it knows and has no notion of a
    // shared daemon: it gets the 1.2 descriptor, and restarts drain services one by one.
    if (host_.api()->abi_minor < 3)
      d.struct_size = offsetof(shoal_probe_desc, http_expect_status) + sizeof d.http_expect_status;
    detail::HostBuffer error(host_.api());
    detail::check(host_.api()->callback_register_probe(host_.context(), &d, error.get()), error,
                  "register_probe");
  }

  void panel(std::string_view id, std::string_view definitionJson, PanelDataFn data = {},
             PanelActionFn action = {}) {
    auto* b = keep(panels_, detail::PanelBinding{host_.api(), std::move(data), std::move(action)});
    shoal_panel_desc d{};
    d.struct_size = sizeof d;
    d.id = toStr(id);
    d.definition_json = toStr(definitionJson);
    d.user = b;
    if (b->data) {
      d.on_data = [](void* user, shoal_str section, shoal_str query,
                     shoal_reply* reply) -> shoal_status {
        auto* self = static_cast<detail::PanelBinding*>(user);
        return detail::guard(self->api, reply, [&] {
          std::string out = self->data(toView(section), toView(query));
          self->api->callback_reply_append(reply, toStr(out));
        });
      };
    }
    if (b->action) {
      d.on_action = [](void* user, shoal_str action, shoal_str input,
                       shoal_reply* reply) -> shoal_status {
        auto* self = static_cast<detail::PanelBinding*>(user);
        return detail::guard(self->api, reply, [&] {
          std::string out = self->action(toView(action), toView(input));
          self->api->callback_reply_append(reply, toStr(out));
        });
      };
    }
    detail::HostBuffer error(host_.api());
    detail::check(host_.api()->callback_register_panel(host_.context(), &d, error.get()), error,
                  "register_panel");
  }

  void hook(std::string_view event, EventFn handler) {
    auto* b = keep(hooks_, detail::HookBinding{host_.api(), std::move(handler)});
    shoal_hook_desc d{};
    d.struct_size = sizeof d;
    d.event = toStr(event);
    d.user = b;
    d.on_event = [](void* user, shoal_str ev, shoal_str payload,
                    shoal_reply* reply) -> shoal_status {
      auto* self = static_cast<detail::HookBinding*>(user);
      return detail::guard(self->api, reply,
                           [&] { self->handler(toView(ev), toView(payload)); });
    };
    detail::HostBuffer error(host_.api());
    detail::check(host_.api()->callback_register_hook(host_.context(), &d, error.get()), error,
                  "register_hook");
  }

  // Serve /v1/plugins/<name>/... on the manager's API (ABI 1.1; admins only).
  void api(ApiFn handler) {
    if (!detail::hostOffers(host_.api(), &shoal_host_api::callback_register_api))
      throw HostError(SHOAL_ERR_UNSUPPORTED, "this shoald offers no plugin API endpoints; it needs ABI 1.1");
    auto* b = keep(apis_, detail::ApiBinding{host_.api(), std::move(handler)});
    shoal_api_desc d{};
    d.struct_size = sizeof d;
    d.user = b;
    d.on_request = [](void* user, shoal_str method, shoal_str path, shoal_str query, shoal_str body,
                      shoal_reply* reply) -> shoal_status {
      auto* self = static_cast<detail::ApiBinding*>(user);
      Reply r(self->api, reply);
      const bool choosesStatus = detail::hostOffers(self->api, &shoal_host_api::callback_reply_set_http_status);
      return detail::guard(self->api, reply, [&] {
        try {
          ApiRequest request{toView(method), toView(path), toView(query), toView(body),
                             choosesStatus ? &r : nullptr};
          std::string out = self->handler(request);
          self->api->callback_reply_append(reply, toStr(out));
        } catch (const HttpError& e) {
          if (choosesStatus) self->api->callback_reply_set_http_status(reply, e.httpStatus());
          throw;
        }
      });
    };
    detail::HostBuffer error(host_.api());
    detail::check(host_.api()->callback_register_api(host_.context(), &d, error.get()), error,
                  "register_api");
  }

  // Answer how many connections the plugin's dataplane holds to a node (ABI 1.3, manager
  // only): `count` gets {"id":..,"address":..,"hostname":..} and returns the JSON object
  // shoal_connections_desc describes.
  void connections(std::function<std::string(std::string_view nodeJson)> count) {
    if (!host_.offersConnections())
      throw HostError(SHOAL_ERR_UNSUPPORTED, "this shoald asks no plugin for node connections; it needs ABI 1.3");
    auto* b = keep(connections_, detail::ConnectionsBinding{host_.api(), std::move(count)});
    shoal_connections_desc d{};
    d.struct_size = sizeof d;
    d.user = b;
    d.on_node_connections = [](void* user, shoal_str node, shoal_reply* reply) -> shoal_status {
      auto* self = static_cast<detail::ConnectionsBinding*>(user);
      return detail::guard(self->api, reply, [&] {
        std::string out = self->count(toView(node));
        self->api->callback_reply_append(reply, toStr(out));
      });
    };
    detail::HostBuffer error(host_.api());
    detail::check(host_.api()->callback_register_connections(host_.context(), &d, error.get()),
                  error, "register_connections");
  }

  // ABI 1.5: declare a limit dimension of hosting accounts, full name "<plugin>.<dimension>"
  // (see shoal_limit_desc in abi.h). `counts` is kLimitCountsDomains when the kernel counts
  // the account's domains itself, or empty when the plugin counts and asks Host::checkLimit
  // before it creates an object. Throws HostError(SHOAL_ERR_UNSUPPORTED) on an older host,
  // which knows no limits: test Host::offersLimits() first to load there without them.
  void limit(std::string_view dimension, std::string_view label, std::string_view counts = {}) {
    if (!detail::hostOffers(host_.api(), &shoal_host_api::callback_register_limit))
      throw HostError(SHOAL_ERR_UNSUPPORTED, "this shoald takes no limit declarations; it needs ABI 1.5");
    shoal_limit_desc d{};
    d.struct_size = sizeof d;
    d.dimension = toStr(dimension);
    d.label = toStr(label);
    d.counts = toStr(counts);
    detail::HostBuffer error(host_.api());
    detail::check(host_.api()->callback_register_limit(host_.context(), &d, error.get()), error,
                  "register_limit");
  }

  const Host& host() const { return host_; }

 private:
  // Bindings live in lists (stable addresses) owned by the registrar, which the plugin
  // adapter keeps until on_shutdown.
  template <typename T>
  T* keep(std::list<T>& list, T value) {
    list.push_back(std::move(value));
    return &list.back();
  }

  Host host_;
  std::list<detail::QueueHandlerBinding> bindings_;
  std::list<detail::PanelBinding> panels_;
  std::list<detail::HookBinding> hooks_;
  std::list<detail::ApiBinding> apis_;
  std::list<detail::ConnectionsBinding> connections_;
  std::list<detail::MetricsBinding> metrics_;
};

// Base class of a plugin. The host reaches it only through SHOAL_PLUGIN's adapter.
class Plugin {
 public:
  virtual ~Plugin() = default;
  // Register everything the plugin contributes. Throw to refuse loading.
  virtual void init(Registrar& registrar) = 0;
  // Stop any thread the plugin started; called once before the library may be unloaded.
  virtual void shutdown() {}

  // Valid from init() on.
  const Host& host() const { return *host_; }

 private:
  template <typename T>
  friend struct PluginAdapter;
  std::optional<Host> host_;
};

// Glue between the C entry point and a Plugin subclass. One instance per library.
template <typename T>
struct PluginAdapter {
  static PluginAdapter& instance() {
    static PluginAdapter adapter;
    return adapter;
  }

  const shoal_plugin_api* describe(const shoal_host_api* host, const char* name,
                                   const char* version, const char* description) {
    // A host of another ABI major cannot be talked to at all.
    if (host == nullptr || host->abi_major != SHOAL_ABI_VERSION_MAJOR) return nullptr;
    hostApi = host;
    api.struct_size = sizeof api;
    api.abi_major = SHOAL_ABI_VERSION_MAJOR;
    api.abi_minor = SHOAL_ABI_VERSION_MINOR;
    api.name = toStr(name);
    api.version = toStr(version);
    api.description = toStr(description);
    api.instance = this;
    api.on_init = &PluginAdapter::onInit;
    api.on_shutdown = &PluginAdapter::onShutdown;
    return &api;
  }

  static shoal_status onInit(void* self, shoal_plugin_ctx* ctx, shoal_reply* reply) {
    auto* adapter = static_cast<PluginAdapter*>(self);
    return detail::guard(adapter->hostApi, reply, [&] {
      Host host(adapter->hostApi, ctx);
      adapter->plugin = std::make_unique<T>();
      adapter->plugin->host_.emplace(host);
      adapter->registrar = std::make_unique<Registrar>(host);
      adapter->plugin->init(*adapter->registrar);
    });
  }

  static void onShutdown(void* self) {
    auto* adapter = static_cast<PluginAdapter*>(self);
    detail::guard(adapter->hostApi, nullptr, [&] {
      if (adapter->plugin) adapter->plugin->shutdown();
    });
    adapter->plugin.reset();
    adapter->registrar.reset();
  }

  const shoal_host_api* hostApi = nullptr;
  shoal_plugin_api api{};
  std::unique_ptr<T> plugin;
  std::unique_ptr<Registrar> registrar;
};

}  // namespace shoal

// Exports the plugin's entry point. Use once per plugin library, at namespace scope.
#define SHOAL_PLUGIN(PluginClass, name, version, description)                             \
  extern "C" SHOAL_EXPORT const shoal_plugin_api* shoal_plugin_entry(                      \
      const shoal_host_api* host) {                                                        \
    return ::shoal::PluginAdapter<PluginClass>::instance().describe(host, name, version,   \
                                                                    description);          \
  }
