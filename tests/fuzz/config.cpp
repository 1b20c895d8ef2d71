// shoald's configuration file, as loadConfig reads it at start: the input is the file's
// content; it is loaded or refused with Error(InvalidArgument), never anything else.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "FuzzSupport.hpp"
#include "daemon/Config.hpp"

namespace {

// One file per process, rewritten for each input, removed at exit.
const std::filesystem::path& configFile() {
  static const std::filesystem::path file = [] {
    const char* tmp = std::getenv("TMPDIR");
    auto path = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") /
                ("shoal-fuzz-config-" + std::to_string(::getpid()) + ".conf");
    std::atexit([] { std::filesystem::remove(configFile()); });
    return path;
  }();
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::ofstream out(configFile(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const auto loaded = shoal::daemon::loadConfig(configFile(), true, {});
    const auto& s = loaded.settings;
    FUZZ_CHECK(s.role == "manager" || s.role == "node", "a configuration accepted with an unknown role");
    FUZZ_CHECK(s.dataDir.is_absolute() && s.pluginDir.is_absolute(), "a configuration accepted with a relative directory");
  } catch (const shoal::Error& e) {
    shoal::fuzz::expectRefusal(e);
  }
  return 0;
}
