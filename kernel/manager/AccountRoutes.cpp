// The API's hosting routes: limit dimensions, plans, accounts, suspension and domains
// (docs/api.md, "Hosting"). Members of ManagerService; the work is AccountService's.
// A change answers {"account": ..., "commands": [ids]} with the commands that carry it to the
// nodes, so a client can follow them (GET /v1/commands/{id}) to "applied everywhere".
//
// Who may call what is each route's Access, checked by ManagerService::authorizeOwner before
// the handler runs: an owner reaches the routes marked Access::Account for its own account and
// those marked Access::SignedIn; every other route is an admin's. Owners may read their account
// and add and remove its domains (within its limits); plans, limits, suspension, removal,
// resync and extra nginx directives stay with the admins.
#include <Poco/JSON/Array.h>

#include <set>

#include "common/Error.hpp"
#include "hosting/AccountNames.hpp"
#include "manager/ManagerService.hpp"

namespace shoal::manager {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

[[noreturn]] void invalid(const std::string& field, const std::string& why) {
  throw Error(ErrorCode::InvalidArgument, field + ": " + why);
}

// Refuses fields the route does not take, so a misspelt one is not silently ignored.
void onlyFields(const Object::Ptr& body, const std::set<std::string>& allowed) {
  for (const auto& [name, value] : *body) {
    if (allowed.count(name)) continue;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    invalid(name, "is not a field here (" + list + ")");
  }
}

std::optional<std::string> optionalText(const Object::Ptr& body, const std::string& name) {
  if (!body->has(name)) return std::nullopt;
  if (!body->get(name).isString()) invalid(name, "must be text");
  return body->getValue<std::string>(name);
}

std::string requiredText(const Object::Ptr& body, const std::string& name) {
  auto value = optionalText(body, name);
  if (!value) invalid(name, "is required");
  return *value;
}

std::optional<std::int64_t> optionalRevision(const Object::Ptr& body) {
  if (!body->has("revision")) return std::nullopt;
  const auto v = body->get("revision");
  if (!v.isInteger() || v.isBoolean() || v.convert<std::int64_t>() < 1) invalid("revision", "must be a whole number from 1");
  return v.convert<std::int64_t>();
}

Array::Ptr ids(const std::vector<std::int64_t>& commands) {
  Array::Ptr list = new Array;
  for (auto id : commands) list->add(id);
  return list;
}

Object::Ptr changeJson(const hosting::DeliveredChange& change) {
  auto o = api::object();
  o->set("account", hosting::toJson(change.account, false));
  o->set("commands", ids(change.commands));
  if (!change.deliveryError.empty())
    o->set("warning", "saved, but not yet handed to the nodes (" + change.deliveryError + "); the manager retries");
  return o;
}

// A domain as the path names it, Unicode or punycode.
std::string domainParam(const api::ApiRequest& r) { return hosting::normalizeDomain(r.params.at("domain"), "domain").ascii; }

std::string accountParam(const api::ApiRequest& r) {
  const auto& name = r.params.at("name");
  hosting::validateAccountName(name, "account");
  return name;
}

}  // namespace

