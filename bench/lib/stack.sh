# Shell helpers of bench/run and test/bench/run: a throwaway PostgreSQL
# cluster with the chat worker, and the Node.js + Redis peer next to it.
# Source after test/lib/cluster.sh.  Everything started here is recorded by
# pid and stopped by stack_stop_all (call it from an EXIT trap).
#
#   chat_cluster_start WORKERS [extra conf]  sets CL_DIR CL_PGPORT CL_CHAT_PORT
#   chat_channels PREFIX C M                 creates C groups of M members
#   peer_prepare                             copies the peer, npm install; sets PEER_DIR
#   peer_start N                             redis + N node processes; sets PEER_PORTS (a,b,..)
#   peer_channels PREFIX C M
#   peer_stop
#   chat_worker_pids / peer_pids             one pid a line
#   mem_rollup PID                           "rss_kB pss_kB private_kB" from smaps_rollup
#   kernel_mem                               "sockstat_tcp_kB slab_kB"

BENCH_SECRET=${BENCH_SECRET:-bench-secret-0123456789abcdef-$$-$RANDOM}
STACK_PIDS=()
CL_DIR=

stack_log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# http_ok PORT: GET /healthz on 127.0.0.1:PORT answers 200 (python3 only).
http_ok() {
	/usr/bin/python3 -c 'import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen("http://127.0.0.1:%s/healthz" % sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)' "$1"
}

# chat_cluster_start WORKERS [extra postgresql.conf lines]
chat_cluster_start() {
	local workers=$1 extra=${2:-}
	cluster_new CL_DIR
	CL_PGPORT=$(cluster_start "$CL_DIR" "fsync = on
synchronous_commit = on
shared_buffers = 512MB
max_wal_size = 8GB
checkpoint_timeout = 30min
max_connections = 200
max_worker_processes = 24
chat.database = 'bench'
chat.jwt_secret = '$BENCH_SECRET'
chat.port = @CHAT_PORT@
chat.workers = $workers
chat.rate_limit = 0
chat.user_rate_limit = 0
# every generated client connects from 127.0.0.1: the caps on handshakes in
# progress (per address, per worker) would refuse a storm of reconnects, as
# they would users behind one proxy (docs/security.md says when to raise them)
chat.max_handshakes_per_ip = 0
chat.max_handshakes = 0
chat.heartbeat_interval = '30s'
chat.heartbeat_timeout = '120s'
$extra") || return 1
	CL_CHAT_PORT=$(cat "$CL_DIR/chat_port")
	CL_WORKERS=$workers
	# the library this cluster loaded (make install by anyone replaces the file)
	CL_CHAT_SO=$(md5sum "$("$PGBIN/pg_config" --pkglibdir 2>/dev/null || pg_config --pkglibdir)/chat.so" | cut -c1-12)
	stack_log "cluster with chat.workers = $workers, chat.so $CL_CHAT_SO"
	cluster_psql "$CL_DIR" -c "CREATE DATABASE bench" -c "CREATE DATABASE peer" >/dev/null || return 1
	cluster_psql "$CL_DIR" -d bench -c "CREATE EXTENSION chat" >/dev/null || return 1
	# every worker listening (SO_REUSEPORT: all on one port)
	local i n
	for i in $(seq 1 300); do
		n=$(grep -c "chat worker [0-9]* listening" "$CL_DIR/server.log" 2>/dev/null || true)
		[ "${n:-0}" -ge "$workers" ] && http_ok "$CL_CHAT_PORT" && return 0
		sleep 0.1
	done
	stack_log "chat workers did not start"; tail -20 "$CL_DIR/server.log" >&2
	return 1
}

chat_cluster_stop() {
	[ -n "$CL_DIR" ] || return 0
	cluster_stop "$CL_DIR" || true
	rm -rf "$CL_DIR" || true
	CL_DIR=
}

# chat_channels PREFIX C M: the channels chatload expects (user P<c>_<k>).
chat_channels() {
	{ "$CHATLOAD" --print-sql chat --prefix "$1" --channels "$2" --members "$3"
	  # statistics for the ready queries; not for messages: analyzed while
	  # (nearly) empty, it would make cached plans seq-scan it as it fills
	  echo "ANALYZE chat.channels, chat.channel_members;"
	} | cluster_psql "$CL_DIR" -d bench >/dev/null
}

chat_worker_pids() {
	local pm
	pm=$(head -1 "$CL_DIR/data/postmaster.pid")
	ps --ppid "$pm" -o pid=,cmd= | awk '/chat worker/ { print $1 }'
}

# --- the peer -----------------------------------------------------------

PEER_SRC=${PEER_SRC:-$TOP/../shared/peers/node-seed}
PEER_DIR=
PEER_PORTS=
PEER_NODE_PIDS=()
PEER_REDIS_PID=
PEER_REDIS_PORT=

peer_prepare() {
	[ -n "$PEER_DIR" ] && return 0
	[ -f "$PEER_SRC/server.js" ] || { stack_log "no peer at $PEER_SRC"; return 1; }
	PEER_TMP=$(mktemp -d /tmp/chat-peer.XXXXXX)
	cp -r "$PEER_SRC" "$PEER_TMP/node-seed" && chmod -R u+w "$PEER_TMP"
	PEER_DIR=$PEER_TMP/node-seed
	(cd "$PEER_DIR" && npm install --no-audit --no-fund --loglevel=error >/dev/null 2>&1) || {
		stack_log "npm install of the peer failed"; return 1; }
}

peer_env() {
	env PGHOST="$CL_DIR" PGPORT="$CL_PGPORT" PGUSER=postgres PGDATABASE=peer \
		REDIS_URL="redis://127.0.0.1:$PEER_REDIS_PORT" JWT_SECRET="$BENCH_SECRET" \
		HEARTBEAT_MS=30000 "$@"
}

# peer_start N: its own redis-server and N node processes on N ports.
peer_start() {
	local n=$1 i port ports=()
	PEER_REDIS_PORT=$(free_port)
	redis-server --port "$PEER_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
		>"$PEER_TMP/redis.log" 2>&1 &
	PEER_REDIS_PID=$!
	STACK_PIDS+=("$PEER_REDIS_PID")
	for i in $(seq 1 50); do
		redis-cli -p "$PEER_REDIS_PORT" ping >/dev/null 2>&1 && break
		sleep 0.1
	done
	(cd "$PEER_DIR" && peer_env node server.js --init) >"$PEER_TMP/init.log" 2>&1 || {
		stack_log "peer --init failed"; cat "$PEER_TMP/init.log" >&2; return 1; }
	PEER_NODE_PIDS=()
	for i in $(seq 1 "$n"); do
		port=$(free_port)
		(cd "$PEER_DIR" && exec env PORT="$port" PGHOST="$CL_DIR" PGPORT="$CL_PGPORT" \
			PGUSER=postgres PGDATABASE=peer REDIS_URL="redis://127.0.0.1:$PEER_REDIS_PORT" \
			JWT_SECRET="$BENCH_SECRET" HEARTBEAT_MS=30000 node server.js) \
			>"$PEER_TMP/node-$i.log" 2>&1 &
		PEER_NODE_PIDS+=("$!")
		STACK_PIDS+=("$!")
		ports+=("$port")
	done
	for port in "${ports[@]}"; do
		for i in $(seq 1 100); do
			http_ok "$port" && break
			sleep 0.1
		done
		http_ok "$port" || {
			stack_log "peer on $port did not start"; cat "$PEER_TMP"/node-*.log >&2; return 1; }
	done
	PEER_PORTS=$(IFS=,; echo "${ports[*]}")
}

peer_stop() {
	local p
	for p in "${PEER_NODE_PIDS[@]}" $PEER_REDIS_PID; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PEER_NODE_PIDS[@]}" $PEER_REDIS_PID; do
		wait "$p" 2>/dev/null || true
	done
	PEER_NODE_PIDS=()
	PEER_REDIS_PID=
}

