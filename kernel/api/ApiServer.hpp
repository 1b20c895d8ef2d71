#pragma once
// The manager's HTTPS JSON API: a Poco HTTPServer on a TLS socket with a route table.
//
// Every route declares who may call it (Access); the server authenticates the bearer token
// before the handler runs, so a handler never sees an unauthenticated request. Handlers
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
  Admin,  // an admin API token
  Node,   // an enrolled node's credential
  Join    // a join token's secret (enrolment only)
};

struct Principal {
  Access access = Access::Admin;
  std::int64_t nodeId = 0;  // Access::Node
  std::string bearer;       // the presented secret (Access::Join needs it)
};

struct ApiRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> params;  // from {name} segments of the route
  std::map<std::string, std::string> query;
  std::string rawQuery;  // as sent, still percent-encoded
  std::string body;
  std::string peerAddress;
  Principal principal;

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

// Decides whether `bearer` grants `required`; returns the principal or nullopt.
using Authenticator = std::function<std::optional<Principal>(Access required, const std::string& bearer)>;

struct ApiServerSettings {
  std::string bindAddress = "0.0.0.0";
  std::uint16_t port = 7443;  // 0 = any free port (see ApiServer::port)
  int maxThreads = 64;        // long-polling nodes each hold one
  std::size_t maxBodyBytes = 4u * 1024u * 1024u;
};

class ApiServer {
 public:
  ApiServer(Poco::Net::Context::Ptr context, ApiServerSettings settings, std::vector<Route> routes,
            Authenticator authenticator);
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

}  // namespace shoal::api
