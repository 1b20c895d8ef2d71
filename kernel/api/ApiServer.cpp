#include "api/ApiServer.hpp"

#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Logger.h>
#include <Poco/URI.h>
#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "common/Error.hpp"

namespace shoal::api {
namespace {

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(path);
  while (std::getline(in, part, '/'))
    if (!part.empty()) parts.push_back(part);
  return parts;
}

// Matches `path` against a route pattern; fills `params` from {name} segments. A last
// segment {name...} takes the rest of the path (one or more segments, joined by '/').
bool match(const std::string& pattern, const std::vector<std::string>& path,
           std::map<std::string, std::string>& params) {
  auto parts = split(pattern);
  const bool rest = !parts.empty() && parts.back().size() > 5 &&
                    parts.back().compare(parts.back().size() - 4, 4, "...}") == 0;
  if (rest ? path.size() < parts.size() : parts.size() != path.size()) return false;
  std::map<std::string, std::string> found;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto& p = parts[i];
    if (rest && i + 1 == parts.size()) {
      std::string joined;
      for (std::size_t j = i; j < path.size(); ++j) joined += (j > i ? "/" : "") + path[j];
      found[p.substr(1, p.size() - 5)] = joined;
    } else if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      found[p.substr(1, p.size() - 2)] = path[i];
    } else if (p != path[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

const char* codeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "invalid_argument";
    case ErrorCode::NotFound: return "not_found";
    case ErrorCode::Conflict: return "conflict";
    case ErrorCode::Unsupported: return "unsupported";
    case ErrorCode::Failed: return "failed";
    case ErrorCode::Internal: return "internal";
  }
  return "internal";
}

int httpStatus(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return 400;
    case ErrorCode::NotFound: return 404;
    case ErrorCode::Conflict: return 409;
    case ErrorCode::Unsupported: return 501;
    case ErrorCode::Failed: return 422;
    case ErrorCode::Internal: return 500;
  }
  return 500;
}

std::string lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Cookie: a=b; c=d
std::map<std::string, std::string> parseCookies(const std::string& header) {
  std::map<std::string, std::string> cookies;
  std::size_t start = 0;
  while (start < header.size()) {
    auto end = header.find(';', start);
    if (end == std::string::npos) end = header.size();
    auto pair = header.substr(start, end - start);
    auto first = pair.find_first_not_of(' ');
    if (first != std::string::npos) pair.erase(0, first);
    auto eq = pair.find('=');
    if (eq != std::string::npos && eq > 0) cookies.emplace(pair.substr(0, eq), pair.substr(eq + 1));
    start = end + 1;
  }
  return cookies;
}

}  // namespace

ApiResponse errorResponse(int status, const std::string& code, const std::string& message) {
  auto error = object();
  error->set("code", code);
  error->set("message", message);
  auto body = object();
  body->set("error", error);
  return ApiResponse{status, body, {}, {}, {}, {}};
}

Poco::JSON::Object::Ptr object() { return new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER); }

ApiResponse ok(Poco::JSON::Object::Ptr body, int status) { return ApiResponse{status, body, {}, {}, {}, {}}; }

std::string ApiRequest::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

Poco::JSON::Object::Ptr ApiRequest::json() const {
  if (body.empty()) return object();
  try {
    Poco::JSON::Parser parser;
    auto parsed = parser.parse(body);
    if (parsed.type() == typeid(Poco::JSON::Object::Ptr)) return parsed.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception& e) {
    throw Error(ErrorCode::InvalidArgument, "request body is not valid JSON: " + e.displayText());
  }
  throw Error(ErrorCode::InvalidArgument, "request body must be a JSON object");
}

std::int64_t ApiRequest::idParam(const std::string& name) const {
  auto it = params.find(name);
  const std::string value = it == params.end() ? "" : it->second;
  try {
    std::size_t used = 0;
    long long id = std::stoll(value, &used);
    if (used == value.size() && id > 0) return id;
  } catch (const std::exception&) {
  }
  throw Error(ErrorCode::InvalidArgument, name + " '" + value + "' must be a positive integer");
}

