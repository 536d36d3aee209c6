#!/usr/bin/env bash
# Benchmarks reclaim against Postfix and smtp-sink on this machine, loopback only.
#
#   sudo benches/run.sh                 # full run, results in bench-results/
#   REPS=5 benches/run.sh               # more repetitions
#   ONLY=throughput|memory|list         # one part only
#   BASELINE=/path/to/older/reclaim     # also measure an older build, alternating with this one
#
# Three servers get the same load: reclaim (release build, production settings: sealing to
# an age recipient, fsync and group commit before 250, store on the normal disk), Postfix
# from Debian as a separate instance (own config dir, ports and queue) delivering a
# catch-all into a Maildir with its default durability, and Postfix's smtp-sink, which
# accepts and discards (the protocol ceiling of the machine). Load: Postfix's smtp-source
# for throughput, and benches' own client (examples/smtp_load.rs) for throughput plus
# end-of-DATA-to-250 latency. Needs root for apt and for Postfix's master.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

REPS=${REPS:-3}
ONLY=${ONLY:-all}
OUT=${OUT:-$ROOT/bench-results}
RECLAIM_PORT=${RECLAIM_PORT:-25251}
BASELINE=${BASELINE:-}
BASE_PORT=${BASE_PORT:-25254}
LIST_MESSAGES=${LIST_MESSAGES:-100000}
POSTFIX_PORT=${POSTFIX_PORT:-25252}
SINK_PORT=${SINK_PORT:-25253}
FROM=bench@sender.example
TO=inbox@old.example
# sessions:size:messages per point
POINTS=${POINTS:-"1:4096:300 8:4096:1500 32:4096:3000 1:102400:150 8:102400:600 32:102400:1200"}

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  echo "run as root: apt installs Postfix, and Postfix's master starts as root" >&2
  exit 1
fi

# --- tools ------------------------------------------------------------------------------
need=()
command -v smtp-source >/dev/null || need+=(postfix)
command -v python3 >/dev/null || need+=(python3)
command -v bc >/dev/null || need+=(bc)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing: ${need[*]}"
  # 'No configuration': the package must not set up (or start) a system mail server.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
for port in "$RECLAIM_PORT" "$POSTFIX_PORT" "$SINK_PORT" "$BASE_PORT"; do
  if ss -ltnH "sport = :$port" | grep -q .; then
    echo "port $port is in use; set RECLAIM_PORT/POSTFIX_PORT/SINK_PORT" >&2
    exit 1
  fi
done

log "building reclaim and the load client (release)"
cargo build --release --quiet --bin reclaim --example smtp_load
RECLAIM=$ROOT/target/release/reclaim
LOAD=$ROOT/target/release/examples/smtp_load

