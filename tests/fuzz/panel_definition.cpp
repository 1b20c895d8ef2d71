// A plugin's declarative panel definition (shoal_panel_desc), as the kernel validates it
// when the plugin registers: accepted or refused with Error(InvalidArgument).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "FuzzSupport.hpp"
#include "host/PanelDefinition.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    shoal::host::validatePanelDefinition(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const shoal::Error& e) {
    shoal::fuzz::expectRefusal(e);
  }
  return 0;
}
