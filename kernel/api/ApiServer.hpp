#pragma once
// The manager's HTTPS JSON API: an asynchronous HTTP server (Boost.Beast over Boost.Asio,
// docs/adr/0012) on a TLS socket with a route table.
//
// A few I/O threads accept, handshake, read and write every connection; they never run a
// handler. Handlers run on bounded worker pools, one per class of route (node traffic, the
// admin API, the panel and other public routes), so a flood of one class cannot take the
// threads of another. Every step a client controls has a deadline (handshake, headers, body,
// writes, keep-alive idle), and connections are limited per source address and in total.
//
// Every route declares who may call it (Access); the server authenticates the caller (bearer
// token or panel session) before the handler runs, so a handler never sees an
// unauthenticated request. Every response carries headers that keep browsers strict
// (nosniff, no framing, no referrer, HSTS, a script-tight Content-Security-Policy). Handlers
// report failures by throwing shoal::Error; the server maps the code to an HTTP status and
// answers {"error": {"code": "...", "message": "..."}}.
#include <Poco/JSON/Object.h>
#include <Poco/Net/Context.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace shoal::api {

// Who may call a route. A panel user is an admin or an owner bound to one hosting account
// (auth/UserStore.hpp); the admin API token counts as an admin. Every session change needs the
// session's CSRF token, whoever the user is.
enum class Access {
  Admin,  // an admin API token, or a signed-in admin's session; an owner is refused 403
  // An admin, or the owner of the account named by the route's {name} parameter: the
  // authenticator checks it before the handler runs, so the handler may trust
  // principal.account. An owner naming another account is answered 404 "no account '...'", as
  // if it did not exist; an owner's change to a suspended account 409.
  Account,
  // An admin, or any signed-in owner: routes without an account in the path that an owner may
  // use (signing out, the limit dimensions, the list of accounts). The handler shows an owner
  // only what concerns principal.account.
  SignedIn,
  Node,   // an enrolled node's credential
  Join,   // a join token's secret (enrolment only)
  Public  // anyone: signing in, the panel's static files. Such a handler checks what it needs itself.
};

struct Principal {
  Access access = Access::Admin;
  std::int64_t nodeId = 0;  // Access::Node
  std::string bearer;       // the presented secret (Access::Join needs it)
  // Who acts, for the audit log: "token:admin", "user:alice", "node:3"; empty for Public.
  std::string actor;
  std::string sessionToken;  // the session cookie's value when authenticated by a session
  // The account an owner is bound to, as the store says; empty for an admin (and for nodes).
  std::string account;

  bool owner() const { return !account.empty(); }
};

struct ApiRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> params;  // from {name} segments of the route
  std::map<std::string, std::string> query;
  std::string rawQuery;  // as sent, still percent-encoded
  std::string body;
  std::string peerAddress;
  std::map<std::string, std::string> headers;  // names in lower case
  std::map<std::string, std::string> cookies;
  Principal principal;

  // A header's value, or "" when absent. `name` in lower case.
  std::string header(const std::string& name) const;

  // The body as a JSON object; Error(InvalidArgument) when it is not one.
  Poco::JSON::Object::Ptr json() const;
  // A path parameter as a positive integer; Error(InvalidArgument) naming it otherwise.
  std::int64_t idParam(const std::string& name) const;
  // A query parameter as an integer in [min, max], or `fallback` when absent.
  std::int64_t queryInt(const std::string& name, std::int64_t fallback, std::int64_t min,
                        std::int64_t max) const;
};

struct ApiResponse {
  int status = 200;
  Poco::JSON::Object::Ptr body;  // serialized as JSON
  std::string rawJson;           // sent as is instead of `body` when not empty
  // A response that is not JSON (a page, an image, metrics text): sent as is with this type.
  std::string contentType;
  std::string rawBody;
  std::vector<std::pair<std::string, std::string>> headers;  // extra: Set-Cookie, Location...
};

using Handler = std::function<ApiResponse(const ApiRequest&)>;

// The answer to one request, given later: what a deferred handler receives, so a request that
// waits (a long-poll) holds no thread while it waits. Shared by whoever will complete it;
// every member may be called from any thread.
class PendingReply {
 public:
  virtual ~PendingReply() = default;
  // The request, authenticated; valid as long as this object lives.
  virtual const ApiRequest& request() const = 0;
  // Sends `response` (audited like a handler's). Only the first call counts. A reply dropped
  // without an answer is answered 500, so a client is never left waiting forever.
  virtual void send(ApiResponse response) = 0;
  // Runs `work` on the route's worker pool (never on an I/O thread). An exception it throws is
  // answered as a handler's would be. When the server is stopping, answers 503 instead.
  virtual void post(std::function<void()> work) = 0;
};

// Runs on the route's pool with the reply it must complete, now or later. An exception thrown
// before the reply is sent is answered as a Handler's would be. The reply must be completed or
// dropped before the server is destroyed.
using DeferredHandler = std::function<void(std::shared_ptr<PendingReply> reply)>;

