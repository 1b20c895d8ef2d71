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
#include <shoal/sdk.hpp>

#include <cctype>
#include <string>

namespace {

// The payloads here are tiny and fixed; a real plugin would use a JSON library.
std::string jsonString(std::string_view json, std::string_view field) {
  std::string needle = "\"" + std::string(field) + "\"";
  auto at = json.find(needle);
  if (at == std::string_view::npos) return {};
  at = json.find(':', at + needle.size());
  if (at == std::string_view::npos) return {};
  at = json.find('"', at);
  if (at == std::string_view::npos) return {};
  auto end = json.find('"', at + 1);
  if (end == std::string_view::npos) return {};
  return std::string(json.substr(at + 1, end - at - 1));
}

std::string requireName(std::string_view payload) {
  std::string name = jsonString(payload, "name");
  if (name.empty() || name.size() > 64)
    throw shoal::PluginError("hello.greet: \"name\" must be 1-64 letters, digits or '-'",
                             SHOAL_ERR_INVALID_ARGUMENT);
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
      throw shoal::PluginError("hello.greet: \"name\" must be 1-64 letters, digits or '-'",
                               SHOAL_ERR_INVALID_ARGUMENT);
  return name;
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
          return "{\"message\":\"" + greet(input) + "\"}";
        });

    reg.hook("node.joined", [this](std::string_view, std::string_view payload) {
      host().info("a node joined: " + std::string(payload));
    });

    if (reg.host().offersAbi11()) {
      reg.api([this](const shoal::ApiRequest& request) -> std::string {
        if (request.path != "greetings") throw shoal::PluginError("no such endpoint", SHOAL_ERR_NOT_FOUND);
        if (request.method == "GET") return counts("counts");
        if (request.method != "POST") throw shoal::PluginError("use GET or POST", SHOAL_ERR_UNSUPPORTED);
        const std::string name = requireName(request.body);
        // Answers {"id": N, "deliveries": M}: the command and how many nodes it went to.
        return host().enqueue(R"({"kind":"hello.greet","target":{"all":true},"key":"hello","payload":{"name":")" +
                              name + "\"}}");
      });
    }
  }

 private:
  std::string greet(std::string_view payload) {
    std::string name = requireName(payload);
    auto txn = host().transaction();
    auto doc = txn.get("greetings", name);
    long count = doc ? std::stol(jsonString(doc->json, "count")) + 1 : 1;
    txn.put("greetings", name, "{\"name\":\"" + name + "\",\"count\":\"" + std::to_string(count) + "\"}",
            doc ? doc->revision : 0);
    txn.commit();
    return greeting_ + ", " + name + " (greeting #" + std::to_string(count) + ")";
  }

  std::string counts(std::string_view section) {
    if (section != "counts") throw shoal::PluginError("unknown section", SHOAL_ERR_NOT_FOUND);
    std::string rows;
    for (const auto& doc : host().transaction().list("greetings"))
      rows += (rows.empty() ? "" : ",") + doc.json;
    return "{\"rows\":[" + rows + "]}";
  }

  std::string greeting_;
};

SHOAL_PLUGIN(Hello, "hello", "1.0.0", "An example plugin that greets people")
