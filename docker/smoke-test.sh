#!/usr/bin/env bash
# Builds the container image from a release binary built outside it and runs it as an operator
# would: its own non-root user, a read-only root filesystem, no capability but binding port 25,
# the host's loopback network only. It must take mail, answer `list` through the admin socket on
# its volume, turn healthy, and end cleanly on `docker stop` within the grace period.
#
# Needs: a running Docker engine, target/release/reclaim, python3, and a Debian bookworm base
# image named by $RECLAIM_BASE (default reclaim-base:bookworm; see .ci/run for how CI makes one
# with debootstrap when no image registry can be reached).
set -euo pipefail
cd "$(dirname "$0")/.."

base=${RECLAIM_BASE:-reclaim-base:bookworm}
image=reclaim:smoke
name=reclaim-smoke-$$
binary=target/release/reclaim
work=$(mktemp -d)
cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { echo "SMOKE TEST FAILED: $*" >&2; docker logs "$name" 2>&1 | tail -20 >&2 || true; exit 1; }

step "building $image from $binary (stripped) on $base"
strip -o target/release/reclaim.stripped "$binary"
DOCKER_BUILDKIT=0 docker build -q -f docker/Dockerfile --target prebuilt \
  --build-arg BASE="$base" --build-arg BINARY=target/release/reclaim.stripped -t "$image" . >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$image")
echo "image $image: $((size / 1024 / 1024)) MiB"

# Port 25 proves the one capability the image grants; if the host already uses it, a high
# port still proves everything else.
port=25
if ! python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 25))' 2>/dev/null; then
  port=2525
  echo "port 25 is taken on this host; using $port"
fi

"$binary" keygen -o "$work/reviewer.key" >/dev/null 2>"$work/keygen.err" || fail "keygen: $(cat "$work/keygen.err")"
recipient=$(grep -o 'age1[0-9a-z]*' "$work/reviewer.key" | head -n 1)
mkdir -m 0700 "$work/store"
chown 10025:10025 "$work/store"
cat >"$work/reclaim.toml" <<EOF
[server]
hostname = "mx.old.example"
listen = ["127.0.0.1:$port"]
shutdown_grace = "5s"

[store]
path = "/var/lib/reclaim"

[seal]
recipients = ["$recipient"]

[admin]
socket = "/var/lib/reclaim/admin.sock"

[dns]
resolver = "off"

[[domain]]
name = "old.example"
mode = "silent"
EOF
chmod 0644 "$work/reclaim.toml"

step "starting the container (read-only, cap_net_bind_service only, host loopback)"
docker run -d --name "$name" --network host --read-only \
  --cap-drop ALL --cap-add NET_BIND_SERVICE \
  --health-interval 1s --health-start-period 2s \
  -v "$work/store:/var/lib/reclaim" \
  -v "$work/reclaim.toml:/etc/reclaim/reclaim.toml:ro" \
  "$image" >/dev/null

step "waiting for the health check"
health=
for _ in $(seq 1 60); do
  health=$(docker inspect -f '{{.State.Health.Status}}' "$name")
  [ "$health" = healthy ] && break
  [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || fail "the container stopped"
  sleep 1
done
[ "$health" = healthy ] || fail "health is '$health' after 60 s"
echo "health: $health"

pid=$(docker inspect -f '{{.State.Pid}}' "$name")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$uid" = 10025 ] || fail "the gateway runs as uid $uid, not 10025"
echo "gateway runs as uid $uid"
caps=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
[ "$caps" = 0000000000000400 ] || fail "effective capabilities $caps, expected only cap_net_bind_service (0x400)"
echo "effective capabilities: $caps (cap_net_bind_service)"
docker exec "$name" sh -c 'echo x > /usr/local/bin/x' 2>/dev/null && fail "the root filesystem is writable"
echo "root filesystem is read-only"

step "sending mail to 127.0.0.1:$port"
python3 - "$port" <<'EOF'
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20) as smtp:
    smtp.sendmail("partner@partner.example", ["jan@old.example"],
                  b"Subject: smoke\r\nFrom: partner@partner.example\r\n\r\nhello from the smoke test\r\n")
print("250 for jan@old.example")
EOF

step "listing through the admin socket on the volume"
listed=$("$binary" --socket "$work/store/admin.sock" -i "$work/reviewer.key" list --json)
echo "$listed" | python3 -c '
import json, sys
items = json.load(sys.stdin)
assert len(items) == 1, items
assert items[0]["rcpt_to"] == ["jan@old.example"], items
print("list: 1 message for jan@old.example, subject", repr(items[0]["subject"]))
' || fail "list did not show the message: $listed"

step "docker stop (SIGTERM, 20 s grace)"
started=$(date +%s%N)
docker stop -t 20 "$name" >/dev/null
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "exit code $code after docker stop"
[ "$elapsed_ms" -lt 20000 ] || fail "docker stop took $elapsed_ms ms: killed, not stopped"
echo "stopped cleanly: exit 0 after $elapsed_ms ms"

echo
echo "container smoke test passed"
