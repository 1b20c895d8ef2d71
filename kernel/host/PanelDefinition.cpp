#include "host/PanelDefinition.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <regex>
#include <set>
#include <string>

#include "common/Error.hpp"

namespace shoal::host {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

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

void requireId(const Object::Ptr& object, const std::string& key, const std::string& where) {
  static const std::regex idPattern("[a-z0-9_-]{1,64}");
  std::string id = requireText(object, key, where);
  if (!std::regex_match(id, idPattern))
    fail(where + "." + key, "'" + id + "' must match [a-z0-9_-]{1,64}");
}

void validateSection(const Object::Ptr& section, const std::string& where) {
  std::string type = requireText(section, "type", where);
  requireText(section, "title", where);
  if (type == "table") {
    auto columns = requireArray(section, "columns", where);
    for (std::size_t i = 0; i < columns->size(); ++i) {
      std::string at = where + ".columns[" + std::to_string(i) + "]";
      auto column = requireObject(columns, i, where + ".columns");
      requireText(column, "key", at);
      requireText(column, "label", at);
    }
  } else if (type == "form") {
    requireId(section, "action", where);
    auto fields = requireArray(section, "fields", where);
    static const std::set<std::string> fieldTypes{"text", "number", "password", "checkbox",
                                                  "select"};
    for (std::size_t i = 0; i < fields->size(); ++i) {
      std::string at = where + ".fields[" + std::to_string(i) + "]";
      auto field = requireObject(fields, i, where + ".fields");
      requireText(field, "name", at);
      requireText(field, "label", at);
      std::string fieldType = requireText(field, "type", at);
      if (!fieldTypes.count(fieldType))
        fail(at + ".type", "'" + fieldType + "' is not one of text, number, password, checkbox, select");
      if (fieldType == "select") requireArray(field, "options", at);
    }
  } else if (type == "action") {
    requireId(section, "action", where);
    requireText(section, "label", where);
  } else if (type == "graph") {
    requireText(section, "metric", where);
  } else if (type == "text") {
    requireText(section, "body", where);
  } else {
    fail(where + ".type", "'" + type + "' is not one of table, form, action, graph, text");
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
  std::set<std::string> ids;
  for (std::size_t i = 0; i < sections->size(); ++i) {
    std::string where = "sections[" + std::to_string(i) + "]";
    auto section = requireObject(sections, i, "sections");
    requireId(section, "id", where);
    std::string id = section->getValue<std::string>("id");
    if (!ids.insert(id).second) fail(where + ".id", "'" + id + "' is used twice");
    validateSection(section, where);
  }
}

}  // namespace shoal::host
