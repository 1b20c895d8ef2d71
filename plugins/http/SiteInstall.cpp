#include "SiteInstall.hpp"

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include <shoal/sdk.hpp>

#include "SiteRender.hpp"
#include "common/ProxyProtocolConfig.hpp"
#include <shoal/process.hpp>

namespace shoal::http {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& message) { throw shoal::PluginError(message); }

std::string systemError(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes `path` whole or not at all: a temporary file beside it, then rename.
void writeFile(const std::string& path, const std::string& content, mode_t mode, uid_t uid = 0, gid_t gid = 0) {
  const std::string temporary = path + ".shoal-new";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) fail(systemError("cannot write", temporary));
  bool ok = ::fchmod(fd, mode) == 0 && ::fchown(fd, uid, gid) == 0;
  for (std::size_t done = 0; ok && done < content.size();) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const std::string error = ok ? "" : systemError("cannot write", temporary);
  ::close(fd);
  if (!ok || ::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string message = ok ? systemError("cannot rename into", path) : error;
    ::unlink(temporary.c_str());
    fail(message);
  }
}

// mkdir -p: missing folders are created with `mode` and owned by uid:gid. Existing ones are
// left as they are (a customer's own permissions on their folders stay theirs). True when the
// last folder was created now.
bool makeFolders(const std::string& path, mode_t mode, uid_t uid = 0, gid_t gid = 0) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) fail(path + " exists and is not a folder");
    return false;
  }
  const auto parent = fs::path(path).parent_path().string();
  if (!parent.empty() && parent != path) makeFolders(parent, 0755);
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) fail(systemError("cannot create", path));
  if (::chown(path.c_str(), uid, gid) != 0 || ::chmod(path.c_str(), mode) != 0) fail(systemError("cannot set the owner of", path));
  return true;
}

// A folder of the account (under its home), owned by it; the folders above home are root's.
bool makeAccountFolder(const Account& a, const std::string& path, mode_t mode) {
  const auto parent = fs::path(path).parent_path().string();
  if (path != a.home) makeAccountFolder(a, parent, 0755);
  else makeFolders(parent, 0755);
  return makeFolders(path, mode, a.uid, a.gid);
}

std::string defaultIndex(const Domain& site) {
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + site.name +
         "</title></head>\n<body><h1>" + site.name + "</h1><p>This site is hosted here. Its owner has not "
         "uploaded anything yet.</p></body></html>\n";
}

// Every folder and file the vhost and the pool name, before either is installed.
void prepareFolders(const Account& a, const SiteSettings& s) {
  makeFolders(s.sitesDir, 0755);
  makeFolders(s.poolsDir, 0755);
  makeFolders(s.logDir, 0755);
  makeFolders(s.phpRunDir, 0755);
  makeFolders(s.acmeChallengeRoot + "/.well-known/acme-challenge", 0755);
  makeFolders(s.staticDir, 0755);
  const auto page = suspendedPage();
  if (readFile(suspendedPagePath(s)) != page) writeFile(suspendedPagePath(s), page, 0644);
  // The home lets nginx through to the docroots but lists nothing to other users.
  makeAccountFolder(a, a.home, 0711);
  makeAccountFolder(a, accountTmp(a), 0700);
  for (const Domain* site : a.sites()) {
    const auto root = docroot(a, *site);
    // The default page only in a folder made now: never over a customer's own files.
    if (makeAccountFolder(a, root, 0755)) writeFile(root + "/index.html", defaultIndex(*site), 0644, a.uid, a.gid);
  }
}

// One file of an account as it should be: `content` nullopt = the file must not exist.
struct Planned {
  std::string path;
  std::optional<std::string> content;
  mode_t mode = 0644;
};

// In the order install() goes through them: on a put the files a vhost names come before it,
// on a removal the vhost goes first, so a stop half-way never leaves a vhost naming a missing
// file (which would fail the next reload of anyone's change).
std::vector<Planned> plan(const Account& a, const SiteSettings& s, bool removing) {
  std::vector<Planned> files;
  const auto certs = certFolder(s.certDir, a);
  const bool tls = !removing && a.certificate;
  files.push_back({certs + "/fullchain.pem", tls ? std::optional(a.certificate->certificatePem) : std::nullopt, 0644});
  files.push_back({certs + "/privkey.pem", tls ? std::optional(a.certificate->keyPem) : std::nullopt, 0600});
  files.push_back({poolPath(s, a), removing ? std::nullopt : renderPool(a, s), 0644});
  files.push_back({vhostPath(s, a), removing ? std::nullopt : std::optional(renderVhost(a, s, s.certDir)), 0644});
  if (removing || !a.certificate) std::reverse(files.begin(), files.end());
  return files;
}