std::int64_t ApiRequest::queryInt(const std::string& name, std::int64_t fallback, std::int64_t min,
                                  std::int64_t max) const {
  auto it = query.find(name);
  if (it == query.end()) return fallback;
  try {
    std::size_t used = 0;
    long long value = std::stoll(it->second, &used);
    if (used == it->second.size() && value >= min && value <= max) return value;
  } catch (const std::exception&) {
  }
  throw Error(ErrorCode::InvalidArgument, "query parameter " + name + "='" + it->second +
                                              "' must be an integer from " + std::to_string(min) +
                                              " to " + std::to_string(max));
}

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Response = http::response<http::string_body>;

// A fixed number of threads taking tasks from a bounded queue. Tasks must not throw.
class WorkerPool {
 public:
  WorkerPool(int threads, std::size_t maxQueued) : maxQueued_(maxQueued) {
    for (int i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this] { run(); });
  }
  ~WorkerPool() { stop(); }

  // False when the queue is full (unless `admitted`: work of a request already taken in) or
  // the pool has stopped; the caller answers 503.
  bool submit(std::function<void()> task, bool admitted) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_ || (!admitted && queue_.size() >= maxQueued_)) return false;
      queue_.push_back(std::move(task));
    }
    ready_.notify_one();
    return true;
  }
  // Runs what is queued, then joins the threads.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::size_t maxQueued_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// One connection as the server's core sees it: it can be handed a response and closed from
// any thread.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  virtual ~Connection() = default;
  virtual void start() = 0;
  virtual void deliver(Response response) = 0;
  virtual void close() = 0;
};

class Exchange;

void securityHeaders(Response& out, bool tls) {
  // Browsers reach this server for the panel: keep them strict on every answer.
  out.set("X-Content-Type-Options", "nosniff");
  out.set("X-Frame-Options", "DENY");
  out.set("Referrer-Policy", "no-referrer");
  out.set("Content-Security-Policy",
          "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
          "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
  if (tls) out.set("Strict-Transport-Security", "max-age=31536000");
  out.set(http::field::cache_control, "no-store");
}

ApiResponse mapError(const std::exception& error, const ApiRequest& request, Poco::Logger& log) {
  if (const auto* e = dynamic_cast<const Error*>(&error)) {
    if (e->code() == ErrorCode::Internal) log.error(request.method + " " + request.path + ": " + e->what());
    return errorResponse(httpStatus(e->code()), codeName(e->code()), e->what());
  }
  log.error(request.method + " " + request.path + ": " + error.what());
  return errorResponse(500, "internal", std::string("internal error: ") + error.what());
}

ApiResponse busy(const std::string& why) {
  auto response = errorResponse(503, "unavailable", why);
  response.headers.emplace_back("Retry-After", "1");
  return response;
}

}  // namespace

struct ApiServer::Impl {
  Poco::Net::Context::Ptr context;
  ApiServerSettings settings;
  std::vector<Route> routes;
  Authenticator authenticator;
  Auditor auditor;
  std::uint16_t boundPort = 0;
  Poco::Logger& log = Poco::Logger::get("shoald.api");
  bool started = false;
  std::atomic<bool> stopping{false};

  // Open connections, by source address and in total; and every one, to close them at stop.
  // Declared before the io_context: connections still owned by its handlers when it is
  // destroyed give their slot back here.
  std::mutex connectionsMutex;
  std::unordered_map<std::string, std::size_t> perSource;
  std::unordered_map<std::uint64_t, std::weak_ptr<Connection>> open;
  std::uint64_t nextConnection = 0;
  std::condition_variable allClosed;

  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::unique_ptr<net::ssl::context> ssl;
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::steady_timer> acceptRetry;
  std::vector<std::thread> ioThreads;
  std::unique_ptr<WorkerPool> nodePool, adminPool, publicPool;

  WorkerPool& poolFor(Access access) {
    switch (access) {
      case Access::Node:
      case Access::Join: return *nodePool;
      case Access::Admin:
      case Access::Account:
      case Access::SignedIn: return *adminPool;
      case Access::Public: return *publicPool;
    }
    return *publicPool;
  }

