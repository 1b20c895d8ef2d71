// The routes behind the web panel: signing in and out, panel users, the audit log, plugins'
// declarative panels, statistics and graphs, /metrics, and the panel's static files. They
// are members of ManagerService (see ManagerService.hpp); the API's own routes are in
// ManagerService.cpp.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Logger.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "cluster/Secrets.hpp"
#include "common/Error.hpp"
#include "common/Files.hpp"
#include "host/HostApi.hpp"
#include "host/HostObjects.hpp"
#include "host/Registries.hpp"
#include "hosting/AccountNames.hpp"
#include "manager/ManagerService.hpp"
#include "manager/Metrics.hpp"
#include "shoal/BuildInfo.hpp"

namespace shoal::manager {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

constexpr const char* kSessionCookie = "shoal_session";

std::string stringify(const Poco::Dynamic::Var& v) {
  std::ostringstream out;
  Poco::JSON::Stringifier::condense(v, out);
  return out.str();
}

std::string textField(const Object::Ptr& body, const char* name) {
  if (!body->has(name) || !body->get(name).isString())
    throw Error(ErrorCode::InvalidArgument, std::string("field '") + name + "' is required and must be text");
  return body->getValue<std::string>(name);
}

std::string sessionCookie(const std::string& value, std::chrono::seconds maxAge) {
  // HttpOnly: no script reads it; Secure: TLS only; SameSite=Strict: another site's page
  // never sends it, the first guard against request forgery (the CSRF token is the second).
  return std::string(kSessionCookie) + "=" + value + "; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=" +
         std::to_string(maxAge.count());
}

std::int64_t millis(cluster::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// The panel's files: only names of safe characters, no dot-segments, under the web root.
std::optional<std::filesystem::path> staticFile(const std::filesystem::path& root, const std::string& relative) {
  static const std::regex safe("([A-Za-z0-9_-][A-Za-z0-9._-]*/)*[A-Za-z0-9_-][A-Za-z0-9._-]*");
  if (!std::regex_match(relative, safe) || relative.find("..") != std::string::npos) return std::nullopt;
  auto file = root / relative;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return std::nullopt;
  return file;
}

std::string fileBytes(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(ErrorCode::Internal, "cannot read " + file.string());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string contentTypeOf(const std::filesystem::path& file) {
  const auto ext = file.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".json") return "application/json";
  if (ext == ".txt" || ext == ".md") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

// The audit log takes printable ASCII for who and what (no blanks in who): anything else
// becomes '?'. Callers keep free text in the target and detail, which take any text.
std::string auditAscii(const std::string& text, std::size_t max, bool blanks) {
  std::string out = text.substr(0, max);
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e || (!blanks && c == ' ')) c = '?';
  return out;
}

bool couldBeUserName(const std::string& name) {
  try {
    auth::checkUserName(name);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Who tried to sign in: "user:NAME" for a name a user could have, else "anonymous" with the
// name as typed kept in the entry's target (any text, shown as text).
auth::AuditEntry signInEntry(const std::string& name, const std::string& outcome, int status, std::string detail,
                             const std::string& peer) {
  const bool plausible = couldBeUserName(name);
  return auth::AuditEntry{0, {}, plausible ? "user:" + name : "anonymous", "sign in",
                          plausible ? "" : "user name as typed: " + name, outcome, status, std::move(detail), peer};
}

}  // namespace

void ManagerService::recordAudit(auth::AuditEntry entry, bool repeatable) {
  entry.actor = auditAscii(entry.actor.empty() ? "anonymous" : entry.actor, 128, false);
  entry.action = auditAscii(entry.action, 64, true);
  entry.peerAddress = auditAscii(entry.peerAddress, 255, false);
  try {
    if (repeatable)
      audit_->recordRepeated(entry);
    else
      audit_->record(entry);
  } catch (const std::exception& e) {
    // The change itself happened (or was refused) already; losing its record is logged loudly.
    Poco::Logger::get("shoald.manager")
        .error("audit log: cannot record '" + entry.action + "' by " + entry.actor + ": " + e.what());
  }
}

void ManagerService::ensureFirstAdmin() {
  if (users_->count() > 0) return;
  // Printed once, here; only its hash is kept. The admin signs in with it and changes it
  // (shoalctl user passwd admin, or the panel's Users page).
  const std::string password = cluster::randomSecret(16);
  users_->add("admin", password);
  const auto file = settings_.dataDir / "initial-admin-password";
  writeFileAtomically(file, password + "\n", 0600);
  Poco::Logger::get("shoald.manager")
      .warning("created the panel user 'admin' with the one-time password " + password + " (also in " + file.string() +
               "); sign in at https://" + advertisedEndpoint() + "/panel/ and change it");
}

std::optional<api::Principal> ManagerService::authenticateSession(const api::ApiRequest& request) {
  auto cookie = request.cookies.find(kSessionCookie);
  if (cookie == request.cookies.end() || cookie->second.empty()) return std::nullopt;
  auto session = sessions_->resume(cookie->second);
  if (!session) return std::nullopt;
  // Reading is safe from another site's page (it cannot read the answer); a change needs the
  // token only this session's pages know.
  if (request.method != "GET" && request.method != "HEAD" &&
      !auth::SessionStore::csrfMatches(*session, request.header("x-csrf-token")))
    throw api::Forbidden("csrf", "this change needs the session's X-CSRF-Token header; reload the page and try again",
                         "user:" + session->userName);
  return api::Principal{api::Access::Admin, 0, {}, "user:" + session->userName, cookie->second,
                        session->userKind == auth::UserKind::Owner ? session->userAccount : std::string()};
}

void ManagerService::audit(const api::Route& route, const api::ApiRequest& request, const api::ApiResponse& response) {
  // Every change and who made it; reads and the nodes' own traffic are not changes an admin made.
  const bool userRoute = route.access == api::Access::Admin || route.access == api::Access::Account ||
                         route.access == api::Access::SignedIn;
  if (!userRoute || request.method == "GET" || request.method == "HEAD") return;
  auth::AuditEntry entry;
  entry.actor = request.principal.actor.empty() ? "anonymous" : request.principal.actor;
  entry.action = request.method + " " + route.pattern;
  entry.target = request.path;
  entry.status = response.status;
  entry.outcome = response.status < 400 ? "ok" : (response.status == 401 || response.status == 403) ? "refused" : "failed";
  if (response.status >= 400 && response.body && response.body->has("error"))
    entry.detail = response.body->getObject("error")->optValue<std::string>("message", "");
  entry.peerAddress = request.peerAddress;
  // Refused before any credential was accepted (none, or a forged one) or turned away for
  // load: anyone can send those as fast as the network carries them.
  const bool repeatable = response.status == 401 || response.status == 429 || response.status == 503;
  recordAudit(std::move(entry), repeatable);
}

void ManagerService::addPanelRoutes(std::vector<api::Route>& routes) {
  using api::Access;
  using api::ApiRequest;
  using api::ok;
  auto add = [&](std::string method, std::string pattern, Access access, api::Handler handler) {
    routes.push_back(api::Route{std::move(method), std::move(pattern), access, std::move(handler)});
  };

  // ---- signing in and out ----
  add("POST", "/v1/session", Access::Public, [this](const ApiRequest& r) {
    // A form of another site cannot send JSON: together with SameSite cookies this keeps a
    // forged sign-in out.
    if (r.header("content-type").rfind("application/json", 0) != 0)
      throw Error(ErrorCode::InvalidArgument, "signing in needs a JSON body (Content-Type: application/json)");
    auto body = r.json();
    const auto name = textField(body, "user");
    const auto password = textField(body, "password");
    if (auto wait = throttle_.retryAfter(r.peerAddress, name)) {
      auto response = api::errorResponse(429, "too_many_attempts",
                                         "too many failed sign-ins; try again in " + std::to_string(wait->count()) +
                                             " seconds");
      response.headers.emplace_back("Retry-After", std::to_string(wait->count()));
      recordAudit(signInEntry(name, "refused", 429, "rate limited", r.peerAddress), true);
      return response;
    }
    // Each check holds 32 MiB for about 0.1 s (scrypt): a few at a time, so a flood of
    // sign-ins from many addresses costs neither the manager's memory nor the panel's
    // threads. When all are busy the answer is 503 at once, never a queue.
    std::optional<auth::User> user;
    {
      if (!passwordChecks_.try_acquire()) {
        auto busy = api::errorResponse(503, "busy", "too many sign-ins at once; try again in a second");
        busy.headers.emplace_back("Retry-After", "1");
        return busy;
      }
      struct Release {
        std::counting_semaphore<>& s;
        ~Release() { s.release(); }
      } release{passwordChecks_};
      user = users_->authenticate(name, password);
    }
    if (!user) {
      // A name no user can have locks no account: it counts for its address only, and takes
      // no room among the names.
      const bool plausible = couldBeUserName(name);
      throttle_.recordFailure(r.peerAddress, plausible ? name : std::string());
      // A name no user can have costs no password check, so it is as cheap to repeat as a
      // throttled attempt; a real check (scrypt) is recorded one by one.
      recordAudit(signInEntry(name, "refused", 401, "wrong user name or password", r.peerAddress), !plausible);
      return api::errorResponse(401, "unauthenticated", "wrong user name or password");
    }
    throttle_.recordSuccess(r.peerAddress, name);
    auto created = sessions_->create(user->id, r.peerAddress);
    recordAudit(signInEntry(user->name, "ok", 200, "", r.peerAddress));
    auto o = api::object();
    auto u = api::object();
    u->set("name", user->name);
    u->set("kind", auth::toText(user->kind));
    u->set("account", user->account);
    o->set("user", u);
    o->set("csrf_token", created.csrfToken);
    o->set("idle_timeout_seconds", static_cast<std::int64_t>(sessions_->policy().idleTimeout.count()));
    auto response = ok(o);
    response.headers.emplace_back("Set-Cookie", sessionCookie(created.token, sessions_->policy().absoluteLifetime));
    return response;
  });
  // Public so that a page loaded while signed out learns it from a 200 {"user": null}: the
  // only thing it tells a stranger is that they are not signed in.
  add("GET", "/v1/session", Access::Public, [this](const ApiRequest& r) {
    auto o = api::object();
    auto cookie = r.cookies.find(kSessionCookie);
    auto session = cookie == r.cookies.end() || cookie->second.empty() ? std::nullopt : sessions_->resume(cookie->second);
    if (!session) {
      o->set("user", Poco::Dynamic::Var());
      return ok(o);
    }
    auto u = api::object();
    u->set("name", session->userName);
    // So the panel shows an owner only the account's pages (the API refuses the rest anyway).
    u->set("kind", auth::toText(session->userKind));
    u->set("account", session->userAccount);
    o->set("user", u);
    o->set("csrf_token", session->csrfToken);
    o->set("idle_timeout_seconds", static_cast<std::int64_t>(sessions_->policy().idleTimeout.count()));
    o->set("expires_at_ms", millis(session->expiresAt));
    return ok(o);
  });
  add("DELETE", "/v1/session", Access::SignedIn, [this](const ApiRequest& r) {
    if (!r.principal.sessionToken.empty()) sessions_->destroy(r.principal.sessionToken);
    auto o = api::object();
    o->set("signed_out", true);
    auto response = ok(o);
    response.headers.emplace_back("Set-Cookie", sessionCookie("", std::chrono::seconds(0)));
    return response;
  });

  // ---- panel users ----
  auto userJson = [](const auth::User& u) {
    auto o = api::object();
    o->set("id", u.id);
    o->set("name", u.name);
    o->set("created_at_ms", millis(u.createdAt));
    o->set("disabled", u.disabled);
    o->set("kind", auth::toText(u.kind));
    o->set("account", u.account);
    return o;
  };
  add("GET", "/v1/users", Access::Admin, [this, userJson](const ApiRequest&) {
    Array::Ptr list = new Array;
    for (const auto& u : users_->list()) list->add(userJson(u));
    auto o = api::object();
    o->set("users", list);
    return ok(o);
  });
  add("POST", "/v1/users", Access::Admin, [this, userJson](const ApiRequest& r) {
    auto body = r.json();
    for (const auto& [field, value] : *body)
      if (field != "name" && field != "password" && field != "kind" && field != "account")
        throw Error(ErrorCode::InvalidArgument, "field '" + field + "' is not a field here (name, password, kind, account)");
    std::string kind = "admin";
    if (body->has("kind")) {
      kind = textField(body, "kind");
      if (kind != "admin" && kind != "owner")
        throw Error(ErrorCode::InvalidArgument, "field 'kind' must be \"admin\" or \"owner\"");
    }
    if (kind == "admin") {
      if (body->has("account"))
        throw Error(ErrorCode::InvalidArgument, "field 'account' is only for an owner (kind \"owner\")");
      return ok(userJson(users_->add(textField(body, "name"), textField(body, "password"))), 201);
    }
    if (!body->has("account"))
      throw Error(ErrorCode::InvalidArgument, "field 'account' is required for an owner: the account it owns");
    const auto account = textField(body, "account");
    hosting::validateAccountName(account, "account");
    return ok(userJson(users_->addOwner(textField(body, "name"), textField(body, "password"), account)), 201);
  });
  add("PUT", "/v1/users/{name}/password", Access::Admin, [this](const ApiRequest& r) {
    auto body = r.json();
    users_->setPassword(r.params.at("name"), textField(body, "password"));
    auto o = api::object();
    o->set("name", r.params.at("name"));
    o->set("password_changed", true);
    return ok(o);
  });
  add("DELETE", "/v1/users/{name}", Access::Admin, [this](const ApiRequest& r) {
    const auto& name = r.params.at("name");
    users_->remove(name);  // Conflict (409) for the last admin
    auto o = api::object();
    o->set("deleted", name);
    return ok(o);
  });

  // ---- the audit log ----
  add("GET", "/v1/audit", Access::Admin, [this](const ApiRequest& r) {
    const auto limit = static_cast<int>(r.queryInt("limit", 100, 1, 1000));
    std::optional<std::int64_t> before;
    if (r.query.count("before")) before = r.queryInt("before", 0, 1, std::numeric_limits<std::int64_t>::max());
    Array::Ptr list = new Array;
    for (const auto& e : audit_->list(limit, before)) {
      auto o = api::object();
      o->set("id", e.id);
      o->set("at_ms", millis(e.at));
      o->set("actor", e.actor);
      o->set("action", e.action);
      o->set("target", e.target);
      o->set("outcome", e.outcome);
      o->set("status", e.status);
      o->set("detail", e.detail);
      o->set("peer_address", e.peerAddress);
      o->set("count", e.count);
      list->add(o);
    }
    auto o = api::object();
    o->set("entries", list);
    return ok(o);
  });

  // ---- plugins' panels ----
  add("GET", "/v1/panels", Access::Admin, [this](const ApiRequest&) {
    Array::Ptr list = new Array;
    if (registries_ != nullptr) {
      for (const auto& p : registries_->panels()) {
        auto o = api::object();
        o->set("plugin", p.plugin);
        o->set("id", p.id);
        o->set("definition", Poco::JSON::Parser().parse(p.definitionJson));
        o->set("has_data", p.onData != nullptr);
        list->add(o);
      }
    }
    auto o = api::object();
    o->set("panels", list);
    return ok(o);
  });
  auto findPanel = [this](const ApiRequest& r) {
    const auto& plugin = r.params.at("plugin");
    const auto& id = r.params.at("panel");
    if (registries_ != nullptr)
      for (const auto& p : registries_->panels())
        if (p.plugin == plugin && p.id == id) return p;
    throw Error(ErrorCode::NotFound, "no panel '" + id + "' of plugin '" + plugin + "'");
  };
  add("GET", "/v1/panels/{plugin}/{panel}/sections/{section}", Access::Admin, [findPanel](const ApiRequest& r) {
    const auto panel = findPanel(r);
    const auto& section = r.params.at("section");
    if (panel.onData == nullptr)
      throw Error(ErrorCode::Unsupported, "panel '" + panel.id + "' of " + panel.plugin + " gives no data");
    auto query = api::object();
    for (const auto& [k, v] : r.query) query->set(k, v);
    const auto queryJson = stringify(query);
    shoal_reply reply;
    const auto status = panel.onData(panel.user, shoal_str{section.data(), section.size()},
                                     shoal_str{queryJson.data(), queryJson.size()}, &reply);
    host::throwUnlessOk(status, panel.plugin, reply.error);
    try {
      auto parsed = Poco::JSON::Parser().parse(reply.output.empty() ? "{}" : reply.output);
      if (parsed.type() != typeid(Object::Ptr)) throw Error(ErrorCode::Internal, "not an object");
    } catch (const std::exception&) {
      throw Error(ErrorCode::Internal, panel.plugin + ": panel '" + panel.id + "' section '" + section +
                                           "' answered something that is not a JSON object");
    }
    api::ApiResponse response;
    response.rawJson = reply.output.empty() ? "{}" : reply.output;
    return response;
  });
  add("POST", "/v1/panels/{plugin}/{panel}/actions/{action}", Access::Admin, [findPanel](const ApiRequest& r) {
    const auto panel = findPanel(r);
    const auto& action = r.params.at("action");
    if (panel.onAction == nullptr)
      throw Error(ErrorCode::Unsupported, "panel '" + panel.id + "' of " + panel.plugin + " has no actions");
    const auto input = stringify(r.json());
    shoal_reply reply;
    const auto status = panel.onAction(panel.user, shoal_str{action.data(), action.size()},
                                       shoal_str{input.data(), input.size()}, &reply);
    host::throwUnlessOk(status, panel.plugin, reply.error);
    // An action may answer a JSON object, or a line of text the panel shows as its message.
    api::ApiResponse response;
    try {
      auto parsed = Poco::JSON::Parser().parse(reply.output);
      if (parsed.type() == typeid(Object::Ptr)) response.rawJson = reply.output;
    } catch (const std::exception&) {
    }
    if (response.rawJson.empty()) {
      auto o = api::object();
      o->set("message", reply.output);
      response.body = o;
    }
    return response;
  });

  // ---- statistics ----
  add("POST", "/v1/node/stats", Access::Node, [this](const ApiRequest& r) {
    auto body = r.json();
    if (!body->has("samples")) throw Error(ErrorCode::InvalidArgument, "field 'samples' is required");
    auto samples = host::parseStatsSamples(stringify(body->get("samples")), "", host::unixNowSeconds());
    // Only series the director's plugin declared (its policies and real servers) may grow.
    const auto outcome = stats_->record(samples, StatsService::Source::Node);
    if (outcome.refused > 0)
      throw Error(ErrorCode::InvalidArgument, std::to_string(outcome.refused) + " of " +
                                                  std::to_string(samples.size()) + " sample(s) refused, " +
                                                  std::to_string(outcome.recorded) + " recorded: " + outcome.refusal);
    auto o = api::object();
    o->set("recorded", static_cast<std::int64_t>(samples.size()));
    return ok(o);
  });
  add("GET", "/v1/stats/series", Access::Admin, [this](const ApiRequest&) {
    auto o = api::object();
    o->set("series", stats_->seriesJson());
    return ok(o);
  });
  add("GET", "/v1/stats/graph", Access::Admin, [this](const ApiRequest& r) {
    stats::GraphRequest g;
    auto query = [&](const char* name, const char* fallback) {
      auto it = r.query.find(name);
      return it == r.query.end() ? std::string(fallback) : it->second;
    };
    g.series = query("series", "");
    if (g.series.empty()) throw Error(ErrorCode::InvalidArgument, "query parameter 'series' is required");
    auto range = stats::parseRange(query("range", "day"));
    if (!range)
      throw Error(ErrorCode::InvalidArgument, "query parameter range='" + query("range", "") +
                                                  "' must be hour, day, week, month or year");
    g.range = *range;
    const auto format = query("format", "png");
    if (format != "png" && format != "svg")
      throw Error(ErrorCode::InvalidArgument, "query parameter format='" + format + "' must be png or svg");
    g.format = format == "svg" ? stats::ImageFormat::Svg : stats::ImageFormat::Png;
    g.metric = query("metric", "conns");
    g.width = static_cast<int>(r.queryInt("width", 640, 100, 4000));
    g.height = static_cast<int>(r.queryInt("height", 200, 100, 4000));
    auto graph = stats_->graph(g);
    api::ApiResponse response;
    response.contentType = graph.contentType;
    response.rawBody = std::move(graph.bytes);
    return response;
  });
  add("GET", "/metrics", Access::Admin, [this](const ApiRequest&) { return metricsResponse(); });

  // ---- the panel's pages ----
  auto redirect = [](const ApiRequest&) {
    api::ApiResponse response;
    response.status = 302;
    response.contentType = "text/plain; charset=utf-8";
    response.rawBody = "the panel is at /panel/\n";
    response.headers.emplace_back("Location", "/panel/");
    return response;
  };
  add("GET", "/", Access::Public, redirect);
  auto serveFile = [this](const ApiRequest& r) {
    const auto it = r.params.find("file");
    const auto file = staticFile(settings_.webDir, it == r.params.end() ? "index.html" : it->second);
    if (!file) throw Error(ErrorCode::NotFound, "no such page: " + r.path);
    api::ApiResponse response;
    response.contentType = contentTypeOf(*file);
    response.rawBody = fileBytes(*file);
    response.headers.emplace_back("Cache-Control", "no-cache");
    return response;
  };
  add("GET", "/panel", Access::Public, serveFile);
  add("GET", "/panel/{file...}", Access::Public, serveFile);
}

api::ApiResponse ManagerService::metricsResponse() {
  MetricsSnapshot snapshot;
  snapshot.version = build::kVersion;
  snapshot.nodes = nodes_.list(false);
  snapshot.health = health_->list();
  snapshot.queue = queue_.depth();
  snapshot.series = stats_->latest();
  if (registries_ != nullptr)
    snapshot.pluginFamilies = host::collectPluginMetrics(*registries_, Poco::Logger::get("shoald.manager"));
  api::ApiResponse response;
  response.contentType = kPrometheusContentType;
  response.rawBody = renderPrometheus(snapshot);
  return response;
}

}  // namespace shoal::manager
