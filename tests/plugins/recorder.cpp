// recorder — a test plugin whose queue handler records what it applied, so end-to-end tests
// can check exactly what ran where.
//
// Command kind "recorder.apply", payload {"key": "k1", "seq": 17}. Every call appends
// "key seq" to <file>.calls; a (key, seq) seen for the first time is also appended to
// <file>, the record of applications. Being idempotent per (key, seq) is what the ABI asks
// of every handler (a command may be re-applied after a crash); the .calls file shows how
// often that happened. <file> is [plugin.recorder] file in shoald's configuration.
// Kind "recorder.fail" always fails (for retry/backoff tests); "recorder.restart" records
// a restart of payload {"service": ...}; "flaky.restart" does too, but fails on a node whose
// [plugin.recorder] flaky is "fail" (for rollouts that must stop).
// ABI 1.3: "recorder.context" answers with the apply context it was given; the API endpoint
// (/v1/plugins/recorder/...) enqueues what it is sent (POST enqueue), reads a command back
// (GET commands/ID), answers a chosen status (status/CODE) and 405 for all but GET on
// only-get; its /metrics contribution is [plugin.recorder] metrics when set (to test what
// the host refuses), else a counter of the applications.
#include <fcntl.h>
#include <shoal/sdk.hpp>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <string>

namespace {

void appendLine(const std::string& file, const std::string& line) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw shoal::PluginError("cannot open " + file);
  // No fsync: what the tests need survives the process being killed (the page cache keeps
  // it); surviving a power cut is the node journal's job, not this recorder's.
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok) throw shoal::PluginError("cannot write " + file);
}

}  // namespace

class Recorder final : public shoal::Plugin {
 public:
  void init(shoal::Registrar& reg) override {
    file_ = reg.host().config("file", "");
    if (!file_.empty()) {
      std::ifstream in(file_);
      for (std::string line; std::getline(in, line);) applied_.insert(line);
    }
    reg.queueHandler("recorder.apply", "Records (key, seq) once",
                     [this](std::string_view payload, shoal::Reply& reply) { apply(payload, reply); },
                     [](std::string_view payload) { parse(payload); });
    reg.queueHandler("recorder.fail", "Always fails",
                     [](std::string_view, shoal::Reply&) { throw shoal::PluginError("recorder.fail fails on purpose"); });
    reg.queueHandler("recorder.restart", "Records a service restart",
                     [this](std::string_view payload, shoal::Reply& reply) {
                       requireFile();
                       appendLine(file_ + ".restarts", std::string(payload) + "\n");
                       reply.append("restarted");
                     });
    reg.queueHandler("recorder.context", "Answers with the apply context",
                     [](const shoal::ApplyContext& c, std::string_view, shoal::Reply& reply) {
                       reply.append("command=" + std::to_string(c.commandId) + " delivery=" +
                                    std::to_string(c.deliveryId) + " node=" + std::to_string(c.nodeId) +
                                    " attempt=" + std::to_string(c.attempt) + " kind=" + std::string(c.kind) +
                                    " key=" + std::string(c.orderingKey));
                     });
    reg.api([this](const shoal::ApiRequest& request) { return serve(request); });
    const auto metrics = reg.host().config("metrics");
    reg.metrics([this, metrics] {
      if (metrics) return *metrics;
      std::lock_guard lock(mutex_);
      return R"([{"name": "applied", "type": "counter", "help": "Applications recorded.", "labels": {"file": "recorder"}, "value": )" +
             std::to_string(applied_.size()) + "}]";
    });
    const bool flakyFails = reg.host().config("flaky", "") == "fail";
    reg.queueHandler("flaky.restart", "Restarts, or fails where configured to",
                     [this, flakyFails](std::string_view payload, shoal::Reply& reply) {
                       if (flakyFails) throw shoal::PluginError("flaky refuses to restart on this node");
                       requireFile();
                       appendLine(file_ + ".restarts", std::string(payload) + "\n");
                       reply.append("restarted");
                     });
  }

 private:
  std::string serve(const shoal::ApiRequest& request) {
    const std::string path(request.path);
    if (path == "enqueue") {
      if (request.method != "POST") throw shoal::MethodNotAllowed(request, "POST");
      return host().enqueue(request.body);
    }
    if (path.rfind("commands/", 0) == 0) {
      auto command = host().commandJson(std::stoll(path.substr(9)));
      if (!command) throw shoal::PluginError("no such command", SHOAL_ERR_NOT_FOUND);
      return *command;
    }
    if (path.rfind("status/", 0) == 0) {
      const auto code = static_cast<std::uint32_t>(std::stoul(path.substr(7)));
      if (code >= 400) throw shoal::HttpError(code, "answered " + std::to_string(code) + " on purpose");
      request.setStatus(code);
      return code == 204 ? "" : R"({"status": )" + std::to_string(code) + "}";
    }
    if (path == "only-get") {
      if (request.method != "GET") throw shoal::MethodNotAllowed(request, "GET");
      return R"({"got": true})";
    }
    throw shoal::PluginError("no such path: " + path, SHOAL_ERR_NOT_FOUND);
  }

  static std::string parse(std::string_view payload) {
    static const std::regex shape(R"re(^\s*\{\s*"key"\s*:\s*"([A-Za-z0-9_.-]{1,64})"\s*,\s*"seq"\s*:\s*([0-9]{1,12})\s*\}\s*$)re");
    std::cmatch m;
    std::string text(payload);
    if (!std::regex_match(text.c_str(), m, shape))
      throw shoal::PluginError("payload must be {\"key\": \"...\", \"seq\": N}", SHOAL_ERR_INVALID_ARGUMENT);
    return m[1].str() + " " + m[2].str();
  }

  void requireFile() const {
    if (file_.empty()) throw shoal::PluginError("[plugin.recorder] file is not set");
  }

  void apply(std::string_view payload, shoal::Reply& reply) {
    requireFile();
    std::string line = parse(payload);
    std::lock_guard lock(mutex_);
    appendLine(file_ + ".calls", line + "\n");
    if (applied_.insert(line).second) {
      appendLine(file_, line + "\n");
      // When it was applied, for the propagation benchmark.
      const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
      appendLine(file_ + ".times", line + " " + std::to_string(now) + "\n");
      reply.append("applied " + line);
    } else {
      reply.append("already applied " + line);
    }
  }

  std::string file_;
  std::mutex mutex_;
  std::set<std::string> applied_;
};

SHOAL_PLUGIN(Recorder, "recorder", "1.0.0", "Test plugin: records what the queue applied")