void ManagerService::addAccountRoutes(std::vector<api::Route>& routes) {
  using api::Access;
  using api::ApiRequest;
  using api::ok;
  auto add = [&](std::string method, std::string pattern, api::Handler handler) {
    routes.push_back(api::Route{std::move(method), std::move(pattern), Access::Admin, std::move(handler)});
  };
  // Routes an account's owner may call too (see the top of this file).
  auto addForOwners = [&](std::string method, std::string pattern, Access access, api::Handler handler) {
    routes.push_back(api::Route{std::move(method), std::move(pattern), access, std::move(handler)});
  };

  addForOwners("GET", "/v1/limits", Access::SignedIn, [this](const ApiRequest&) {
    Array::Ptr list = new Array;
    for (const auto& d : accounts_->dimensions()) {
      auto o = api::object();
      o->set("name", d.name);
      o->set("label", d.label);
      o->set("counts", d.counts);
      list->add(o);
    }
    auto o = api::object();
    o->set("limits", list);
    return ok(o);
  });

  // ---- plans ----
  add("GET", "/v1/plans", [this](const ApiRequest&) {
    Array::Ptr list = new Array;
    for (const auto& p : accounts_->store().plans()) list->add(hosting::toJson(p));
    auto o = api::object();
    o->set("plans", list);
    return ok(o);
  });
  add("POST", "/v1/plans", [this](const ApiRequest& r) {
    auto body = r.json();
    onlyFields(body, {"name", "description", "limits"});
    const auto limits = body->has("limits") ? hosting::parseLimits(body->get("limits"), "limits") : hosting::Limits{};
    return ok(hosting::toJson(accounts_->createPlan(requiredText(body, "name"),
                                                    optionalText(body, "description").value_or(""), limits)),
              201);
  });
  add("GET", "/v1/plans/{name}", [this](const ApiRequest& r) {
    auto plan = accounts_->store().plan(r.params.at("name"));
    if (!plan) throw Error(ErrorCode::NotFound, "no plan '" + r.params.at("name") + "'");
    return ok(hosting::toJson(*plan));
  });
  add("PUT", "/v1/plans/{name}", [this](const ApiRequest& r) {
    auto body = r.json();
    onlyFields(body, {"description", "limits"});
    std::optional<hosting::Limits> limits;
    if (body->has("limits")) limits = hosting::parseLimits(body->get("limits"), "limits");
    return ok(hosting::toJson(accounts_->updatePlan(r.params.at("name"), optionalText(body, "description"), limits)));
  });
  add("DELETE", "/v1/plans/{name}", [this](const ApiRequest& r) {
    accounts_->store().deletePlan(r.params.at("name"));
    auto o = api::object();
    o->set("removed", r.params.at("name"));
    return ok(o);
  });
  add("POST", "/v1/plans/{name}/apply", [this](const ApiRequest& r) {
    Array::Ptr changed = new Array;
    for (const auto& change : accounts_->applyPlan(r.params.at("name"))) changed->add(changeJson(change));
    auto o = api::object();
    o->set("changed", changed);
    return ok(o);
  });

  // ---- accounts ----
  addForOwners("GET", "/v1/accounts", Access::SignedIn, [this](const ApiRequest& r) {
    Array::Ptr list = new Array;
    if (r.principal.owner()) {
      if (auto own = accounts_->store().account(r.principal.account)) list->add(hosting::toJson(*own, false));
    } else {
      for (const auto& a : accounts_->store().accounts()) list->add(hosting::toJson(a, false));
    }
    auto o = api::object();
    o->set("accounts", list);
    return ok(o);
  });
  add("POST", "/v1/accounts", [this](const ApiRequest& r) {
    auto body = r.json();
    onlyFields(body, {"name", "domain", "plan", "limits"});
    hosting::NewAccount request;
    request.name = requiredText(body, "name");
    hosting::validateAccountName(request.name, "name");
    request.primaryDomain = hosting::normalizeDomain(requiredText(body, "domain"), "domain");
    request.plan = optionalText(body, "plan").value_or("");
    if (body->has("limits")) request.limits = hosting::parseLimits(body->get("limits"), "limits");
    return ok(changeJson(accounts_->createAccount(request)), 201);
  });
  addForOwners("GET", "/v1/accounts/{name}", Access::Account, [this](const ApiRequest& r) {
    const auto name = accountParam(r);
    auto account = accounts_->store().account(name);
    if (!account) throw Error(ErrorCode::NotFound, "no account '" + name + "'");
    return ok(hosting::toJson(*account, false));
  });
  add("PUT", "/v1/accounts/{name}", [this](const ApiRequest& r) {
    auto body = r.json();
    onlyFields(body, {"plan", "limits", "revision"});
    hosting::AccountEdit edit;
    edit.plan = optionalText(body, "plan");
    if (body->has("limits")) edit.limits = hosting::parseLimits(body->get("limits"), "limits");
    edit.expectedRevision = optionalRevision(body);
    return ok(changeJson(accounts_->changeAccount(accountParam(r), edit)));
  });
  add("DELETE", "/v1/accounts/{name}", [this](const ApiRequest& r) {
    return ok(changeJson(accounts_->removeAccount(accountParam(r))));
  });
  add("POST", "/v1/accounts/{name}/suspend", [this](const ApiRequest& r) {
    auto body = r.json();
    onlyFields(body, {"reason"});
    return ok(changeJson(accounts_->suspend(accountParam(r), requiredText(body, "reason"))));
  });
  add("POST", "/v1/accounts/{name}/unsuspend", [this](const ApiRequest& r) {
    return ok(changeJson(accounts_->unsuspend(accountParam(r))));
  });

  // Announces accounts again without changing them (all, or {"account": "acme"}): the repair
  // for a node that missed their commands. Answers the commands like a change.
  add("POST", "/v1/accounts/resync", [this](const ApiRequest& r) {
    auto body = r.json();
    onlyFields(body, {"account"});
    const auto account = optionalText(body, "account");
    Array::Ptr changed = new Array;
    for (const auto& change : accounts_->resync(account)) changed->add(changeJson(change));
    auto o = api::object();
    o->set("announced", changed);
    return ok(o);
  });

  // ---- domains ----
  addForOwners("GET", "/v1/accounts/{name}/domains", Access::Account, [this](const ApiRequest& r) {
    const auto name = accountParam(r);
    auto account = accounts_->store().account(name);
    if (!account) throw Error(ErrorCode::NotFound, "no account '" + name + "'");
    auto o = api::object();
    o->set("domains", hosting::toJson(*account, false)->getArray("domains"));
    return ok(o);
  });
  addForOwners("POST", "/v1/accounts/{name}/domains", Access::Account, [this](const ApiRequest& r) {
    auto body = r.json();
    onlyFields(body, {"name", "kind", "parent", "nginx_extra"});
    // Extra directives reach every node's nginx as written: an admin's tool, not an owner's.
    if (r.principal.owner() && body->has("nginx_extra"))
      return api::errorResponse(403, "owner", "nginx_extra: only an admin may set extra nginx directives");
    hosting::NewDomain domain;
    domain.name = hosting::normalizeDomain(requiredText(body, "name"), "name");
    domain.kind = optionalText(body, "kind").value_or("secondary");
    if (auto parent = optionalText(body, "parent"); parent && !parent->empty())
      domain.parent = hosting::normalizeDomain(*parent, "parent").ascii;
    domain.nginxExtra = optionalText(body, "nginx_extra").value_or("");
    return ok(changeJson(accounts_->addDomain(accountParam(r), domain)), 201);
  });
  add("PUT", "/v1/accounts/{name}/domains/{domain}", [this](const ApiRequest& r) {
    auto body = r.json();
    onlyFields(body, {"nginx_extra"});
    return ok(changeJson(accounts_->setNginxExtra(accountParam(r), domainParam(r), requiredText(body, "nginx_extra"))));
  });
  addForOwners("DELETE", "/v1/accounts/{name}/domains/{domain}", Access::Account, [this](const ApiRequest& r) {
    return ok(changeJson(accounts_->removeDomain(accountParam(r), domainParam(r))));
  });
}

}  // namespace shoal::manager
