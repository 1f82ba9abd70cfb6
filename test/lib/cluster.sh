# Shell helpers to run a throwaway PostgreSQL cluster as the postgres OS user.
# Source this file; every function reports errors on stderr and returns non-zero.
#
#   cluster_new VAR           make a temp dir owned by postgres; sets VAR
#   cluster_start DIR [conf]  initdb + start on a free port; prints the port.
#                             @CHAT_PORT@ in conf becomes another free port,
#                             also written to DIR/chat_port
#   cluster_stop DIR          stop by pid (fast), also after a failed start
#   cluster_psql DIR args...  psql as postgres over the cluster's socket

PGBIN=${PGBIN:-$(pg_config --bindir)}

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cluster_new() {
  local d
  d=$(mktemp -d /tmp/chat-pg.XXXXXX) || return 1
  chown postgres: "$d" 2>/dev/null || true
  chmod 755 "$d"
  printf -v "$1" '%s' "$d"
}

# cluster_start DIR [extra postgresql.conf text]: echo the port on success.
cluster_start() {
  local dir=$1 extra=${2:-} port chat_port
  port=$(free_port)
  chat_port=$(free_port)
  extra=${extra//@CHAT_PORT@/$chat_port}
  echo "$chat_port" >"$dir/chat_port"
  as_postgres "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 \
    --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$dir'
shared_preload_libraries = 'chat'
fsync = off
log_line_prefix = '%m [%p] %b '
$extra
CONF
  as_postgres "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { cat "$dir/server.log" >&2; return 1; }
  echo "$port"
}

# cluster_pid_alive PID: runs and is not a zombie (PID 1 may be slow to reap
# an exited postmaster, or never reap it, and `kill -0` still finds it).
cluster_pid_alive() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] && [ "$state" != Z ]
}

cluster_stop() {
  local dir=$1 pid
  [ -f "$dir/data/postmaster.pid" ] || return 0
  pid=$(head -1 "$dir/data/postmaster.pid")
  kill -INT "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do cluster_pid_alive "$pid" || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

cluster_psql() {
  local dir=$1; shift
  local port
  port=$(sed -n 's/^port = //p' "$dir/data/postgresql.conf" | tail -1)
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"
}
