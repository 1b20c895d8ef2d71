#include "host/PanelDefinition.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>

#include "common/Error.hpp"

namespace shoal::host {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

constexpr int kMaxRefreshSeconds = 3600;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw Error(ErrorCode::InvalidArgument, "panel definition: " + where + ": " + what);
}

std::string requireText(const Object::Ptr& object, const std::string& key, const std::string& where) {
  if (!object->has(key)) fail(where, "'" + key + "' is missing");
  auto value = object->get(key);
  if (!value.isString()) fail(where + "." + key, "must be a string");
  std::string text = value.convert<std::string>();
  if (text.empty()) fail(where + "." + key, "must not be empty");
  return text;
}

void optionalText(const Object::Ptr& object, const std::string& key, const std::string& where) {
  if (object->has(key)) requireText(object, key, where);
}

bool optionalBool(const Object::Ptr& object, const std::string& key, const std::string& where) {
  if (!object->has(key)) return false;
  auto value = object->get(key);
  if (!value.isBoolean()) fail(where + "." + key, "must be true or false");
  return value.convert<bool>();
}

std::optional<double> optionalNumber(const Object::Ptr& object, const std::string& key, const std::string& where) {
  if (!object->has(key)) return std::nullopt;
  auto value = object->get(key);
  if (!value.isNumeric() || value.isBoolean()) fail(where + "." + key, "must be a number");
  return value.convert<double>();
}

Array::Ptr requireArray(const Object::Ptr& object, const std::string& key, const std::string& where) {
  Array::Ptr array = object->has(key) ? object->getArray(key) : nullptr;
  if (!array) fail(where, "'" + key + "' must be an array");
  if (array->size() == 0) fail(where + "." + key, "must not be empty");
  return array;
}

Object::Ptr requireObject(const Array::Ptr& array, std::size_t i, const std::string& where) {
  Object::Ptr object = array->getObject(static_cast<unsigned>(i));
  if (!object) fail(where + "[" + std::to_string(i) + "]", "must be an object");
  return object;
}

std::string requireId(const Object::Ptr& object, const std::string& key, const std::string& where) {
  static const std::regex idPattern("[a-z0-9_-]{1,64}");
  std::string id = requireText(object, key, where);
  if (!std::regex_match(id, idPattern))
    fail(where + "." + key, "'" + id + "' must match [a-z0-9_-]{1,64}");
  return id;
}

// The objects of the newer vocabulary name every key they take: a misspelt key is refused
// rather than silently doing nothing.
void refuseUnknown(const Object::Ptr& object, const std::set<std::string>& known, const std::string& where) {
  for (const auto& [key, value] : *object) {
    if (known.count(key)) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    fail(where, "unknown key '" + key + "' (known: " + list + ")");
  }
}

std::optional<int> optionalRefresh(const Object::Ptr& section, const std::string& where) {
  if (!section->has("refresh_seconds")) return std::nullopt;
  auto value = section->get("refresh_seconds");
  if (!value.isInteger() || value.isBoolean()) fail(where + ".refresh_seconds", "must be a whole number");
  auto seconds = value.convert<std::int64_t>();
  if (seconds < 1 || seconds > kMaxRefreshSeconds)
    fail(where + ".refresh_seconds", std::to_string(seconds) + " is not from 1 to " + std::to_string(kMaxRefreshSeconds));
  return static_cast<int>(seconds);
}

// The forms row actions open, by section id, and where each was named (for the refusals
// that need the whole panel).
using FormReferences = std::map<std::string, std::string>;

// Returns whether any column is live.
bool validateColumns(const Object::Ptr& table, const std::string& where) {
  auto columns = requireArray(table, "columns", where);
  bool live = false;
  std::set<std::string> keys;
  for (std::size_t i = 0; i < columns->size(); ++i) {
    std::string at = where + ".columns[" + std::to_string(i) + "]";
    auto column = requireObject(columns, i, where + ".columns");
    auto key = requireText(column, "key", at);
    if (!keys.insert(key).second) fail(at + ".key", "'" + key + "' is used twice");
    requireText(column, "label", at);
    live = optionalBool(column, "live", at) || live;
  }
  return live;
}

