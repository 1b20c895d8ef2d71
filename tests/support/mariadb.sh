#!/usr/bin/env bash
# Starts and stops a throwaway MariaDB server for the test suite (a ctest fixture).
#
#   mariadb.sh start <statedir> [port]   fresh datadir, server on 127.0.0.1:<port> (default 33061)
#                                        and a socket, database shoal_test, user shoal/shoalpw
#   mariadb.sh stop  <statedir>          shut the server down and remove its files
#
# Everything lives under <statedir>: datadir, pid file, log, socket (unless the path would be
# too long for a Unix socket, then the socket goes to /tmp under a name derived from statedir).
# No system service, no option files (--no-defaults), no systemd. max_allowed_packet is 64M
# so documents of the store's 16 MiB limit fit in one packet.
set -euo pipefail

readonly DB_NAME=shoal_test
readonly DB_USER=shoal
readonly DB_PASSWORD=shoalpw
readonly START_TIMEOUT=30
readonly STOP_TIMEOUT=30

die() {
  echo "mariadb.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: mariadb.sh start <statedir> [port] | mariadb.sh stop <statedir>" >&2
  exit 2
}

find_tool() {
  # Debian puts mariadbd in /usr/sbin, which is not always on a non-root PATH.
  local name=$1
  local found
  found=$(PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v "$name" || true)
  [[ -n $found ]] || die "'$name' not found. Install the MariaDB server and client (Debian: apt-get install mariadb-server) to run the MariaDB tests."
  echo "$found"
}

[[ $# -ge 2 ]] || usage
readonly ACTION=$1
[[ $ACTION == start || $ACTION == stop ]] || usage
STATEDIR=$2
mkdir -p "$STATEDIR"
STATEDIR=$(cd "$STATEDIR" && pwd)
readonly STATEDIR
readonly PORT=${3:-33061}
readonly DATADIR=$STATEDIR/data
readonly PIDFILE=$STATEDIR/mariadbd.pid
readonly LOGFILE=$STATEDIR/mariadbd.log

SOCKET=$STATEDIR/mariadbd.sock
if [[ ${#SOCKET} -gt 100 ]]; then
  SOCKET=/tmp/shoal-mariadb-$(printf '%s' "$STATEDIR" | md5sum | cut -c1-12).sock
fi
readonly SOCKET

server_pid() {
  # The pid from the pid file, if that process is still a running mariadbd.
  [[ -f $PIDFILE ]] || return 1
  local pid
  pid=$(tr -dc '0-9' <"$PIDFILE")
  [[ -n $pid ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  grep -qa mariadbd "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

wait_gone() {
  local pid=$1 deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 0.1
  done
}

stop_server() {
  local pid
  if pid=$(server_pid); then
    local admin
    admin=$(find_tool mariadb-admin)
    "$admin" --no-defaults --socket="$SOCKET" --user=root --connect-timeout=5 shutdown \
      >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid"; then
      echo "mariadb.sh: mariadbd (pid $pid) did not stop within ${STOP_TIMEOUT}s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" || die "mariadbd (pid $pid) survived SIGKILL"
    fi
  fi
  rm -rf "$DATADIR" "$PIDFILE" "$SOCKET" "$SOCKET.lock"
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

start_server() {
  local mariadbd install_db admin client
  mariadbd=$(find_tool mariadbd)
  install_db=$(find_tool mariadb-install-db)
  admin=$(find_tool mariadb-admin)
  client=$(find_tool mariadb)

  # A server left over from an earlier run in this statedir goes first.
  stop_server
  if port_in_use; then
    die "port $PORT on 127.0.0.1 is already in use by another program; free it or configure another port (cmake -DSHOAL_TEST_MYSQL_PORT=...)"
  fi

  mkdir -p "$DATADIR"
  : >"$LOGFILE"
  if ! "$install_db" --no-defaults --user="$(id -un)" --datadir="$DATADIR" --skip-test-db \
      --auth-root-authentication-method=normal >>"$LOGFILE" 2>&1; then
    tail -n 30 "$LOGFILE" >&2
    die "mariadb-install-db failed (log: $LOGFILE)"
  fi

  setsid "$mariadbd" --no-defaults --user="$(id -un)" --datadir="$DATADIR" --socket="$SOCKET" \
    --port="$PORT" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$PIDFILE" \
    --log-error="$LOGFILE" --innodb-buffer-pool-size=64M --max-allowed-packet=64M </dev/null >>"$LOGFILE" 2>&1 &
  local launched=$!

  local deadline=$((SECONDS + START_TIMEOUT))
  until "$admin" --no-defaults --socket="$SOCKET" --user=root --connect-timeout=2 ping \
      >/dev/null 2>&1; do
    if ! kill -0 "$launched" 2>/dev/null; then
      tail -n 30 "$LOGFILE" >&2
      die "mariadbd exited during startup (log: $LOGFILE)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$LOGFILE" >&2
      kill -TERM "$launched" 2>/dev/null || true
      die "mariadbd did not answer within ${START_TIMEOUT}s (log: $LOGFILE)"
    fi
    sleep 0.1
  done

  "$client" --no-defaults --socket="$SOCKET" --user=root <<SQL
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
  echo "mariadb.sh: MariaDB ready on 127.0.0.1:$PORT and $SOCKET (database $DB_NAME, user $DB_USER)"
}

case $ACTION in
  start) start_server ;;
  stop)
    stop_server
    rmdir "$STATEDIR" 2>/dev/null || true
    echo "mariadb.sh: MariaDB in $STATEDIR stopped"
    ;;
  *) usage ;;
esac
