# Shell helpers of the JS client and browser suites (source after cd to the
# top of the tree).  Every function reports errors on stderr and returns
# non-zero.
#
#   npm_ready DIR             npm ci in DIR unless its node_modules already
#                             matches package-lock.json
#   chat_cluster_up [conf]    a throwaway cluster with chat preloaded, the
#                             extension created and the worker on a free
#                             port; exports CHAT_PG_DIR, CHAT_PG_DATA, PGPORT,
#                             CHAT_PORT, CHAT_SECRET for the tests
#   chat_cluster_down         stops it and removes its directory (keeps the
#                             server log in test/artifacts/$1.log)

. test/lib/cluster.sh

npm_ready() {
  local dir=$1 stamp=$1/node_modules/.chat-lock
  command -v node >/dev/null && command -v npm >/dev/null \
    || { echo "node and npm are needed (make deps)" >&2; return 1; }
  cmp -s "$dir/package-lock.json" "$stamp" 2>/dev/null && return 0
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    || { echo "npm ci failed in $dir" >&2; return 1; }
  cp "$dir/package-lock.json" "$stamp"
}

chat_cluster_up() {
  local extra=${1:-} port
  cluster_new CHAT_PG_DIR || return 1
  CHAT_SECRET=js-test-secret-0123456789abcdef-$RANDOM$RANDOM$RANDOM
  port=$(cluster_start "$CHAT_PG_DIR" "chat.port = @CHAT_PORT@
chat.listen_addresses = '127.0.0.1'
chat.jwt_secret = '$CHAT_SECRET'
$extra") || return 1
  export CHAT_PG_DIR CHAT_SECRET
  export CHAT_PG_DATA=$CHAT_PG_DIR/data PGPORT=$port
  CHAT_PORT=$(cat "$CHAT_PG_DIR/chat_port"); export CHAT_PORT
  cluster_psql "$CHAT_PG_DIR" -c 'CREATE EXTENSION chat' >/dev/null
}

chat_cluster_down() {
  [ -n "${CHAT_PG_DIR:-}" ] || return 0
  cluster_stop "$CHAT_PG_DIR"
  mkdir -p test/artifacts
  cp "$CHAT_PG_DIR/server.log" "test/artifacts/${1:-cluster}.log" 2>/dev/null
  rm -rf "$CHAT_PG_DIR"
  CHAT_PG_DIR=
}