void validateRowActions(const Object::Ptr& table, const std::string& where, FormReferences& forms) {
  if (!table->has("row_actions")) return;
  auto actions = requireArray(table, "row_actions", where);
  for (std::size_t i = 0; i < actions->size(); ++i) {
    std::string at = where + ".row_actions[" + std::to_string(i) + "]";
    auto action = requireObject(actions, i, where + ".row_actions");
    refuseUnknown(action, {"label", "action", "form", "confirm"}, at);
    requireText(action, "label", at);
    optionalText(action, "confirm", at);
    const bool posts = action->has("action");
    const bool opens = action->has("form");
    if (posts == opens) fail(at, "needs exactly one of 'action' (run it on the row) and 'form' (open it for the row)");
    if (posts) {
      requireId(action, "action", at);
    } else {
      if (action->has("confirm")) fail(at + ".confirm", "belongs to 'action' row actions; a form is confirmed by submitting it");
      forms.emplace(requireId(action, "form", at), at + ".form");
    }
  }
}

void validateTable(const Object::Ptr& section, const std::string& where, FormReferences& forms) {
  bool live = validateColumns(section, where);
  optionalText(section, "empty", where);
  validateRowActions(section, where, forms);
  if (section->has("nested")) {
    const std::string at = where + ".nested";
    Object::Ptr nested = section->getObject("nested");
    if (!nested) fail(at, "must be an object");
    refuseUnknown(nested, {"key", "row_key", "columns", "row_actions", "empty", "open"}, at);
    requireText(nested, "key", at);
    requireText(nested, "row_key", at);
    live = validateColumns(nested, at) || live;
    validateRowActions(nested, at, forms);
    optionalText(nested, "empty", at);
    optionalBool(nested, "open", at);
  }
  const bool needsRowKey = live || section->has("row_actions") || section->has("nested");
  if (section->has("row_key")) requireText(section, "row_key", where);
  else if (needsRowKey)
    fail(where, "'row_key' is missing (the row field that names a row; live columns, row actions and nested rows need it)");
  const auto refresh = optionalRefresh(section, where);
  if (live && !refresh) fail(where, "'refresh_seconds' is missing (a live column is refreshed that often)");
  if (!live && refresh) fail(where + ".refresh_seconds", "refreshes only live columns, and no column has \"live\": true");
}

// Returns the values a select offers.
std::set<std::string> validateOptions(const Object::Ptr& field, const std::string& at) {
  auto options = requireArray(field, "options", at);
  std::set<std::string> values;
  for (std::size_t i = 0; i < options->size(); ++i) {
    std::string where = at + ".options[" + std::to_string(i) + "]";
    auto option = options->get(static_cast<unsigned>(i));
    std::string value;
    if (option.isString()) {
      value = option.convert<std::string>();
      if (value.empty()) fail(where, "must not be empty");
    } else if (option.type() == typeid(Object::Ptr)) {
      auto object = option.extract<Object::Ptr>();
      refuseUnknown(object, {"value", "label"}, where);
      // An empty value is allowed here: it is how a select offers "none" with a label.
      if (!object->has("value") || !object->get("value").isString()) fail(where, "'value' must be a string");
      value = object->getValue<std::string>("value");
      requireText(object, "label", where);
    } else {
      fail(where, "must be a string or {\"value\", \"label\"}");
    }
    if (!values.insert(value).second) fail(where, "value '" + value + "' is offered twice");
  }
  return values;
}

void validateShowWhen(const Object::Ptr& field, const std::string& at, const std::string& name,
                      const std::map<std::string, std::string>& earlier) {
  const std::string where = at + ".show_when";
  Object::Ptr when = field->getObject("show_when");
  if (!when) fail(where, "must be an object {\"field\", \"equals\"}");
  refuseUnknown(when, {"field", "equals"}, where);
  auto other = requireText(when, "field", where);
  if (other == name) fail(where + ".field", "a field cannot depend on itself");
  if (!earlier.count(other)) fail(where + ".field", "'" + other + "' is not a field declared before this one in the form");
  if (!when->has("equals")) fail(where, "'equals' is missing");
  auto equals = when->get("equals");
  if (equals.isString()) {
    requireText(when, "equals", where);
  } else if (auto list = when->getArray("equals")) {
    if (list->size() == 0) fail(where + ".equals", "must not be empty");
    for (std::size_t i = 0; i < list->size(); ++i)
      if (!list->get(static_cast<unsigned>(i)).isString())
        fail(where + ".equals[" + std::to_string(i) + "]", "must be a string");
  } else {
    fail(where + ".equals", "must be a string or an array of strings");
  }
}

