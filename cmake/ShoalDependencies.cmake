# Third-party libraries the kernel links. Plugins link none of these: they see sdk/ only.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

# Debian's Poco package files name a MySQL::client target that nothing defines;
# provide it from MariaDB's pkg-config file before Poco's DataMySQL is looked up.
if(NOT TARGET MySQL::client)
  pkg_check_modules(MARIADB REQUIRED IMPORTED_TARGET libmariadb)
  add_library(MySQL::client INTERFACE IMPORTED)
  target_link_libraries(MySQL::client INTERFACE PkgConfig::MARIADB)
endif()

find_package(Poco 1.11 REQUIRED COMPONENTS Foundation Util JSON Net NetSSL Crypto Data DataSQLite DataMySQL)
# Boost.DLL is header-only in 1.74 but needs Boost.Filesystem at link time.
find_package(Boost 1.74 REQUIRED COMPONENTS filesystem program_options)