# --- scratch space on the normal disk, removed on exit ----------------------------------
WORK=$(mktemp -d /var/tmp/reclaim-bench.XXXXXX)
chmod 755 "$WORK"
PF=$WORK/postfix
RECLAIM_PID=
BASE_PID=
SINK_PID=
POSTFIX_UP=
cleanup() {
  set +e
  [ -n "$RECLAIM_PID" ] && kill "$RECLAIM_PID" 2>/dev/null && wait "$RECLAIM_PID" 2>/dev/null
  [ -n "$BASE_PID" ] && kill "$BASE_PID" 2>/dev/null && wait "$BASE_PID" 2>/dev/null
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
  [ -n "$POSTFIX_UP" ] && postfix -c "$PF/etc" stop >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$OUT"
RAW=$OUT/raw.tsv
: >"$RAW"
{
  echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "# reclaim $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(postconf -d mail_version 2>/dev/null)"
  [ -n "$BASELINE" ] && echo "# reclaim-before: $BASELINE ($("$BASELINE" --version 2>/dev/null || echo '?'))"
  echo "# load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"

# --- reclaim ----------------------------------------------------------------------------
"$RECLAIM" keygen -o "$WORK/reviewer.key" >"$WORK/reviewer.pub"
write_reclaim_config() { # STORE_DIR [PORT [CONFIG]]
  cat >"${3:-$WORK/reclaim.toml}" <<EOF
[server]
hostname = "mx.old.example"
listen = ["127.0.0.1:${2:-$RECLAIM_PORT}"]
max_connections = 1024
# Every benchmark client comes from 127.0.0.1.
max_connections_per_ip = 1000

[tls]
cert = "$ROOT/certs/dev-cert.pem"
key = "$ROOT/certs/dev-key.pem"

[store]
path = "$1"

[seal]
recipients = ["$(cat "$WORK/reviewer.pub")"]

[admin]
socket = "$1/admin.sock"

[dns]
resolver = "off"

[[domain]]
name = "old.example"
EOF
}
start_reclaim() { # STORE_DIR
  write_reclaim_config "$1"
  "$RECLAIM" serve -c "$WORK/reclaim.toml" 2>>"$WORK/reclaim.log" &
  RECLAIM_PID=$!
  wait_port "$RECLAIM_PORT"
}
stop_reclaim() {
  kill "$RECLAIM_PID"
  wait "$RECLAIM_PID" || true
  RECLAIM_PID=
}
start_baseline() { # STORE_DIR
  write_reclaim_config "$1" "$BASE_PORT" "$WORK/baseline.toml"
  "$BASELINE" serve -c "$WORK/baseline.toml" 2>>"$WORK/baseline.log" &
  BASE_PID=$!
  wait_port "$BASE_PORT"
}
stop_baseline() {
  kill "$BASE_PID"
  wait "$BASE_PID" || true
  BASE_PID=
}
wait_port() {
  for _ in $(seq 1 300); do
    if ss -ltnH "sport = :$1" | grep -q .; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

# --- Postfix: a private instance on loopback --------------------------------------------
start_postfix() {
  mkdir -p "$PF/etc" "$PF/queue" "$PF/data" "$PF/mail"
  cp /etc/postfix/master.cf "$PF/etc/master.cf"
  : >"$PF/etc/main.cf"
  postconf -c "$PF/etc" -e \
    "queue_directory=$PF/queue" "data_directory=$PF/data" \
    "maillog_file=$PF/maillog" "maillog_file_prefixes=$PF" "syslog_name=postfix-bench" \
    "compatibility_level=3.6" "inet_interfaces=127.0.0.1" "inet_protocols=ipv4" \
    "myhostname=postfix-bench.localhost" "mydestination=" "mynetworks=127.0.0.0/8" \
    "relayhost=" "alias_maps=" "alias_database=" "biff=no" \
    "virtual_mailbox_domains=old.example" "virtual_mailbox_base=$PF/mail" \
    "virtual_mailbox_maps=static:catchall/" \
    "virtual_uid_maps=static:65534" "virtual_gid_maps=static:65534" \
    "disable_dns_lookups=yes" "smtp_host_lookup=native" "lmtp_host_lookup=native" \
    "smtpd_peername_lookup=no"
  # Our own listener instead of port 25; no chroot (nothing set up for it).
  postconf -c "$PF/etc" -M# smtp/inet
  postconf -c "$PF/etc" -M "127.0.0.1:$POSTFIX_PORT/inet=127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd"
  postconf -c "$PF/etc" -F '*/*/chroot = n'
  chown postfix "$PF/data"
  chown 65534:65534 "$PF/mail"
  postfix -c "$PF/etc" start >/dev/null 2>&1 || { cat "$PF/maillog" >&2; exit 1; }
  POSTFIX_UP=1
  wait_port "$POSTFIX_PORT"
}
maildir_count() { find "$PF/mail/catchall/new" -type f 2>/dev/null | wc -l || true; }

start_sink() {
  smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 1024 &
  SINK_PID=$!
  wait_port "$SINK_PORT"
}

# --- one measurement --------------------------------------------------------------------
# Appends: tool server sessions size rep messages seconds msgs_per_s p50_ms p99_ms [extra]
measure() { # TOOL SERVER PORT SESSIONS SIZE MESSAGES REP
  local tool=$1 server=$2 port=$3 s=$4 size=$5 n=$6 rep=$7 line start end secs
  local before=0
  [ "$server" = postfix ] && before=$(maildir_count)
  if [ "$tool" = smtp-source ]; then
    start=$(date +%s.%N)
    smtp-source -c -s "$s" -m "$n" -l "$size" -f "$FROM" -t "$TO" "127.0.0.1:$port" >/dev/null 2>"$WORK/source.err" ||
      { cat "$WORK/source.err" >&2; exit 1; }
    end=$(date +%s.%N)
    secs=$(echo "$end - $start" | bc -l)
    line=$(printf 'messages=%s seconds=%.3f msgs_per_s=%.1f p50_ms=- p99_ms=-' "$n" "$secs" "$(echo "$n / $secs" | bc -l)")
  else
    line=$("$LOAD" --addr "127.0.0.1:$port" --sessions "$s" --messages "$n" --size "$size" --from "$FROM" --to "$TO")
  fi
  local extra=-
  if [ "$server" = postfix ]; then
    # Postfix has accepted (250); time until the queue has delivered all into the Maildir.
    local t0 waited
    t0=$(date +%s.%N)
    for _ in $(seq 1 1200); do
      [ "$(maildir_count)" -ge $((before + n)) ] && break
      sleep 0.05
    done
    waited=$(echo "$(date +%s.%N) - $t0" | bc -l)
    extra=$(printf 'maildir_lag_s=%.2f' "$waited")
  fi
  log "$tool $server s=$s size=$size rep=$rep: $line $extra"
  echo -e "$tool\t$server\t$s\t$size\t$rep\t$line\t$extra" >>"$RAW"
}

throughput() {
  start_reclaim "$WORK/store-throughput"
  [ -n "$BASELINE" ] && start_baseline "$WORK/store-baseline"
  start_postfix
  start_sink
  for rep in $(seq 1 "$REPS"); do
    for point in $POINTS; do
      IFS=: read -r s size n <<<"$point"
      for tool in smtp-source smtp_load; do
        # The older build first on even repetitions, so neither always follows Postfix.
        if [ -n "$BASELINE" ] && [ $((rep % 2)) = 0 ]; then
          measure "$tool" reclaim-before "$BASE_PORT" "$s" "$size" "$n" "$rep"
        fi
        measure "$tool" reclaim "$RECLAIM_PORT" "$s" "$size" "$n" "$rep"
        if [ -n "$BASELINE" ] && [ $((rep % 2)) = 1 ]; then
          measure "$tool" reclaim-before "$BASE_PORT" "$s" "$size" "$n" "$rep"
        fi
        measure "$tool" postfix "$POSTFIX_PORT" "$s" "$size" "$n" "$rep"
        measure "$tool" smtp-sink "$SINK_PORT" "$s" "$size" "$n" "$rep"
      done
    done
  done
  stop_reclaim
  [ -n "$BASELINE" ] && stop_baseline
  return 0
}

memory_of() { # NAME PID PORT
  local base line peak
  base=$(awk '/VmHWM/{print $2}' "/proc/$2/status")
  line=$("$LOAD" --addr "127.0.0.1:$3" --sessions 200 --messages 200 --size 10485760)
  peak=$(awk '/VmHWM/{print $2}' "/proc/$2/status")
  log "memory $1: $line; VmHWM before ${base} kB, after ${peak} kB"
  echo -e "memory\t$1\t200\t10485760\t1\t$line\tvmhwm_before_kb=$base vmhwm_kb=$peak" >>"$RAW"
}

memory() {
  # 200 sessions, each one 10 MB message, all at once; peak RSS from the kernel.
  start_reclaim "$WORK/store-memory"
  memory_of reclaim "$RECLAIM_PID" "$RECLAIM_PORT"
  stop_reclaim
  if [ -n "$BASELINE" ]; then
    start_baseline "$WORK/store-memory-baseline"
    memory_of reclaim-before "$BASE_PID" "$BASE_PORT"
    stop_baseline
  fi
}

list_at_scale() {
  # Fill a fresh store with LIST_MESSAGES messages, then time `reclaim list --json`
  # (decrypts every summary with the reviewer's identity).
  start_reclaim "$WORK/store-list"
  "$LOAD" --addr "127.0.0.1:$RECLAIM_PORT" --sessions 32 --messages "$LIST_MESSAGES" --size 2048 >/dev/null
  for rep in $(seq 1 "$REPS"); do
    local start end secs count
    start=$(date +%s.%N)
    "$RECLAIM" -c "$WORK/reclaim.toml" -i "$WORK/reviewer.key" list --json >"$WORK/list.json"
    end=$(date +%s.%N)
    secs=$(echo "$end - $start" | bc -l)
    count=$(grep -c '"id":' "$WORK/list.json")
    log "list --json: $count messages in $secs s"
    echo -e "list\treclaim\t-\t-\t$rep\tmessages=$count seconds=$(printf %.3f "$secs")\t-" >>"$RAW"
  done
  stop_reclaim
}

case $ONLY in
  all) throughput; memory; list_at_scale ;;
  throughput) throughput ;;
  memory) memory ;;
  list) list_at_scale ;;
  *) echo "ONLY must be all, throughput, memory or list" >&2; exit 2 ;;
esac
echo "# load after the run: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
python3 "$ROOT/benches/summarize.py" "$RAW" | tee "$OUT/summary.md"