  // Takes a connection slot for `peer`; false when a limit is reached.
  bool admit(const std::string& peer, std::uint64_t& id) {
    std::lock_guard lock(connectionsMutex);
    auto& count = perSource[peer];
    if (count >= settings.maxConnectionsPerSource || open.size() >= settings.maxConnections) {
      if (count == 0) perSource.erase(peer);
      return false;
    }
    ++count;
    id = ++nextConnection;
    open.emplace(id, std::weak_ptr<Connection>());
    return true;
  }
  void registerConnection(std::uint64_t id, const std::shared_ptr<Connection>& connection) {
    std::lock_guard lock(connectionsMutex);
    open[id] = connection;
  }
  void release(const std::string& peer, std::uint64_t id) {
    std::lock_guard lock(connectionsMutex);
    open.erase(id);
    auto it = perSource.find(peer);
    if (it != perSource.end() && --it->second == 0) perSource.erase(it);
    if (open.empty()) allClosed.notify_all();
  }

  void accept();
  void onRequest(const std::shared_ptr<Connection>& connection, http::request<http::string_body>&& in,
                 const std::string& peer);
  void run(const std::shared_ptr<Exchange>& exchange, const Route& route, std::map<std::string, std::string> params);

  // The HTTP form of a response: status, security headers, the handler's headers, the body.
  Response render(ApiResponse response, bool head, unsigned version) const {
    Response out{static_cast<http::status>(response.status), version};
    securityHeaders(out, context != nullptr);
    for (const auto& [name, value] : response.headers) {
      if (lower(name) == "cache-control")
        out.set(name, value);
      else
        out.insert(name, value);
    }
    if (response.status == 204) {
      // No Content: no body and no type, whatever the handler put in the response.
      out.content_length(0);
      return out;
    }
    std::string payload;
    if (!response.contentType.empty()) {
      out.set(http::field::content_type, response.contentType);
      payload = std::move(response.rawBody);
    } else {
      out.set(http::field::content_type, "application/json");
      payload = response.rawJson;
      if (payload.empty()) {
        std::ostringstream text;
        Poco::JSON::Stringifier::condense(response.body ? response.body : object(), text);
        payload = text.str();
      }
      payload += "\n";
    }
    out.content_length(payload.size());
    if (!head) out.body() = std::move(payload);  // HEAD: the length of the body it would get
    return out;
  }
};

namespace {

// One request that reached a route, until it is answered: the PendingReply a deferred
// handler holds, and what an ordinary handler's answer goes through.
class Exchange final : public PendingReply, public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(ApiServer::Impl& impl, std::shared_ptr<Connection> connection, ApiRequest request, const Route& route,
           bool head, unsigned version)
      : impl_(impl), connection_(std::move(connection)), request_(std::move(request)), route_(route), head_(head),
        version_(version) {}
  ~Exchange() override {
    if (!answered_) send(errorResponse(500, "internal", "the request was dropped without an answer"));
  }

  const ApiRequest& request() const override { return request_; }
  ApiRequest& request() { return request_; }

  void send(ApiResponse response) override {
    if (answered_.exchange(true)) return;
    if (impl_.auditor) {
      try {
        impl_.auditor(route_, request_, response);
      } catch (const std::exception& e) {
        impl_.log.error("audit of " + request_.method + " " + request_.path + ": " + e.what());
      }
    }
    connection_->deliver(impl_.render(std::move(response), head_, version_));
  }

  void post(std::function<void()> work) override {
    auto self = shared_from_this();
    if (!impl_.poolFor(route_.access).submit([self, work = std::move(work)] { self->guarded(work); }, true))
      send(busy("the server is stopping"));
  }

  // Runs `work`, answering what it throws.
  void guarded(const std::function<void()>& work) {
    try {
      work();
    } catch (const std::exception& e) {
      send(mapError(e, request_, impl_.log));
    }
  }

 private:
  ApiServer::Impl& impl_;
  std::shared_ptr<Connection> connection_;
  ApiRequest request_;
  const Route& route_;
  const bool head_;
  const unsigned version_;
  std::atomic<bool> answered_{false};
};

template <class Stream>
class Session final : public Connection {
 public:
  Session(ApiServer::Impl& impl, Stream stream, std::string peer, std::uint64_t id)
      : impl_(impl), stream_(std::move(stream)), peer_(std::move(peer)), id_(id) {}
  template <class Socket>
  Session(ApiServer::Impl& impl, Socket&& socket, net::ssl::context& ssl, std::string peer, std::uint64_t id)
      : impl_(impl), stream_(std::forward<Socket>(socket), ssl), peer_(std::move(peer)), id_(id) {}
  ~Session() override { impl_.release(peer_, id_); }

