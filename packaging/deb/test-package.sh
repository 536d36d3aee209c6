#!/usr/bin/env bash
# Builds the Debian package from the release binary and tries it as an operator would: installed
# into a clean Debian container (no network), the user and store directory made, the shipped
# config refused until it is filled in, `check-config` passing once it is, and `apt-get purge`
# leaving nothing behind. The unit as installed by the package is checked with
# `systemd-analyze verify`, and its `systemd-analyze security` exposure is printed and held to
# at most 1.4 (it was 1.6 before ProcSubset= and PrivateMounts=).
#
# Needs: cargo-deb, a running Docker engine, target/release/reclaim, systemd-analyze, and a
# Debian bookworm base image named by $RECLAIM_BASE (default reclaim-base:bookworm).
set -euo pipefail
cd "$(dirname "$0")/../.."

base=${RECLAIM_BASE:-reclaim-base:bookworm}
max_exposure=1.4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { printf '\n== %s\n' "$*"; }
fail() { echo "PACKAGE TEST FAILED: $*" >&2; exit 1; }

step "building the package"
deb=$(cargo deb --no-build --strip 2>"$work/cargo-deb.err" | tail -n 1) || fail "cargo deb: $(cat "$work/cargo-deb.err")"
[ -f "$deb" ] || fail "cargo deb printed no package path"
echo "$(basename "$deb"): $(($(stat -c %s "$deb") / 1024)) KiB"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'

step "the unit as installed by the package"
root="$work/root"
dpkg-deb -x "$deb" "$root"
unit=$(find "$root" -name reclaim.service -path '*systemd/system*' | head -n 1)
[ -n "$unit" ] || fail "the package holds no reclaim.service"
# verify resolves ExecStart against the real filesystem: point it at the packaged binary.
sed "s#/usr/bin/reclaim#$root/usr/bin/reclaim#g" "$unit" >"$work/reclaim.service"
systemd-analyze verify "$work/reclaim.service" || fail "systemd-analyze verify"
echo "systemd-analyze verify: no findings"
systemd-analyze security --offline=true "$unit" >"$work/security.txt" 2>&1 || true
exposure=$(grep -o 'Overall exposure level for reclaim.service: [0-9.]*' "$work/security.txt" | awk '{print $NF}')
[ -n "$exposure" ] || { cat "$work/security.txt"; fail "no exposure figure from systemd-analyze security"; }
grep -E '^✗' "$work/security.txt" || true
echo "systemd-analyze security: overall exposure $exposure (at most $max_exposure)"
awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e <= m) }' || fail "exposure $exposure is above $max_exposure"

step "installing into a clean container ($base, no network)"
cp "$deb" "$work/reclaim.deb"
cp certs/dev-cert.pem certs/dev-key.pem "$work/"
chmod 0644 "$work"/*.pem "$work/reclaim.deb"
docker run --rm --network none -v "$work:/pkg:ro" "$base" sh -euc '
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q /pkg/reclaim.deb >/tmp/install.log 2>&1 || { cat /tmp/install.log; exit 1; }
  echo "installed: $(dpkg-query -W -f="\${Package} \${Version}" reclaim)"
  getent passwd reclaim | grep -q ":/var/lib/reclaim:/usr/sbin/nologin$" || { echo "no reclaim system user"; exit 1; }
  [ "$(stat -c "%U %G %a" /var/lib/reclaim)" = "reclaim reclaim 700" ] || { echo "store directory: $(stat -c "%U %G %a" /var/lib/reclaim)"; exit 1; }
  [ "$(stat -c "%U %G %a" /etc/reclaim/reclaim.toml)" = "root reclaim 640" ] || { echo "config: $(stat -c "%U %G %a" /etc/reclaim/reclaim.toml)"; exit 1; }
  dpkg-query -W -f="\${Conffiles}\n" reclaim | grep -q "/etc/reclaim/reclaim.toml" || { echo "config is not a conffile"; exit 1; }
  echo "user, store directory (0700) and conffile (0640) in place"

  if reclaim -c /etc/reclaim/reclaim.toml check-config >/tmp/check.out 2>&1; then
    echo "the shipped config passed check-config with its CHANGE ME values"; exit 1
  fi
  grep -q "seal.recipients" /tmp/check.out || { echo "refused, but not for its CHANGE ME recipient:"; cat /tmp/check.out; exit 1; }
  echo "shipped config refused until filled in: $(head -c 300 /tmp/check.out)"

  reclaim keygen -o /tmp/reviewer.key >/dev/null 2>&1
  recipient=$(grep -o "age1[0-9a-z]*" /tmp/reviewer.key | head -n 1)
  sed -i -e "s#\"age1...CHANGE-ME\"#\"$recipient\"#" \
         -e "s#/etc/reclaim/tls/fullchain.pem#/pkg/dev-cert.pem#" \
         -e "s#/etc/reclaim/tls/privkey.pem#/pkg/dev-key.pem#" /etc/reclaim/reclaim.toml
  reclaim -c /etc/reclaim/reclaim.toml check-config
  echo "check-config passes on the filled-in config"

  apt-get purge -y -q reclaim >/tmp/purge.log 2>&1 || { cat /tmp/purge.log; exit 1; }
  if dpkg-query -W -f="\${Status}" reclaim 2>/dev/null | grep -q installed; then echo "still installed"; exit 1; fi
  for path in /usr/bin/reclaim /etc/reclaim /var/lib/reclaim /lib/systemd/system/reclaim.service /usr/share/reclaim; do
    if [ -e "$path" ]; then echo "left behind after purge: $path"; exit 1; fi
  done
  echo "apt-get purge left nothing behind"
' || fail "install, check-config and purge in the container"

echo
echo "package test passed"
