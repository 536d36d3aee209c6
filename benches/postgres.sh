#!/usr/bin/env bash
# Benchmarks the stores against each other in one run, loopback only: reclaim on the
# embedded store, reclaim on PostgreSQL, and two reclaim nodes (127.0.0.1 and 127.0.0.2)
# on one PostgreSQL, each at 32 sessions x 4 KB and x 100 KB with benches' own load client.
#
#   sudo benches/postgres.sh            # results in bench-results/postgres.tsv
#   REPS=3 sudo benches/postgres.sh
#
# PostgreSQL is a throwaway cluster of Debian's postgresql 15 (default settings: fsync on,
# synchronous_commit on, no standby) in a scratch directory on the normal disk, run as the
# postgres user; the script removes it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REPS=${REPS:-1}
OUT=${OUT:-$ROOT/bench-results}
PG_BIN=/usr/lib/postgresql/15/bin
PG_PORT=${PG_PORT:-25260}
PORT_A=${PORT_A:-25261}
PORT_B=${PORT_B:-25262}
# sessions:size:messages per point
POINTS=${POINTS:-"32:4096:3000 32:102400:1200"}

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "run as root (the cluster runs as postgres)" >&2; exit 1; }
[ -x "$PG_BIN/initdb" ] || { echo "apt-get install postgresql" >&2; exit 1; }

log "building reclaim and the load client (release)"
cargo build --release --quiet --bin reclaim --example smtp_load
RECLAIM=$ROOT/target/release/reclaim
LOAD=$ROOT/target/release/examples/smtp_load

WORK=$(mktemp -d /var/tmp/reclaim-pg-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$OUT"
RAW=$OUT/postgres.tsv
: >"$RAW"
echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores; reclaim $(git rev-parse --short HEAD); load $(cut -d' ' -f1-3 /proc/loadavg)" >"$RAW"

mkdir "$WORK/pg" && chown postgres:postgres "$WORK/pg"
runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust >/dev/null
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$WORK/pg -c max_connections=200" \
  start >/dev/null
PSQL=$(command -v psql || echo /usr/bin/psql)
psql() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAt -c "$1"; }

"$RECLAIM" keygen -o "$WORK/reviewer.key" >"$WORK/reviewer.pub"
config() { # NAME LISTEN STORE_LINES
  cat >"$WORK/$1.toml" <<EOF
[server]
hostname = "mx.old.example"
listen = ["$2"]
max_connections = 1024
max_connections_per_ip = 1000
[store]
path = "$WORK/$1"
$3
[seal]
recipients = ["$(cat "$WORK/reviewer.pub")"]
[admin]
socket = "$WORK/$1.sock"
[dns]
resolver = "off"
[[domain]]
name = "old.example"
EOF
}
PG_LINES="backend = \"postgres\"
url = \"host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres\"
pool_size = 48"
wait_port() { # ADDR PORT
  for _ in $(seq 1 300); do
    if ss -ltnH "src $1:$2" | grep -q .; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1:$2" >&2; exit 1
}
start() { # NAME ADDR PORT STORE_LINES
  config "$1" "$2:$3" "$4"
  "$RECLAIM" serve -c "$WORK/$1.toml" 2>>"$WORK/$1.log" &
  PIDS+=($!)
  wait_port "$2" "$3"
}
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid"; wait "$pid" || true; done
  PIDS=()
}
reset_pg() { psql "DROP SCHEMA public CASCADE; CREATE SCHEMA public;" >/dev/null; }
load() { # ADDR PORT SESSIONS SIZE MESSAGES
  "$LOAD" --addr "$1:$2" --sessions "$3" --size "$4" --messages "$5"
}
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

for rep in $(seq 1 "$REPS"); do
  for point in $POINTS; do
    IFS=: read -r sessions size messages <<<"$point"
    rm -rf "$WORK/embedded"
    start embedded 127.0.0.1 "$PORT_A" ""
    line=$(load 127.0.0.1 "$PORT_A" "$sessions" "$size" "$messages")
    stop_all
    printf 'embedded\t%s\t%s\t%s\t%s\n' "$sessions" "$size" "$rep" "$line" | tee -a "$RAW"

    reset_pg
    start pg 127.0.0.1 "$PORT_A" "$PG_LINES"
    line=$(load 127.0.0.1 "$PORT_A" "$sessions" "$size" "$messages")
    stop_all
    printf 'postgres\t%s\t%s\t%s\t%s\n' "$sessions" "$size" "$rep" "$line" | tee -a "$RAW"

    reset_pg
    start node1 127.0.0.1 "$PORT_A" "$PG_LINES"
    start node2 127.0.0.2 "$PORT_B" "$PG_LINES"
    half=$((sessions / 2))
    started=$(date +%s.%N)
    load 127.0.0.1 "$PORT_A" "$half" "$size" $((messages / 2)) >"$WORK/n1.out" &
    l1=$!
    load 127.0.0.2 "$PORT_B" "$half" "$size" $((messages / 2)) >"$WORK/n2.out" &
    l2=$!
    wait "$l1" "$l2"
    ended=$(date +%s.%N)
    stop_all
    stored=$(psql "SELECT count(*) FROM messages WHERE visible")
    fails=$(( $(field failures <"$WORK/n1.out") + $(field failures <"$WORK/n2.out") ))
    rate=$(python3 -c "print(round($stored / ($ended - $started), 1))")
    printf 'two-nodes\t%s\t%s\t%s\tmessages=%s failures=%s msgs_per_s=%s n1=[%s] n2=[%s]\n' \
      "$sessions" "$size" "$rep" "$stored" "$fails" "$rate" "$(cat "$WORK/n1.out")" "$(cat "$WORK/n2.out")" | tee -a "$RAW"
  done
done
log "results in $RAW"
