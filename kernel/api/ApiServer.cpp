#include "api/ApiServer.hpp"

#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Logger.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include <cctype>
#include <chrono>
#include <sstream>
#include <thread>

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

struct ApiServer::Impl {
  Poco::Net::Context::Ptr context;
  ApiServerSettings settings;
  std::vector<Route> routes;
  Authenticator authenticator;
  Auditor auditor;
  std::unique_ptr<Poco::ThreadPool> pool;
  std::unique_ptr<Poco::Net::HTTPServer> server;
  std::uint16_t boundPort = 0;
  Poco::Logger& log = Poco::Logger::get("shoald.api");

  ApiResponse dispatch(ApiRequest& request) {
    auto path = split(request.path);
    bool pathKnown = false;
    for (const auto& route : routes) {
      std::map<std::string, std::string> params;
      if (!match(route.pattern, path, params)) continue;
      pathKnown = true;
      if (route.method != request.method) continue;
      auto response = authenticateAndRun(route, request, std::move(params));
      if (auditor) {
        try {
          auditor(route, request, response);
        } catch (const std::exception& e) {
          log.error("audit of " + request.method + " " + request.path + ": " + e.what());
        }
      }
      return response;
    }
    if (pathKnown) return errorResponse(405, "method_not_allowed", request.method + " is not allowed on " + request.path);
    return errorResponse(404, "not_found", "no route " + request.path);
  }

  ApiResponse authenticateAndRun(const Route& route, ApiRequest& request, std::map<std::string, std::string> params) {
    // Authenticate before anything else about the request is looked at.
    std::optional<Principal> principal;
    if (route.access == Access::Public) {
      principal = Principal{Access::Public, 0, {}, {}, {}};
    } else {
      try {
        principal = authenticator(route.access, request);
      } catch (const Unauthenticated& e) {
        return errorResponse(401, "unauthenticated", e.what());
      } catch (const Forbidden& e) {
        request.principal.actor = e.actor;
        return errorResponse(403, e.code, e.what());
      } catch (const std::exception& e) {
        log.error("authenticating " + request.method + " " + request.path + ": " + e.what());
        return errorResponse(500, "internal", std::string("cannot check the credentials: ") + e.what());
      }
    }
    if (!principal) {
      const bool presented = !request.header("authorization").empty() || !request.cookies.empty();
      return errorResponse(401, "unauthenticated",
                           presented ? "the credentials are not valid for this route (signed out, or the session ended)"
                                     : "this route needs an Authorization: Bearer token or a signed-in session");
    }
    request.params = std::move(params);
    request.principal = *principal;
    try {
      return route.handler(request);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::Internal) log.error(request.method + " " + request.path + ": " + e.what());
      return errorResponse(httpStatus(e.code()), codeName(e.code()), e.what());
    } catch (const std::exception& e) {
      log.error(request.method + " " + request.path + ": " + e.what());
      return errorResponse(500, "internal", std::string("internal error: ") + e.what());
    }
  }
};

