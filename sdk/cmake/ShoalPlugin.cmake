# shoal_add_plugin(<target> <source>...)
#
# Builds a shoal plugin: a MODULE library named <target>.so with hidden symbol visibility,
# so that the entry point (exported by SHOAL_PLUGIN or SHOAL_EXPORT) is its only export.
# Shipped in the shoal CMake package; used the same way in-tree and by third parties.
function(shoal_add_plugin target)
  add_library(${target} MODULE ${ARGN})
  target_link_libraries(${target} PRIVATE shoal::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  # Unresolved symbols are an error at link time, not a surprise at load time. The version
  # script keeps the entry point the only export, also hiding the C++ standard library's
  # template instantiations, which its headers mark with default visibility.
  set(_script ${CMAKE_CURRENT_BINARY_DIR}/${target}.exports.map)
  file(WRITE ${_script} "{ global: shoal_plugin_entry; local: *; };\n")
  target_link_options(${target} PRIVATE "LINKER:--no-undefined" "LINKER:--version-script=${_script}")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${_script})
endfunction()