peer_channels() {
	{ "$CHATLOAD" --print-sql peer --prefix "$1" --channels "$2" --members "$3"
	  echo "ANALYZE channels, channel_members;"
	} | cluster_psql "$CL_DIR" -d peer >/dev/null
}

peer_pids() {
	printf '%s\n' "${PEER_NODE_PIDS[@]}"
}

# --- memory -------------------------------------------------------------

mem_rollup() {
	# private: the process's own pages (its heap); the rest of RSS is shared
	# (PostgreSQL's shared memory and libraries), counted in every process
	# that touched it
	awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Private_(Clean|Dirty):/ { v += $2 }
		 END { print r + 0, p + 0, v + 0 }' "/proc/$1/smaps_rollup"
}

# kernel_mem: TCP buffer memory (sockstat, pages -> kB) and all slab (kB).
kernel_mem() {
	local tcp slab
	tcp=$(awk '/^TCP:/ { for (i = 1; i <= NF; i++) if ($i == "mem") print $(i + 1) * 4 }' /proc/net/sockstat)
	slab=$(awk '/^Slab:/ { print $2 }' /proc/meminfo)
	echo "${tcp:-0} ${slab:-0}"
}

# --- chat-gateway (issue 17) ---------------------------------------------

GW_PID=
GW_PORT=

# gateway_start: one chat-gateway for the cluster's database "bench",
# logged in as a role with chat_gateway only; sets GW_PORT GW_PID.
gateway_start() {
	local bin conf i
	# the one `make bench` just built (make all builds it)
	bin=${CHAT_GATEWAY:-$TOP/build/chat-gateway}
	cluster_psql "$CL_DIR" -d bench -c "CREATE ROLE chat_gw LOGIN IN ROLE chat_gateway" >/dev/null || return 1
	GW_PORT=$(free_port)
	conf=$CL_DIR/gateway.conf
	umask 077
	printf '%s\n' "$BENCH_SECRET" >"$CL_DIR/gw-secret"
	cat >"$conf" <<-EOF
	chat.conninfo = 'host=$CL_DIR port=$CL_PGPORT dbname=bench user=chat_gw'
	chat.node_name = 'bench-gw'
	chat.port = $GW_PORT
	chat.jwt_secret_file = '$CL_DIR/gw-secret'
	chat.rate_limit = 0
	chat.user_rate_limit = 0
	chat.max_handshakes_per_ip = 0
	chat.max_handshakes = 0
	chat.heartbeat_interval = '30s'
	chat.heartbeat_timeout = '120s'
	EOF
	umask 022
	"$bin" -c "$conf" >"$CL_DIR/gateway.log" 2>&1 &
	GW_PID=$!
	STACK_PIDS+=("$GW_PID")
	for i in $(seq 1 100); do
		http_ok "$GW_PORT" && { stack_log "chat-gateway on $GW_PORT (pid $GW_PID)"; return 0; }
		sleep 0.1
	done
	stack_log "chat-gateway did not start"; tail -20 "$CL_DIR/gateway.log" >&2
	return 1
}

gateway_stop() {
	[ -n "$GW_PID" ] || return 0
	kill "$GW_PID" 2>/dev/null || true
	wait "$GW_PID" 2>/dev/null || true
	GW_PID=
}

stack_stop_all() {
	gateway_stop
	peer_stop
	chat_cluster_stop
	if [ -n "${PEER_TMP:-}" ]; then rm -rf "$PEER_TMP" || true; fi
	PEER_TMP=
	PEER_DIR=
}