namespace {

class RequestHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit RequestHandler(ApiServer::Impl& impl) : impl_(impl) {}
  void handleRequest(Poco::Net::HTTPServerRequest& in, Poco::Net::HTTPServerResponse& out) override {
    ApiResponse response;
    try {
      Poco::URI uri(in.getURI());
      ApiRequest request;
      request.method = in.getMethod();
      request.path = uri.getPath();
      request.rawQuery = uri.getRawQuery();
      for (const auto& [key, value] : uri.getQueryParameters()) request.query[key] = value;
      request.peerAddress = in.clientAddress().host().toString();
      for (const auto& [name, value] : in) request.headers[lower(name)] = value;
      request.cookies = parseCookies(in.get("Cookie", ""));
      const auto length = in.getContentLength64();
      if (length > static_cast<std::int64_t>(impl_.settings.maxBodyBytes)) {
        response = errorResponse(413, "too_large", "request body exceeds " +
                                                       std::to_string(impl_.settings.maxBodyBytes) + " bytes");
      } else {
        std::string body;
        char buffer[8192];
        auto& stream = in.stream();
        while (stream.read(buffer, sizeof buffer) || stream.gcount() > 0) {
          body.append(buffer, static_cast<std::size_t>(stream.gcount()));
          if (body.size() > impl_.settings.maxBodyBytes) break;
        }
        if (body.size() > impl_.settings.maxBodyBytes) {
          response = errorResponse(413, "too_large", "request body too large");
        } else {
          request.body = std::move(body);
          response = impl_.dispatch(request);
        }
      }
    } catch (const std::exception& e) {
      response = errorResponse(400, "bad_request", e.what());
    }
    out.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(response.status));
    // Browsers reach this server for the panel: keep them strict on every answer.
    out.set("X-Content-Type-Options", "nosniff");
    out.set("X-Frame-Options", "DENY");
    out.set("Referrer-Policy", "no-referrer");
    out.set("Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    if (impl_.context) out.set("Strict-Transport-Security", "max-age=31536000");
    out.set("Cache-Control", "no-store");
    for (const auto& [name, value] : response.headers) {
      if (lower(name) == "set-cookie" || lower(name) == "cache-control") out.erase(name);
      out.add(name, value);
    }
    std::string payload;
    if (response.status == 204) {
      // No Content: no body and no type, whatever the handler put in the response.
      out.setContentLength(0);
      out.send();
      return;
    }
    if (!response.contentType.empty()) {
      out.setContentType(response.contentType);
      payload = std::move(response.rawBody);
    } else {
      out.setContentType("application/json");
      payload = response.rawJson;
      if (payload.empty()) {
        std::ostringstream text;
        Poco::JSON::Stringifier::condense(response.body ? response.body : object(), text);
        payload = text.str();
      }
      payload += "\n";
    }
    out.setContentLength(static_cast<std::streamsize>(payload.size()));
    if (in.getMethod() == "HEAD") {
      out.send();
      return;
    }
    out.send() << payload;
  }

 private:
  ApiServer::Impl& impl_;
};

class HandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit HandlerFactory(ApiServer::Impl& impl) : impl_(impl) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new RequestHandler(impl_);
  }

 private:
  ApiServer::Impl& impl_;
};

}  // namespace

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
  Poco::Net::SocketAddress address(impl_->settings.bindAddress, impl_->settings.port);
  std::unique_ptr<Poco::Net::ServerSocket> socket;
  if (impl_->context)
    socket = std::make_unique<Poco::Net::SecureServerSocket>(address, 128, impl_->context);
  else
    socket = std::make_unique<Poco::Net::ServerSocket>(address, 128);
  impl_->boundPort = socket->address().port();
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(impl_->settings.maxThreads);
  params->setMaxQueued(512);
  params->setKeepAlive(true);
  params->setKeepAliveTimeout(Poco::Timespan(65, 0));
  params->setTimeout(Poco::Timespan(70, 0));
  impl_->pool = std::make_unique<Poco::ThreadPool>(2, impl_->settings.maxThreads + 2, 60);
  impl_->server = std::make_unique<Poco::Net::HTTPServer>(new HandlerFactory(*impl_), *impl_->pool,
                                                          *socket, params);
  impl_->server->start();
  impl_->log.information(std::string("API listening on ") + (impl_->context ? "https://" : "http://") + impl_->settings.bindAddress + ":" +
                         std::to_string(impl_->boundPort));
}

void ApiServer::stop() {
  if (!impl_ || !impl_->server) return;
  // stop() alone leaves keep-alive connections running; stopAll(true) aborts them too.
  impl_->server->stopAll(true);
  for (int i = 0; i < 500 && impl_->pool->used() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  impl_->server.reset();
  impl_->pool->joinAll();
  impl_->pool.reset();
}

std::uint16_t ApiServer::port() const { return impl_->boundPort; }

const std::vector<Route>& ApiServer::routes() const { return impl_->routes; }

}  // namespace shoal::api
