# Shell helpers of the Citus suite (test/citus/run): a coordinator and two
# worker nodes of Citus on this machine, each a throwaway cluster of
# test/lib/cluster.sh (PGBIN must name a tree holding citus and chat).
#
#   citus_start DIR CONF    makes DIR/coord, DIR/node1, DIR/node2, starts
#                           them (CONF: extra postgresql.conf text for all),
#                           joins the nodes, creates chat and distributes
#                           it in database postgres; prints the coordinator's
#                           port
#   citus_stop DIR          stops the three by pid (also after a failure)

. "$TOP/test/lib/cluster.sh"

CITUS_CONF="shared_preload_libraries = 'citus,chat'
listen_addresses = '127.0.0.1'
max_prepared_transactions = 20
citus.log_remote_commands = off
chat.listen_addresses = '127.0.0.1'"

citus_start() {
  local dir=$1 conf=${2:-} p name
  for name in coord node1 node2; do
    mkdir -p "$dir/$name" && chown postgres: "$dir/$name" && chmod 755 "$dir/$name" || return 1
    p=$(cluster_start "$dir/$name" "$CITUS_CONF
$conf") || return 1
    echo "$p" >"$dir/$name/port"
  done
  local cp=$(cat "$dir/coord/port")
  for name in coord node1 node2; do
    cluster_psql "$dir/$name" -d postgres -c "CREATE EXTENSION citus" >/dev/null || return 1
  done
  cluster_psql "$dir/coord" -d postgres >/dev/null <<SQL || return 1
SELECT citus_set_coordinator_host('localhost', $cp);
SELECT citus_add_node('localhost', $(cat "$dir/node1/port"));
SELECT citus_add_node('localhost', $(cat "$dir/node2/port"));
SQL
  echo "$cp"
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
