#pragma once
// The manager's HTTPS JSON API: a Poco HTTPServer on a TLS socket with a route table.
//
// Every route declares who may call it (Access); the server authenticates the caller (bearer
// token or panel session) before the handler runs, so a handler never sees an
// unauthenticated request. Every response carries headers that keep browsers strict
// (nosniff, no framing, no referrer, HSTS, a script-tight Content-Security-Policy). Handlers
// report failures by throwing shoal::Error; the server maps the code to an HTTP status and
// answers {"error": {"code": "...", "message": "..."}}.
#include <Poco/JSON/Object.h>
#include <Poco/Net/Context.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace Poco::Net {
class HTTPServer;
}

namespace shoal::api {

enum class Access {
  Admin,  // an admin API token, or a signed-in panel user's session (with its CSRF token on a change)
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

struct Route {
  std::string method;   // GET, POST, PUT, DELETE
  std::string pattern;  // "/v1/nodes/{id}"; a last segment "{rest...}" takes the rest
  Access access;
  Handler handler;
};

// Thrown by an Authenticator to refuse with a message saying why (an expired join token, say).
struct Unauthenticated : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Thrown by an Authenticator for a caller who is known but may not do this (403): a session
// change without its CSRF token. `code` goes into the error body ("csrf").
struct Forbidden : std::runtime_error {
  Forbidden(std::string code, const std::string& message, std::string actor = {})
      : std::runtime_error(message), code(std::move(code)), actor(std::move(actor)) {}
  std::string code;
  std::string actor;  // who was refused, for the audit log
};

// Decides whether the request's credentials (Authorization: Bearer, the session cookie)
// grant `required`; returns the principal or nullopt. Not called for Access::Public.
using Authenticator = std::function<std::optional<Principal>(Access required, const ApiRequest& request)>;

// Called after every request that reached a route, whatever its outcome (401s included),
// with the principal set when it was authenticated. For the audit log; must not throw.
using Auditor = std::function<void(const Route& route, const ApiRequest& request, const ApiResponse& response)>;

struct ApiServerSettings {
  std::string bindAddress = "0.0.0.0";
  std::uint16_t port = 7443;  // 0 = any free port (see ApiServer::port)
  int maxThreads = 64;        // long-polling nodes each hold one
  std::size_t maxBodyBytes = 4u * 1024u * 1024u;
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

  void start();
  // Stops accepting, closes keep-alive connections and waits for running handlers.
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
