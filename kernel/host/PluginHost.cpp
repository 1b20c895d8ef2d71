#include "host/PluginHost.hpp"

#include <Poco/Logger.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstddef>
#include <cstring>
#include <regex>

#include "common/Error.hpp"
#include "host/HostApi.hpp"
#include "host/HostObjects.hpp"

namespace shoal::host {
namespace {

// The descriptor size of ABI 1.0: through on_shutdown. Smaller cannot be a 1.x plugin.
constexpr std::size_t kPluginApiV1_0Size =
    offsetof(shoal_plugin_api, on_shutdown) + sizeof(shoal_plugin_api::on_shutdown);

std::string abiText(unsigned major, unsigned minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

// The dynamic loader's own words from Boost.DLL's message, without Boost's wrapping or the
// file name (the record names the file already), e.g. "file too short".
std::string loaderReason(const std::string& what, const std::string& file) {
  const std::string marker = "dlerror system message: ";
  auto start = what.find(marker);
  if (start == std::string::npos) return what;
  start += marker.size();
  auto end = what.rfind(')');
  std::string reason = what.substr(start, end == std::string::npos || end < start ? std::string::npos : end - start);
  if (reason.rfind(file + ": ", 0) == 0) reason = reason.substr(file.size() + 2);
  return reason;
}

std::string text(shoal_str s) { return s.data ? std::string(s.data, s.len) : std::string(); }

std::string describeContributions(const Contributions& c) {
  auto list = [](const auto& entries, auto name) {
    std::string out;
    for (const auto& e : entries) out += (out.empty() ? "" : ", ") + name(e);
    return out.empty() ? std::string("none") : out;
  };
  return "queue handlers: " +
         list(c.queueHandlers, [](const QueueHandlerEntry& e) { return e.kind; }) +
         "; probes: " + list(c.probes, [](const ProbeEntry& e) { return e.service; }) +
         "; panels: " + list(c.panels, [](const PanelEntry& e) { return e.id; }) +
         "; hooks: " + list(c.hooks, [](const HookEntry& e) { return e.event; });
}

}  // namespace

struct PluginHost::Library {
  boost::dll::shared_library library;
  const shoal_plugin_api* api = nullptr;  // null when init never ran
  shoal_plugin_api descriptor{};          // the plugin's descriptor as this host reads it
  std::unique_ptr<shoal_plugin_ctx> context;
  bool initialized = false;  // on_init ran; on_shutdown is owed
};

PluginHost::PluginHost(HostServices services)
    : services_(services), logger_(Poco::Logger::get("shoald.plugins")) {}

PluginHost::~PluginHost() { shutdown(); }

void PluginHost::registerBuiltIns(const Contributions& builtIns) { registries_.commit(builtIns); }

std::vector<PluginRecord> PluginHost::loadDirectory(const std::filesystem::path& directory) {
  std::error_code ec;
  if (!std::filesystem::is_directory(directory, ec))
    throw Error(ErrorCode::InvalidArgument,
                "plugin directory " + directory.string() + " does not exist or is not a directory");
  std::vector<std::filesystem::path> files;
  for (std::filesystem::directory_iterator it(directory, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->path().extension() == ".so" && it->is_regular_file()) files.push_back(it->path());
  }
  if (ec)
    throw Error(ErrorCode::InvalidArgument,
                "cannot read plugin directory " + directory.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  std::vector<PluginRecord> loaded;
  for (const auto& file : files) loaded.push_back(load(file));
  return loaded;
}

PluginRecord PluginHost::refuse(PluginRecord record, std::string reason) {
  record.state = PluginState::Refused;
  record.reason = std::move(reason);
  record.contributions = Contributions{};
  logger_.warning("refused plugin " + record.file.string() + ": " + record.reason);
  records_.push_back(record);
  return record;
}

PluginRecord PluginHost::load(const std::filesystem::path& file) {
  PluginRecord record;
  record.file = std::filesystem::absolute(file).lexically_normal();

  auto library = std::make_unique<Library>();
  try {
    library->library.load(boost::dll::fs::path(record.file.string()),
                          boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return refuse(record, "not a loadable shared library: " + loaderReason(e.what(), record.file.string()));
  }
  if (!library->library.has(SHOAL_PLUGIN_ENTRY_SYMBOL))
    return refuse(record, std::string("not a shoal plugin: it does not export ") +
                              SHOAL_PLUGIN_ENTRY_SYMBOL);

  auto& entry = library->library.get<const shoal_plugin_api*(const shoal_host_api*)>(
      SHOAL_PLUGIN_ENTRY_SYMBOL);
  const shoal_plugin_api* api = nullptr;
  try {
    api = entry(hostApiTable());
  } catch (const std::exception& e) {
    return refuse(record, std::string("its entry point threw an exception: ") + e.what());
  } catch (...) {
    return refuse(record, "its entry point threw an exception");
  }
  const std::string hostAbi = abiText(SHOAL_ABI_VERSION_MAJOR, SHOAL_ABI_VERSION_MINOR);
  if (api == nullptr)
    return refuse(record, "its entry point declined to load (returned no descriptor); "
                          "it may need another ABI than this shoald's " + hostAbi);

  // Read the version fields first, then only as far as both sides know the table.
  if (api->struct_size < offsetof(shoal_plugin_api, name))
    return refuse(record, "its descriptor is " + std::to_string(api->struct_size) +
                              " bytes, too small to be a shoal plugin descriptor");
  record.abiMajor = api->abi_major;
  record.abiMinor = api->abi_minor;
  const std::string pluginAbi = abiText(api->abi_major, api->abi_minor);
  if (api->abi_major != SHOAL_ABI_VERSION_MAJOR)
    return refuse(record, "it was built for plugin ABI " + pluginAbi + " but this shoald provides ABI " +
                              hostAbi + "; major versions must match" +
                              (api->abi_major > SHOAL_ABI_VERSION_MAJOR ? " (upgrade shoald)"
                                                                        : " (rebuild the plugin)"));
  if (api->struct_size > sizeof(shoal_plugin_api))
    return refuse(record, "its descriptor is " + std::to_string(api->struct_size) +
                              " bytes, larger than the " + std::to_string(sizeof(shoal_plugin_api)) +
                              " bytes this shoald knows (plugin built for ABI " + pluginAbi +
                              ", this shoald provides ABI " + hostAbi + "); upgrade shoald");
  if (api->struct_size < kPluginApiV1_0Size)
    return refuse(record, "its descriptor is " + std::to_string(api->struct_size) +
                              " bytes, smaller than the " + std::to_string(kPluginApiV1_0Size) +
                              " bytes of ABI 1.0");
  std::memcpy(&library->descriptor, api, api->struct_size);
  const shoal_plugin_api& d = library->descriptor;
  record.name = text(d.name);
  record.version = text(d.version);
  record.description = text(d.description);

  static const std::regex namePattern("[a-z][a-z0-9_-]{0,63}");
  if (!std::regex_match(record.name, namePattern))
    return refuse(record, "its name '" + record.name + "' must match [a-z][a-z0-9_-]{0,63}");
  if (record.name == kKernelContributorName)
    return refuse(record, "its name '" + record.name + "' is the kernel's own, for its built-in handlers");
  if (record.version.empty()) return refuse(record, "it declares no version");
  if (d.on_init == nullptr) return refuse(record, "its descriptor has no on_init");
  for (const auto& other : records_) {
    if (other.state == PluginState::Loaded && other.name == record.name)
      return refuse(record, "a plugin named '" + record.name + "' is already loaded from " +
                                other.file.string());
  }

  auto context = std::make_unique<shoal_plugin_ctx>();
  context->pluginName = record.name;
  context->logger = &Poco::Logger::get("plugin." + record.name);
  context->config = services_.config;
  context->documents = services_.documents;
  context->registries = &registries_;
  context->runtime = &runtime_;
  context->initializing = true;

  shoal_reply reply;
  shoal_status status = SHOAL_ERR_INTERNAL;
  std::string failure;
  library->api = api;
  library->initialized = true;
  try {
    status = d.on_init(d.instance, context.get(), &reply);
  } catch (const std::exception& e) {
    failure = std::string("its init threw an exception: ") + e.what();
  } catch (...) {
    failure = "its init threw an exception";
  }
  context->initializing = false;
  if (failure.empty() && status != SHOAL_OK) {
    failure = "its init failed (" + statusName(status) + ")" +
              (reply.error.empty() ? std::string() : ": " + reply.error);
  }
  if (failure.empty() && !context->firstRegistrationError.empty())
    failure = "a registration was refused: " + context->firstRegistrationError;
  if (failure.empty()) {
    try {
      registries_.commit(context->staged);
    } catch (const Error& e) {
      failure = std::string("a registration was refused: ") + e.what();
    }
  }
  if (!failure.empty()) {
    // Init ran, so the plugin may hold resources: let it release them, and keep the library
    // mapped until the host stops in case anything of it is still referenced.
    if (d.on_shutdown != nullptr) {
      try {
        d.on_shutdown(d.instance);
      } catch (...) {
      }
    }
    library->initialized = false;
    library->context = std::move(context);
    libraries_.push_back(std::move(library));
    return refuse(record, failure);
  }

  record.state = PluginState::Loaded;
  record.contributions = context->staged;
  library->context = std::move(context);
  libraries_.push_back(std::move(library));
  records_.push_back(record);
  logger_.information("loaded plugin " + record.name + " " + record.version + " (ABI " +
                      pluginAbi + ") from " + record.file.string() + " — " +
                      describeContributions(record.contributions));
  return record;
}

void PluginHost::shutdown() {
  for (auto it = libraries_.rbegin(); it != libraries_.rend(); ++it) {
    Library& library = **it;
    if (!library.initialized) continue;
    library.initialized = false;
    if (library.descriptor.on_shutdown == nullptr) continue;
    try {
      library.descriptor.on_shutdown(library.descriptor.instance);
    } catch (...) {
      logger_.error("plugin " + (library.context ? library.context->pluginName : std::string("?")) +
                    " threw from on_shutdown");
    }
  }
  registries_.clear();
  // Unload in reverse order of loading.
  while (!libraries_.empty()) libraries_.pop_back();
}

}  // namespace shoal::host