struct Route {
  Route(std::string method, std::string pattern, Access access, Handler handler)
      : method(std::move(method)), pattern(std::move(pattern)), access(access), handler(std::move(handler)) {}
  Route(std::string method, std::string pattern, Access access, DeferredHandler deferred)
      : method(std::move(method)), pattern(std::move(pattern)), access(access), deferred(std::move(deferred)) {}

  std::string method;   // GET, POST, PUT, DELETE
  std::string pattern;  // "/v1/nodes/{id}"; a last segment "{rest...}" takes the rest
  Access access;
  Handler handler;           // exactly one of handler and deferred is set
  DeferredHandler deferred;  // for requests that wait without holding a thread
};

// Thrown by an Authenticator to refuse with a message saying why (an expired join token, say).
struct Unauthenticated : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Thrown by an Authenticator for a caller who is known but may not do this: answered `status`
// with {"error": {"code", "message"}}, before any handler runs.
struct Refused : std::runtime_error {
  Refused(int status, std::string code, const std::string& message, std::string actor = {})
      : std::runtime_error(message), status(status), code(std::move(code)), actor(std::move(actor)) {}
  int status;
  std::string code;
  std::string actor;  // who was refused, for the audit log
};
// A refusal with 403: a session change without its CSRF token ("csrf"), an owner on an admin's
// route ("owner").
struct Forbidden : Refused {
  Forbidden(std::string code, const std::string& message, std::string actor = {})
      : Refused(403, std::move(code), message, std::move(actor)) {}
};

// Decides whether the request's credentials (Authorization: Bearer, the session cookie)
// grant `required`; returns the principal or nullopt. Not called for Access::Public. The
// request's `params` are filled in already (Access::Account reads {name}).
using Authenticator = std::function<std::optional<Principal>(Access required, const ApiRequest& request)>;

// Called after every request that reached a route, whatever its outcome (401s included),
// with the principal set when it was authenticated. For the audit log; must not throw.
using Auditor = std::function<void(const Route& route, const ApiRequest& request, const ApiResponse& response)>;

struct ApiServerSettings {
  std::string bindAddress = "0.0.0.0";
  std::uint16_t port = 7443;  // 0 = any free port (see ApiServer::port)
  std::size_t maxBodyBytes = 4u * 1024u * 1024u;

  // Connections: over either limit a new connection is closed as soon as it is accepted.
  std::size_t maxConnectionsPerSource = 256;  // from one source address
  std::size_t maxConnections = 4096;          // in total; well under the usual 64k file limit

  // Threads. I/O threads only move bytes (TLS included); handlers run on the pools. A waiting
  // long-poll or an idle keep-alive connection holds no thread of either.
  // Node traffic (Access::Node, Access::Join): 250 nodes poll, report results and stats; each
  //   handler is a short store transaction, so 8 keep up and leave the cores to the rest.
  // The admin API (Access::Admin, and Account and SignedIn, which owners share): operators and scripts; 8 so a slow list never blocks a
  //   change, and node traffic or a sign-in flood cannot take them.
  // The panel and public routes (Access::Public: static files, signing in): 4. Sign-in's
  //   scrypt checks are bounded separately (fewer than these threads) and answer 503 when
  //   full, so static files always have a thread.
  int ioThreads = 2;
  int nodeWorkers = 8;
  int adminWorkers = 8;
  int publicWorkers = 4;
  // Requests waiting for a pool's thread; beyond this a request is answered 503 at once.
  std::size_t maxQueuedPerPool = 1024;

  // Deadlines on everything a client controls; when one passes the connection is closed.
  std::chrono::seconds handshakeTimeout{10};  // TLS handshake, from accept
  std::chrono::seconds headerTimeout{10};     // a request's headers, from its first byte
  std::chrono::seconds bodyTimeout{30};       // its body, after the headers
  std::chrono::seconds writeTimeout{30};      // writing one response
  std::chrono::seconds idleTimeout{65};       // between requests on a keep-alive connection
};

class ApiServer {
 public:
  // `context` null = plain HTTP (only for a listener bound as the admin configured, such
  // as /metrics on loopback).
  ApiServer(Poco::Net::Context::Ptr context, ApiServerSettings settings, std::vector<Route> routes,
            Authenticator authenticator, Auditor auditor = {});
  ~ApiServer();  // stop()
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds (SO_REUSEADDR, never SO_REUSEPORT) and starts serving. Error(Failed) "ADDRESS:PORT is
  // already in use; is another shoald running?" when the port is taken.
  void start();
  // Stops accepting, lets running and queued handlers finish (their answers are sent), answers
  // 503 to deferred work posted afterwards, closes every connection and joins all threads.
  void stop();
  std::uint16_t port() const;
  const std::vector<Route>& routes() const;

  struct Impl;  // the server's internals (ApiServer.cpp)

 private:
  std::unique_ptr<Impl> impl_;
};

// Helpers for handlers.
Poco::JSON::Object::Ptr object();
ApiResponse ok(Poco::JSON::Object::Ptr body, int status = 200);
// {"error": {"code", "message"}} with `status`.
ApiResponse errorResponse(int status, const std::string& code, const std::string& message);

}  // namespace shoal::api