  void start() override {
    if constexpr (kTls) {
      lowest().expires_after(impl_.settings.handshakeTimeout);
      stream_.async_handshake(net::ssl::stream_base::server,
                              [self = self()](beast::error_code ec) {
                                if (!ec) self->awaitRequest();
                              });
    } else {
      awaitRequest();
    }
  }

  void deliver(Response response) override {
    net::post(stream_.get_executor(), [self = self(), response = std::move(response)]() mutable {
      self->write(std::move(response));
    });
  }

  void close() override {
    net::post(stream_.get_executor(), [self = self()] { self->lowest().close(); });
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  std::shared_ptr<Session> self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  // Between requests: the idle deadline runs until the first byte of the next request; from
  // there the header deadline counts, however slowly the bytes come.
  void awaitRequest() {
    if (impl_.stopping) return lowest().close();
    if (buffer_.size() > 0) return readHeader();
    lowest().expires_after(impl_.settings.idleTimeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = self()](beast::error_code ec, std::size_t n) {
      self->buffer_.commit(n);
      if (ec && n == 0) return;  // closed, idle too long, or the server stops
      self->readHeader();
    });
  }

  void readHeader() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(impl_.settings.maxBodyBytes);
    lowest().expires_after(impl_.settings.headerTimeout);
    http::async_read_header(stream_, buffer_, *parser_, [self = self()](beast::error_code ec, std::size_t) {
      if (ec) return self->refuse(ec);
      auto& header = self->parser_->get();
      if (beast::iequals(header[http::field::expect], "100-continue")) {
        auto proceed = std::make_shared<http::response<http::empty_body>>(http::status::continue_, header.version());
        self->lowest().expires_after(self->impl_.settings.writeTimeout);
        return http::async_write(self->stream_, *proceed, [self, proceed](beast::error_code ec, std::size_t) {
          if (!ec) self->readBody();
        });
      }
      self->readBody();
    });
  }

  void readBody() {
    if (parser_->is_done()) return received();
    lowest().expires_after(impl_.settings.bodyTimeout);
    http::async_read(stream_, buffer_, *parser_, [self = self()](beast::error_code ec, std::size_t) {
      if (ec) return self->refuse(ec);
      self->received();
    });
  }

  // A request that cannot be read: answered when HTTP went wrong, dropped when the
  // connection did (a deadline, a reset, the peer closing).
  void refuse(beast::error_code ec) {
    static const auto& httpErrors = beast::error_code(http::error::body_limit).category();
    if (ec.category() != httpErrors || ec == http::error::end_of_stream ||
        ec == http::error::partial_message)
      return lowest().close();
    keepAlive_ = false;
    ApiResponse response;
    if (ec == http::error::body_limit)
      response = errorResponse(413, "too_large", "request body exceeds " +
                                                     std::to_string(impl_.settings.maxBodyBytes) + " bytes");
    else if (ec == http::error::header_limit)
      response = errorResponse(431, "headers_too_large", "request headers exceed 16384 bytes");
    else
      response = errorResponse(400, "bad_request", "malformed HTTP request: " + ec.message());
    write(impl_.render(std::move(response), false, 11));
  }

  void received() {
    lowest().expires_never();  // the handler's time is the server's, not the client's
    auto request = parser_->release();
    keepAlive_ = request.keep_alive();
    impl_.onRequest(shared_from_this(), std::move(request), peer_);
  }

  void write(Response response) {
    response.keep_alive(keepAlive_ && !impl_.stopping);
    response_ = std::make_shared<Response>(std::move(response));
    lowest().expires_after(impl_.settings.writeTimeout);
    http::async_write(stream_, *response_, [self = self()](beast::error_code ec, std::size_t) {
      const bool again = !ec && self->response_->keep_alive();
      self->response_.reset();
      if (!again) {
        beast::error_code ignored;
        self->lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
        return self->lowest().close();
      }
      self->awaitRequest();
    });
  }

  ApiServer::Impl& impl_;
  Stream stream_;
  std::string peer_;
  std::uint64_t id_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Response> response_;
  bool keepAlive_ = false;
};

}  // namespace