void validateForm(const Object::Ptr& section, const std::string& where) {
  requireId(section, "action", where);
  optionalText(section, "submit", where);
  optionalBool(section, "hidden", where);
  auto fields = requireArray(section, "fields", where);
  static const std::set<std::string> fieldTypes{"text", "number", "password", "checkbox", "select", "list"};
  std::map<std::string, std::string> earlier;  // name → type
  for (std::size_t i = 0; i < fields->size(); ++i) {
    std::string at = where + ".fields[" + std::to_string(i) + "]";
    auto field = requireObject(fields, i, where + ".fields");
    auto name = requireText(field, "name", at);
    if (name == "row" || name == "parent")
      fail(at + ".name", "'" + name + "' is reserved: a form opened from a row sends the row's key under it");
    if (earlier.count(name)) fail(at + ".name", "'" + name + "' is used twice");
    requireText(field, "label", at);
    optionalText(field, "help", at);
    optionalBool(field, "required", at);
    optionalBool(field, "readonly", at);
    std::string type = requireText(field, "type", at);
    if (!fieldTypes.count(type))
      fail(at + ".type", "'" + type + "' is not one of text, number, password, checkbox, select, list");
    std::set<std::string> values;
    if (type == "select") values = validateOptions(field, at);
    else if (field->has("options")) fail(at + ".options", "belongs to select fields only");
    const auto min = optionalNumber(field, "min", at);
    const auto max = optionalNumber(field, "max", at);
    if ((min || max) && type != "number") fail(at + (min ? ".min" : ".max"), "belongs to number fields only");
    if (min && max && *min > *max) fail(at + ".min", "is greater than max");
    if (field->has("default")) {
      auto value = field->get("default");
      if (!value.isString() && !value.isNumeric() && !value.isBoolean())
        fail(at + ".default", "must be a string, a number or true/false");
      if (type == "select" && !values.count(value.convert<std::string>()))
        fail(at + ".default", "'" + value.convert<std::string>() + "' is not one of the options");
    }
    if (field->has("show_when")) validateShowWhen(field, at, name, earlier);
    earlier.emplace(name, type);
  }
}

void validateProgress(const Object::Ptr& section, const std::string& where) { optionalRefresh(section, where); }

void validateSection(const Object::Ptr& section, const std::string& where, FormReferences& forms) {
  std::string type = requireText(section, "type", where);
  requireText(section, "title", where);
  if (type == "table") {
    validateTable(section, where, forms);
  } else if (type == "form") {
    validateForm(section, where);
  } else if (type == "action") {
    requireId(section, "action", where);
    requireText(section, "label", where);
    optionalText(section, "confirm", where);
  } else if (type == "graph") {
    requireText(section, "metric", where);
  } else if (type == "text") {
    requireText(section, "body", where);
  } else if (type == "progress") {
    validateProgress(section, where);
  } else {
    fail(where + ".type", "'" + type + "' is not one of table, form, action, graph, text, progress");
  }
}

}  // namespace

void validatePanelDefinition(std::string_view definitionJson) {
  Poco::Dynamic::Var parsed;
  try {
    Poco::JSON::Parser parser;
    parsed = parser.parse(std::string(definitionJson));
  } catch (const Poco::Exception& e) {
    throw Error(ErrorCode::InvalidArgument, "panel definition is not valid JSON: " + e.displayText());
  }
  if (parsed.type() != typeid(Object::Ptr)) fail("(top level)", "must be a JSON object");
  auto root = parsed.extract<Object::Ptr>();
  requireText(root, "title", "(top level)");
  auto sections = requireArray(root, "sections", "(top level)");
  std::map<std::string, std::pair<std::string, std::string>> byId;  // id → (type, where)
  std::map<std::string, std::string> hiddenForms;                  // id → where
  FormReferences opened;
  for (std::size_t i = 0; i < sections->size(); ++i) {
    std::string where = "sections[" + std::to_string(i) + "]";
    auto section = requireObject(sections, i, "sections");
    std::string id = requireId(section, "id", where);
    if (byId.count(id)) fail(where + ".id", "'" + id + "' is used twice");
    validateSection(section, where, opened);
    const auto type = section->getValue<std::string>("type");
    byId.emplace(id, std::make_pair(type, where));
    if (type == "form" && section->optValue<bool>("hidden", false)) hiddenForms.emplace(id, where);
  }
  for (const auto& [form, at] : opened) {
    auto it = byId.find(form);
    if (it == byId.end()) fail(at, "no section '" + form + "' in this panel");
    if (it->second.first != "form") fail(at, "section '" + form + "' is a " + it->second.first + ", not a form");
  }
  for (const auto& [form, at] : hiddenForms)
    if (!opened.count(form)) fail(at + ".hidden", "no row action opens the form '" + form + "', so it could never be shown");
}

}  // namespace shoal::host
