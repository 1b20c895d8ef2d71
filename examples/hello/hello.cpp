// hello — an example shoal plugin, written as a third party would write one.
//
// It contributes one of everything a plugin can register:
//   - queue handler "hello.greet": payload {"name": "..."}; keeps a count of greetings per
//     name in the plugin's document store and answers "Hello, NAME (greeting #N)";
//   - a TCP probe for a "hello" service on port 7007 that answers "hello" to "ping";
//   - a panel "greetings" listing the counts, with a form to greet someone;
//   - a hook on "node.joined" that logs the new node;
//   - (ABI 1.1) an API endpoint on the manager: GET /v1/plugins/hello/greetings lists the
//     counts, POST /v1/plugins/hello/greetings {"name": ...} greets on every node through
//     the Command Queue. On an older shoald the endpoint is simply not offered.
//
// JSON is read and written with nlohmann/json (docs/adr/0009-json-for-plugins.md), never by
// hand: every payload, document and answer goes through it.
#include <shoal/sdk.hpp>

#include <cctype>
#include <nlohmann/json.hpp>
#include <string>

namespace {

using nlohmann::json;

// A JSON object, or PluginError(INVALID_ARGUMENT) saying what is wrong with the text.
json parseObject(std::string_view text, const char* what) {
  json parsed = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object())
    throw shoal::PluginError(std::string(what) + " must be a JSON object", SHOAL_ERR_INVALID_ARGUMENT);
  return parsed;
}

std::string requireName(std::string_view payload) {
  const json object = parseObject(payload, "hello.greet: the payload");
  const auto field = object.find("name");
  std::string name = field != object.end() && field->is_string() ? field->get<std::string>() : "";
  if (name.empty() || name.size() > 64)
    throw shoal::PluginError("hello.greet: \"name\" must be 1-64 letters, digits or '-'",
                             SHOAL_ERR_INVALID_ARGUMENT);
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
      throw shoal::PluginError("hello.greet: \"name\" must be 1-64 letters, digits or '-'",
                               SHOAL_ERR_INVALID_ARGUMENT);
  return name;
}

// The count of a greetings document: a number (earlier versions of this plugin wrote it as
// a string of digits, which is still read).
long storedCount(const json& document) {
  const auto count = document.find("count");
  if (count != document.end() && count->is_number_integer()) return count->get<long>();
  if (count != document.end() && count->is_string()) return std::stol(count->get<std::string>());
  return 0;
}

constexpr const char* kPanel = R"json({
  "title": "Greetings",
  "sections": [
    {"id": "counts", "type": "table", "title": "Who was greeted",
     "columns": [{"key": "name", "label": "Name"}, {"key": "count", "label": "Greetings"}]},
    {"id": "greet", "type": "form", "title": "Greet someone", "action": "greet",
     "fields": [{"name": "name", "label": "Name", "type": "text", "required": true}]}
  ]
})json";

}  // namespace

class Hello final : public shoal::Plugin {
 public:
  void init(shoal::Registrar& reg) override {
    greeting_ = reg.host().config("greeting", "Hello");

    reg.queueHandler(
        "hello.greet", "Greets someone and counts the greetings",
        [this](std::string_view payload, shoal::Reply& reply) { reply.append(greet(payload)); },
        [](std::string_view payload) { requireName(payload); });

    reg.probe(shoal::ProbeSpec::tcp("hello", 7007).step("ping\n", "hello").timing(2000, 1000, 2, 3));

    reg.panel(
        "greetings", kPanel,
        [this](std::string_view section, std::string_view) { return counts(section); },
        [this](std::string_view action, std::string_view input) {
          if (action != "greet") throw shoal::PluginError("unknown action", SHOAL_ERR_NOT_FOUND);
          return json{{"message", greet(input)}}.dump();
        });

    reg.hook("node.joined", [this](std::string_view, std::string_view payload) {
      host().info("a node joined: " + std::string(payload));
    });

    if (reg.host().offersAbi11()) {
      reg.api([this](const shoal::ApiRequest& request) -> std::string {
        if (request.path != "greetings") throw shoal::PluginError("no such endpoint", SHOAL_ERR_NOT_FOUND);
        if (request.method == "GET") return counts("counts");
        if (request.method != "POST") {
          if (host().offersAbi13()) throw shoal::MethodNotAllowed(request, "GET, POST");
          throw shoal::PluginError("use GET or POST", SHOAL_ERR_UNSUPPORTED);
        }
        const std::string name = requireName(request.body);
        // Answers {"id": N, "deliveries": M}: the command and how many nodes it went to.
        const json enqueue{{"kind", "hello.greet"},
                           {"payload", {{"name", name}}},
                           {"key", "hello"},
                           {"target", {{"all", true}}}};
        return host().enqueue(enqueue.dump());
      });
    }
  }

 private:
  std::string greet(std::string_view payload) {
    std::string name = requireName(payload);
    auto txn = host().transaction();
    auto doc = txn.get("greetings", name);
    const long count = doc ? storedCount(parseObject(doc->json, "a greetings document")) + 1 : 1;
    txn.put("greetings", name, json{{"name", name}, {"count", count}}.dump(), doc ? doc->revision : 0);
    txn.commit();
    return greeting_ + ", " + name + " (greeting #" + std::to_string(count) + ")";
  }

  std::string counts(std::string_view section) {
    if (section != "counts") throw shoal::PluginError("unknown section", SHOAL_ERR_NOT_FOUND);
    json rows = json::array();
    for (const auto& doc : host().transaction().list("greetings"))
      rows.push_back(parseObject(doc.json, "a greetings document"));
    return json{{"rows", rows}}.dump();
  }

  std::string greeting_;
};

SHOAL_PLUGIN(Hello, "hello", "1.0.0", "An example plugin that greets people")