void ApiServer::Impl::accept() {
  acceptor->async_accept(net::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
    if (ec) {
      // Out of file descriptors, say: wait a little rather than spin.
      log.warning("accepting a connection: " + ec.message());
      acceptRetry->expires_after(std::chrono::milliseconds(100));
      acceptRetry->async_wait([this](beast::error_code waited) {
        if (!waited) accept();
      });
      return;
    }
    beast::error_code peerError;
    const auto endpoint = socket.remote_endpoint(peerError);
    auto address = endpoint.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped())
      address = net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
    const std::string peer = peerError ? std::string() : address.to_string();
    std::uint64_t id = 0;
    if (peerError || !admit(peer, id)) {
      socket.close(peerError);  // over a limit: closed at once, before any TLS work
    } else {
      std::shared_ptr<Connection> connection;
      if (ssl)
        connection = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(*this, std::move(socket), *ssl,
                                                                                     peer, id);
      else
        connection = std::make_shared<Session<beast::tcp_stream>>(*this, beast::tcp_stream(std::move(socket)), peer, id);
      registerConnection(id, connection);
      connection->start();
    }
    accept();
  });
}

void ApiServer::Impl::onRequest(const std::shared_ptr<Connection>& connection,
                                http::request<http::string_body>&& in, const std::string& peer) {
  const bool head = in.method() == http::verb::head;
  const unsigned version = in.version();
  ApiRequest request;
  try {
    Poco::URI uri{std::string(in.target())};
    request.method = std::string(in.method_string());
    request.path = uri.getPath();
    request.rawQuery = uri.getRawQuery();
    for (const auto& [key, value] : uri.getQueryParameters()) request.query[key] = value;
  } catch (const std::exception& e) {
    return connection->deliver(render(errorResponse(400, "bad_request", e.what()), head, version));
  }
  request.peerAddress = peer;
  for (const auto& field : in) request.headers[lower(std::string(field.name_string()))] = std::string(field.value());
  request.cookies = parseCookies(request.header("cookie"));
  request.body = std::move(in.body());

  // Matching is cheap and done here; everything else runs on the route's pool.
  auto path = split(request.path);
  bool pathKnown = false;
  for (const auto& route : routes) {
    std::map<std::string, std::string> params;
    if (!match(route.pattern, path, params)) continue;
    pathKnown = true;
    if (route.method != request.method) continue;
    auto exchange = std::make_shared<Exchange>(*this, connection, std::move(request), route, head, version);
    if (!poolFor(route.access).submit(
            [this, exchange, &route, params = std::move(params)]() mutable { run(exchange, route, std::move(params)); },
            false))
      exchange->send(busy("the server is busy; try again shortly"));
    return;
  }
  if (pathKnown)
    return connection->deliver(render(
        errorResponse(405, "method_not_allowed", request.method + " is not allowed on " + request.path), head, version));
  connection->deliver(render(errorResponse(404, "not_found", "no route " + request.path), head, version));
}

void ApiServer::Impl::run(const std::shared_ptr<Exchange>& exchange, const Route& route,
                          std::map<std::string, std::string> params) {
  auto& request = exchange->request();
  // Authenticate before anything else about the request is looked at.
  std::optional<Principal> principal;
  if (route.access == Access::Public) {
    principal = Principal{Access::Public, 0, {}, {}, {}, {}};
  } else {
    // The parameters first: who may call an account's route depends on the account it names.
    request.params = params;
    try {
      principal = authenticator(route.access, request);
    } catch (const Unauthenticated& e) {
      return exchange->send(errorResponse(401, "unauthenticated", e.what()));
    } catch (const Refused& e) {
      request.principal.actor = e.actor;
      return exchange->send(errorResponse(e.status, e.code, e.what()));
    } catch (const std::exception& e) {
      log.error("authenticating " + request.method + " " + request.path + ": " + e.what());
      return exchange->send(errorResponse(500, "internal", std::string("cannot check the credentials: ") + e.what()));
    }
  }
  if (!principal) {
    const bool presented = !request.header("authorization").empty() || !request.cookies.empty();
    return exchange->send(errorResponse(
        401, "unauthenticated",
        presented ? "the credentials are not valid for this route (signed out, or the session ended)"
                  : "this route needs an Authorization: Bearer token or a signed-in session"));
  }
  request.params = std::move(params);
  request.principal = *principal;
  exchange->guarded([&] {
    if (route.deferred)
      route.deferred(exchange);
    else
      exchange->send(route.handler(request));
  });
}

