#pragma once
// Internal to shoal_tls: whole-file reads and atomic replacement for the PKI files.
#include <sys/types.h>

#include <filesystem>
#include <string>

namespace shoal::tls::detail {

// The whole content of `path`; Error(Failed) naming the file when it cannot be read.
std::string readWholeFile(const std::filesystem::path& path);

// Replaces `path` with `content` through a temporary file in the same directory, fsync and
// rename, so a reader (or a crash) sees the old file or the new one, never a partial one.
// The file gets exactly `mode`, whatever the umask; it never exists with wider permissions.
// Error(Failed) naming the file on any failure (the temporary file is removed).
void writeFileAtomically(const std::filesystem::path& path, const std::string& content, mode_t mode);

// Creates `dir` and missing parents; directories created here get mode 0700 (they hold
// private keys). Existing directories are left as they are.
void createPrivateDirectory(const std::filesystem::path& dir);

}  // namespace shoal::tls::detail
