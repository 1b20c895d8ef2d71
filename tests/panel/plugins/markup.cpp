// A plugin whose panel is full of markup: in its title, its labels, its table's values, its
// per-node progress list and its action's answer; and a command kind, markup.fail, that
// always fails with markup in its output. The progress list moves on by 25 % each time it is
// read, so the browser test also sees a progress section refresh itself. The panel must show all of it as text; the browser test proves that no element is
// made from it and no script of it runs.
#include <shoal/sdk.hpp>

#include <algorithm>
#include <atomic>
#include <string>

namespace {

// Each would run script if it ever reached the page as markup.
constexpr const char* kImage = R"(<img src=x onerror="document.title='pwned'">)";
constexpr const char* kScript = R"(<script>document.title='pwned'</script>)";

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

class Markup final : public shoal::Plugin {
 public:
  void init(shoal::Registrar& reg) override {
    reg.queueHandler("markup.fail", "Always fails, with markup in its output",
                     [](std::string_view, shoal::Reply&) { throw shoal::PluginError(std::string("refused: ") + kImage); });
    const std::string definition =
        R"({"title": )" + quoted(std::string("Markup ") + kImage) + R"(, "sections": [)"
        R"({"id": "rows", "type": "table", "title": )" + quoted(kScript) +
        R"(, "columns": [{"key": "value", "label": )" + quoted(kImage) + R"(}]},)"
        R"({"id": "text", "type": "text", "title": "Text", "body": )" + quoted(kImage) + R"(},)"
        R"({"id": "poke", "type": "action", "title": "Action", "action": "poke", "label": )" + quoted(kScript) + R"(},)"
        R"({"id": "drain", "type": "progress", "title": "Progress", "refresh_seconds": 1}]})";
    reg.panel(
        "markup", definition,
        [this](std::string_view section, std::string_view) -> std::string {
          if (section == "drain") {
            const int progress = std::min(100, 25 * ++reads_);
            return R"({"summary": )" + quoted(kScript) + R"(, "nodes": [)"
                   R"({"node": )" + quoted(kImage) + R"(, "state": )" + quoted(progress == 100 ? "done" : "draining") +
                   R"(, "progress": )" + std::to_string(progress) + R"(, "detail": )" + quoted(kScript) + R"(},)"
                   R"({"node": "waiting", "state": "queued"}]})";
          }
          return R"({"rows": [{"value": )" + quoted(kImage) + R"(}, {"value": )" + quoted(kScript) + R"(}]})";
        },
        [](std::string_view, std::string_view) { return R"({"message": )" + quoted(kImage) + "}"; });
  }

 private:
  std::atomic<int> reads_{0};
};

}  // namespace

SHOAL_PLUGIN(Markup, "markup", "0.1.0", "Test plugin: a panel whose every value is markup")