ApiServer::ApiServer(Poco::Net::Context::Ptr context, ApiServerSettings settings,
                     std::vector<Route> routes, Authenticator authenticator, Auditor auditor)
    : impl_(std::make_unique<Impl>()) {
  impl_->auditor = std::move(auditor);
  impl_->context = std::move(context);
  impl_->settings = std::move(settings);
  impl_->routes = std::move(routes);
  impl_->authenticator = std::move(authenticator);
}

ApiServer::~ApiServer() { stop(); }

void ApiServer::start() {
  auto& impl = *impl_;
  const auto& s = impl.settings;
  const std::string where = s.bindAddress + ":" + std::to_string(s.port);
  if (impl.context) {
    // The TLS policy lives in tls::makeServerContext; asio takes over one reference to its SSL_CTX.
    SSL_CTX* native = impl.context->sslContext();
    SSL_CTX_up_ref(native);
    impl.ssl = std::make_unique<net::ssl::context>(native);
  }
  beast::error_code ec;
  const auto address = net::ip::make_address(s.bindAddress, ec);
  if (ec) throw Error(ErrorCode::InvalidArgument, "listen address '" + s.bindAddress + "' is not an IP address");
  const tcp::endpoint endpoint(address, s.port);
  impl.acceptor.emplace(net::make_strand(impl.io));
  impl.acceptRetry.emplace(impl.acceptor->get_executor());
  impl.acceptor->open(endpoint.protocol(), ec);
  // SO_REUSEADDR only, for a quick restart over TIME_WAIT; never SO_REUSEPORT, which would let
  // a second manager share the port and take part of the connections.
  if (!ec) impl.acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl.acceptor->bind(endpoint, ec);
  if (ec == net::error::address_in_use)
    throw Error(ErrorCode::Failed, where + " is already in use; is another shoald running?");
  if (!ec) impl.acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw Error(ErrorCode::Failed, "cannot listen on " + where + ": " + ec.message());
  impl.boundPort = impl.acceptor->local_endpoint().port();

  impl.nodePool = std::make_unique<WorkerPool>(s.nodeWorkers, s.maxQueuedPerPool);
  impl.adminPool = std::make_unique<WorkerPool>(s.adminWorkers, s.maxQueuedPerPool);
  impl.publicPool = std::make_unique<WorkerPool>(s.publicWorkers, s.maxQueuedPerPool);
  impl.work.emplace(impl.io.get_executor());
  impl.accept();
  for (int i = 0; i < std::max(s.ioThreads, 1); ++i) impl.ioThreads.emplace_back([&impl] { impl.io.run(); });
  impl.started = true;
  impl.log.information(std::string("API listening on ") + (impl.context ? "https://" : "http://") + s.bindAddress +
                       ":" + std::to_string(impl.boundPort));
}

void ApiServer::stop() {
  if (!impl_ || !impl_->started || impl_->stopping.exchange(true)) return;
  auto& impl = *impl_;
  std::promise<void> closed;
  net::post(impl.acceptor->get_executor(), [&] {
    beast::error_code ignored;
    impl.acceptor->close(ignored);
    impl.acceptRetry->cancel();
    closed.set_value();
  });
  closed.get_future().wait();
  // Running and queued handlers finish and their answers go out (the I/O threads still run).
  impl.nodePool->stop();
  impl.adminPool->stop();
  impl.publicPool->stop();
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(impl.connectionsMutex);
    for (auto& [id, connection] : impl.open)
      if (auto c = connection.lock()) open.push_back(std::move(c));
  }
  for (auto& c : open) c->close();
  open.clear();  // outside the lock: the last reference gives its slot back under it
  {
    std::unique_lock lock(impl.connectionsMutex);
    impl.allClosed.wait_for(lock, std::chrono::seconds(5), [&] { return impl.open.empty(); });
  }
  impl.work.reset();
  impl.io.stop();
  for (auto& t : impl.ioThreads) t.join();
  impl.ioThreads.clear();
}

std::uint16_t ApiServer::port() const { return impl_->boundPort; }

const std::vector<Route>& ApiServer::routes() const { return impl_->routes; }

}  // namespace shoal::api
