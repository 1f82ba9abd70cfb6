# Shell helpers of the Citus suite (test/citus/run): a coordinator and two
# worker nodes of Citus on this machine, each a throwaway cluster of
# test/lib/cluster.sh (PGBIN must name a tree holding citus and chat).
# The settings below come after the caller's, so they win.
#
#   citus_start DIR CONF [NODE_CONF]
#                           makes DIR/coord, DIR/node1, DIR/node2 and starts
#                           them (CONF: extra postgresql.conf text for all,
#                           NODE_CONF: for the two worker nodes only)
#   citus_db DIR DB         creates database DB on the three with the citus
#                           extension, joins the nodes to the coordinator's,
#                           and makes CREATE EXTENSION chat there distribute
#                           the tables at once (distribute_on_create.sql)
#   citus_stop DIR          stops the three by pid (also after a failure)

. "$TOP/test/lib/cluster.sh"

CITUS_CONF="shared_preload_libraries = 'citus,chat'
listen_addresses = '127.0.0.1'
max_prepared_transactions = 20
citus.log_remote_commands = off
chat.listen_addresses = '127.0.0.1'"

citus_start() {
  local dir=$1 conf=${2:-} node_conf=${3:-} p name extra
  for name in coord node1 node2; do
    mkdir -p "$dir/$name" && chown postgres: "$dir/$name" && chmod 755 "$dir/$name" || return 1
    extra=
    [ "$name" = coord ] || extra=$node_conf
    p=$(cluster_start "$dir/$name" "$conf
$extra
$CITUS_CONF") || return 1
    echo "$p" >"$dir/$name/port"
  done
  cat "$dir/coord/port"
}

citus_db() {
  local dir=$1 db=$2 name
  for name in coord node1 node2; do
    if [ "$db" != postgres ]; then
      cluster_psql "$dir/$name" -d postgres -c "CREATE DATABASE $db" >/dev/null 2>&1 || return 1
    fi
    cluster_psql "$dir/$name" -d "$db" -c "CREATE EXTENSION citus" >/dev/null || return 1
  done
  # The coordinator is not a node of its own cluster (no shards there):
  # DROP EXTENSION chat then has no shard on it to drop along.
  cluster_psql "$dir/coord" -d "$db" -f "$TOP/test/citus/distribute_on_create.sql" >/dev/null || return 1
  # isolationtester asks pg_isolation_test_session_is_blocked() whether a
  # step waits; PostgreSQL's sees local lock waits only, Citus's also waits
  # on the nodes (what Citus's own isolation tests do first)
  cluster_psql "$dir/coord" -d "$db" >/dev/null <<SQL || return 1
SELECT citus_add_node('localhost', $(cat "$dir/node1/port"));
SELECT citus_add_node('localhost', $(cat "$dir/node2/port"));
SELECT citus_internal.replace_isolation_tester_func();
SQL
}

# citus_node_port DIR NAME
citus_node_port() { cat "$1/$2/port"; }

citus_stop() {
  local dir=$1 name
  for name in coord node1 node2; do
    [ -d "$dir/$name" ] && cluster_stop "$dir/$name"
  done
  return 0
}