const Planned& planned(const std::vector<Planned>& files, const std::string& path) {
  for (const auto& f : files)
    if (f.path == path) return f;
  throw std::logic_error("no planned file " + path);
}

std::string digest(const std::vector<Planned>& files) {
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  auto sorted = files;
  std::sort(sorted.begin(), sorted.end(), [](const Planned& x, const Planned& y) { return x.path < y.path; });
  for (const auto& f : sorted) {
    sha.update(f.path + "\n");
    sha.update(f.content ? std::to_string(f.content->size()) + "\n" + *f.content : std::string("absent\n"));
  }
  return "sha256:" + Poco::DigestEngine::digestToHex(sha.digest());
}

std::string runChecked(const std::vector<std::string>& argv, const SiteSettings& s) {
  const auto result = shoal::runProgram(argv, std::chrono::milliseconds(s.commandTimeoutMs));
  if (result.succeeded()) return "";
  std::string output = result.output;
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  return shoal::plugins::commandLine(argv) + " " + result.describe() + (output.empty() ? "" : ": " + output);
}

std::vector<std::string> with(std::vector<std::string> argv, std::initializer_list<std::string> more) {
  argv.insert(argv.end(), more);
  return argv;
}

// The staging folder of one account, removed whatever happens.
class Staging {
 public:
  Staging(const SiteSettings& s, const Account& a) : path_(s.sitesDir + "/.staging-" + a.name) {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
    makeFolders(path_, 0700);
  }
  ~Staging() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// nginx's checker on the account's vhost alone, in a main configuration of its own. The
// staged vhost names the staged certificate files, so a bad certificate is refused before it
// replaces a good one. Empty = accepted, else the checker's message.
std::string checkVhostAlone(const Account& a, const SiteSettings& s, const Staging& staging) {
  const std::string dir = staging.path();
  if (a.certificate) {
    makeFolders(dir + "/certs/" + a.name, 0700);
    writeFile(dir + "/certs/" + a.name + "/fullchain.pem", a.certificate->certificatePem, 0644);
    writeFile(dir + "/certs/" + a.name + "/privkey.pem", a.certificate->keyPem, 0600);
  }
  writeFile(dir + "/site.conf", renderVhost(a, s, dir + "/certs"), 0600);
  writeFile(dir + "/check-nginx.conf",
            "# Checks " + vhostPath(s, a) + " alone (staged), before it is installed.\n"
            "pid " + dir + "/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n    include " + dir + "/site.conf;\n}\n",
            0600);
  return runChecked(with(s.nginxCommand, {"-t", "-q", "-p", dir + "/", "-c", dir + "/check-nginx.conf"}), s);
}

std::string checkPoolAlone(const std::string& pool, const SiteSettings& s, const Staging& staging) {
  const std::string dir = staging.path();
  writeFile(dir + "/pool.conf", pool, 0600);
  writeFile(dir + "/check-php-fpm.conf",
            "; Checks a pool alone (staged), before it is installed.\n[global]\npid = " + dir +
                "/php-fpm.pid\nerror_log = /proc/self/fd/2\ninclude = " + dir + "/pool.conf\n",
            0600);
  return runChecked(with(s.phpFpmCommand, {"-t", "-y", dir + "/check-php-fpm.conf"}), s);
}

// What install() changed, to report and to undo.
struct Change {
  std::string path;
  std::optional<std::string> before;  // nullopt: did not exist
  bool removed = false;               // false: written
};

std::vector<Change> install(const std::vector<Planned>& files) {
  std::vector<Change> changes;
  for (const auto& f : files) {
    auto before = readFile(f.path);
    if (before == f.content) continue;
    if (f.content) {
      makeFolders(fs::path(f.path).parent_path().string(), f.mode == 0600 ? 0700 : 0755);
      writeFile(f.path, *f.content, f.mode);
    } else if (::unlink(f.path.c_str()) != 0 && errno != ENOENT) {
      fail(systemError("cannot remove", f.path));
    }
    changes.push_back({f.path, std::move(before), !f.content});
  }
  return changes;
}

void undo(const std::vector<Change>& changes, const std::vector<Planned>& files) {
  for (auto it = changes.rbegin(); it != changes.rend(); ++it) {
    mode_t mode = 0644;
    for (const auto& f : files)
      if (f.path == it->path) mode = f.mode;
    if (it->before) writeFile(it->path, *it->before, mode);
    else ::unlink(it->path.c_str());
  }
}

bool changed(const std::vector<Change>& changes, const std::string& path, bool removed) {
  return std::any_of(changes.begin(), changes.end(), [&](const Change& c) { return c.path == path && c.removed == removed; });
}

std::string report(const std::vector<Change>& changes, const std::vector<Planned>& files, const std::string& extra) {
  std::string out;
  for (const auto& c : changes) out += (c.removed ? "removed " : "wrote ") + c.path + "\n";
  if (changes.empty()) out += "unchanged\n";
  out += extra;
  return out + "digest " + digest(files);
}

// Reloads after `changes`: a new pool before nginx sends it requests, a removed one after
// nginx stopped sending them. On a failure the files go back as they were.
std::string reload(const Account& a, const SiteSettings& s, const std::vector<Change>& changes,
                   const std::vector<Planned>& files) {
  if (changes.empty()) return "";
  const auto pool = poolPath(s, a);
  const bool poolWritten = changed(changes, pool, false), poolRemoved = changed(changes, pool, true);
  std::string done;
  auto run = [&](const std::vector<std::string>& argv) {
    const auto error = runChecked(argv, s);
    if (!error.empty()) {
      undo(changes, files);
      fail("reload failed, the previous files are back: " + error);
    }
    done += "reloaded: " + shoal::plugins::commandLine(argv) + "\n";
  };
  if (poolWritten) run(s.phpFpmReloadCommand);
  run(s.nginxReloadCommand);
  if (poolRemoved) run(s.phpFpmReloadCommand);
  return done;
}

void removeStale(const std::string& path) { ::unlink(path.c_str()); }

// The account's Unix user must exist here as the account says (account.identity.put ran
// before, same ordering key); else nothing of the account is written, not even a folder.
void requireIdentity(const Account& a) {
  passwd entry{}, *found = nullptr;
  std::vector<char> buffer(16384);
  ::getpwnam_r(a.name.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (!found)
    fail("the user " + a.name + " does not exist on this node (account.identity.put makes it); nothing written");
  if (found->pw_uid != a.uid || found->pw_gid != a.gid)
    fail("the user " + a.name + " has uid " + std::to_string(found->pw_uid) + " gid " + std::to_string(found->pw_gid) +
         " on this node, the account has uid " + std::to_string(a.uid) + " gid " + std::to_string(a.gid) +
         "; nothing written");
}

}  // namespace

std::string putSite(const Account& a, const SiteSettings& s) {
  requireIdentity(a);
  prepareFolders(a, s);
  const auto files = plan(a, s, false);
  {
    Staging staging(s, a);
    if (auto error = checkVhostAlone(a, s, staging); !error.empty()) {
      writeFile(vhostPath(s, a) + ".rejected", *planned(files, vhostPath(s, a)).content, 0644);
      fail("nginx refused the sites of account " + a.name + " (kept as " + vhostPath(s, a) +
           ".rejected; the previous file keeps serving): " + error);
    }
    if (const auto& pool = planned(files, poolPath(s, a)); pool.content) {
      if (auto error = checkPoolAlone(*pool.content, s, staging); !error.empty()) {
        writeFile(poolPath(s, a) + ".rejected", *pool.content, 0644);
        fail("php-fpm refused the pool of account " + a.name + " (kept as " + poolPath(s, a) +
             ".rejected; the previous pool keeps serving): " + error);
      }
    }
  }
  const auto changes = install(files);
  if (!changes.empty()) {
    // The check above saw the account alone; the admin's own server blocks may clash with it.
    if (auto error = runChecked(with(s.nginxCommand, {"-t", "-q"}), s); !error.empty()) {
      undo(changes, files);
      writeFile(vhostPath(s, a) + ".rejected", *planned(files, vhostPath(s, a)).content, 0644);
      fail("nginx refused the whole configuration with the sites of account " + a.name + " (kept as " +
           vhostPath(s, a) + ".rejected; the previous files are back): " + error);
    }
  }
  const auto reloaded = reload(a, s, changes, files);
  removeStale(vhostPath(s, a) + ".rejected");
  removeStale(poolPath(s, a) + ".rejected");
  return report(changes, files, reloaded);
}

std::string removeSite(const Account& a, const SiteSettings& s) {
  const auto files = plan(a, s, true);
  const auto changes = install(files);
  const auto reloaded = reload(a, s, changes, files);
  removeStale(vhostPath(s, a) + ".rejected");
  removeStale(poolPath(s, a) + ".rejected");
  ::rmdir(certFolder(s.certDir, a).c_str());
  return report(changes, files, reloaded);
}

}  // namespace shoal::http
