#!/usr/bin/env bash
# Peak memory of reclaim when every session sends a 1 MiB message at once, with the DKIM
# copies on (a fixed DNS table, so every message is authenticated) and the memory budget
# at its default and effectively off. Loopback only; needs no root and no Postfix.
#
#   benches/edge_memory.sh                  # 200 and 1024 sessions
#   SESSIONS="200" BUDGETS="64MiB" benches/edge_memory.sh
#   BASE=/dev/shm benches/edge_memory.sh    # store in tmpfs
#
# For each point: a fresh store, `reclaim serve` (release build), `smtp_load` with as many
# messages as sessions (one message each, all sessions connected at once), then VmHWM
# (peak resident set) from /proc/PID/status. Prints one line per point.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PORT=${PORT:-25261}
SESSIONS=${SESSIONS:-"200 1024"}
BUDGETS=${BUDGETS:-"64MiB 16GiB"}
SIZE=${SIZE:-1048576}

cargo build --release --quiet --bin reclaim --example smtp_load
RECLAIM=$ROOT/target/release/reclaim
LOAD=$ROOT/target/release/examples/smtp_load
# The store goes under $BASE: /var/tmp (the normal disk) unless set, e.g. BASE=/dev/shm when
# the disk has no room for 1 GiB per point. Files in tmpfs are not in the process's RSS.
BASE=${BASE:-/var/tmp}
WORK=$(mktemp -d "$BASE/reclaim-edge-mem.XXXXXX")
PID=
cleanup() {
  set +e
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n 8192
"$RECLAIM" keygen -o "$WORK/reviewer.key" >"$WORK/reviewer.pub"

for sessions in $SESSIONS; do
  for budget in $BUDGETS; do
    store=$WORK/store-$sessions-$budget
    cat >"$WORK/reclaim.toml" <<EOF
[server]
hostname = "mx.old.example"
listen = ["127.0.0.1:$PORT"]
max_connections = 1024
max_connections_per_ip = 1024
max_message_size = "25MiB"
auth_memory_budget = "$budget"

[store]
path = "$store"

[seal]
recipients = ["$(cat "$WORK/reviewer.pub")"]

[admin]
socket = "$store/admin.sock"

[dns]
resolver = "static"

[dns.static]
"sender.example TXT" = ["v=spf1 ip4:127.0.0.1 -all"]

[[domain]]
name = "old.example"
EOF
    "$RECLAIM" serve -c "$WORK/reclaim.toml" 2>>"$WORK/reclaim.log" &
    PID=$!
    for _ in $(seq 1 300); do
      ss -ltnH "sport = :$PORT" | grep -q . && break
      sleep 0.1
    done
    before=$(awk '/VmHWM/{print $2}' "/proc/$PID/status")
    # smtp_load exits 1 when a session failed; the line still says how many.
    line=$("$LOAD" --addr "127.0.0.1:$PORT" --sessions "$sessions" --messages "$sessions" \
      --size "$SIZE" 2>"$WORK/load.err") || true
    peak=$(awk '/VmHWM/{print $2}' "/proc/$PID/status")
    kill "$PID"
    wait "$PID" || true
    PID=
    echo "sessions=$sessions budget=$budget size=$SIZE $line vmhwm_before_kb=$before vmhwm_kb=$peak"
    if [ -s "$WORK/load.err" ]; then
      sort "$WORK/load.err" | uniq -c >&2
      grep -c 'WARN\|ERROR' "$WORK/reclaim.log" >&2 || true
      grep 'WARN\|ERROR' "$WORK/reclaim.log" | tail -5 >&2 || true
    fi
    : >"$WORK/reclaim.log"
    rm -rf "$store" # up to 1 GiB per point

  done
done
