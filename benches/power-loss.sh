#!/usr/bin/env bash
# Power-loss run (manual, root): the store on LazyFS, 8 clients x 25 messages acknowledged
# (one in five of 300 KiB, stored as its own file; the others in segments),
# kill -9, then LazyFS drops everything not yet fsynced (as a power cut does), remount,
# restart, and every acknowledged message must be listed and decrypt (with `age`) to what was
# sent. Then the same after deleting two in three, and after re-sealing the rest to a new key. A canary file written without fsync must come back empty, or the run proves nothing.
# LazyFS is the FUSE file system of dsrhaslab/lazyfs, built from source. Usage:
#   LAZYFS=/path/to/lazyfs/lazyfs BIN=target/release/reclaim benches/power-loss.sh
set -euo pipefail
L=${LAZYFS:?set LAZYFS to the lazyfs/ folder of a LazyFS build}
BIN=$(realpath "${BIN:-target/release/reclaim}")
W=$(mktemp -d); mkdir -p $W/backing $W/mnt
FIFO=$W/faults.fifo
cat > $W/lazyfs.toml <<T
[faults]
fifo_path = "$FIFO"
[cache]
apply_eviction = false
[cache.simple]
custom_size = "0.5GB"
blocks_per_page = 1
[filesystem]
log_all_operations = false
T
mount_it() { (cd $L && ./scripts/mount-lazyfs.sh -c $W/lazyfs.toml -m $W/mnt -r $W/backing >/dev/null 2>&1); for _ in $(seq 50); do mountpoint -q $W/mnt && return; sleep 0.1; done; echo "mount failed"; exit 1; }
mount_it
$BIN keygen -o $W/reviewer.key >/dev/null 2>&1
rcpt=$(grep -o 'age1[0-9a-z]*' $W/reviewer.key | head -1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > $W/reclaim.toml <<T
[server]
hostname = "mx.old.example"
listen = ["127.0.0.1:$port"]
[store]
path = "$W/mnt/store"
min_free = "0"
[seal]
recipients = ["$rcpt"]
[admin]
socket = "$W/admin.sock"
[dns]
resolver = "off"
[[domain]]
name = "old.example"
mode = "silent"
T
start() { $BIN -c $W/reclaim.toml serve 2>>$W/serve.log & echo $! > $W/pid; for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null && return; sleep 0.1; done; echo "no start"; exit 1; }
start
python3 - $port $W/acked.txt <<'P'
import smtplib, sys, threading
port, out = int(sys.argv[1]), sys.argv[2]
acked = []; lock = threading.Lock()
def client(c):
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.ehlo()
    for i in range(25):
        marker = f"power-{c}-{i}"
        # One in five is larger than [store] inline_max: a file of its own, not a segment.
        filler = ("y" * 76 + "\r\n") * 4000 if i % 5 == 4 else "x" * 3000 + "\r\n"
        body = f"Subject: {marker}\r\n\r\n{marker}\r\n" + filler
        code, resp = s.mail("a@partner.example")[0], None
        s.rcpt(f"u{c}@old.example")
        code, resp = s.data(body.encode())
        if code == 250:
            qid = resp.decode().rsplit(" ", 1)[-1]
            with lock: acked.append((qid, marker))
    s.quit()
ts = [threading.Thread(target=client, args=(c,)) for c in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
open(out, "w").write("".join(f"{q} {m}\n" for q, m in acked))
print(len(acked), "acknowledged")
P
power_cut() {
  # Harness check: a file written without fsync must not survive the cut.
  printf 'canary' > $W/mnt/canary
  kill -9 $(cat $W/pid); sleep 0.5
  echo "lazyfs::clear-cache" > $FIFO; sleep 1
  $L/scripts/umount-lazyfs.sh -m $W/mnt >/dev/null 2>&1 || fusermount3 -u $W/mnt
  sleep 1; mount_it
  if [ -s $W/mnt/canary ]; then echo "harness: unsynced data survived; this run proves nothing"; exit 1; fi
  rm -f $W/mnt/canary
  echo "harness: an unsynced file came back empty, as after a power cut"
  rm -f $W/admin.sock
  start
}
# Every acknowledged message not deleted is listed and decrypts (fetched from the admin
# API, opened with the age tool and the key KEY, the reviewer's unless said); every deleted
# one is gone; and the key RETIRED, if given, opens none of them.
check() { # ACKED_FILE DELETED_FILE
  local key=${KEY:-$W/reviewer.key}
  $BIN --socket $W/admin.sock -i $key list --json > $W/list.json
  python3 - $W "$1" "$2" "$key" "${RETIRED:-}" <<'P'
import json, sys, subprocess
w, acked_file, deleted_file, key, retired = sys.argv[1:6]
listed = {m["id"] for m in json.load(open(f"{w}/list.json"))}
acked = [l.split() for l in open(acked_file)]
deleted = {l.strip() for l in open(deleted_file)}
missing = [q for q, _ in acked if q not in deleted and q not in listed]
resurrected = [q for q in deleted if q in listed]
bad = []
for q, marker in acked:
    if q in listed:
        sealed = subprocess.run(["curl", "-fsS", "--unix-socket", f"{w}/admin.sock",
            f"http://localhost/v1/messages/{q}/sealed?reason=power-loss"], capture_output=True)
        out = subprocess.run(["age", "-d", "-i", key], input=sealed.stdout, capture_output=True)
        if sealed.returncode != 0 or out.returncode != 0 or marker.encode() not in out.stdout:
            bad.append(q)
        if retired and subprocess.run(["age", "-d", "-i", retired], input=sealed.stdout,
                                      capture_output=True).returncode == 0:
            bad.append(q)
print(f"acknowledged {len(acked)}, deleted {len(deleted)}, listed after power loss {len(listed)}, "
      f"missing {len(missing)}, deleted but listed {len(resurrected)}, not decrypting {len(bad)}")
sys.exit(1 if missing or bad or resurrected else 0)
P
}
: > $W/none.txt
power_cut
check $W/acked.txt $W/none.txt
# Then delete two messages in three (wipes, then compaction of the segment, a third live), cut
# the power again at once, and check the same.
awk 'NR % 3 != 0 {print $1}' $W/acked.txt > $W/deleted.txt
$BIN --socket $W/admin.sock delete --reason "power-loss run" $(cat $W/deleted.txt) >/dev/null
power_cut
check $W/acked.txt $W/deleted.txt
# Then the reviewer's key is retired: the config names a new one, the gateway restarts on
# it, every message left is re-sealed (a segment message moves to a file of its own, its old
# range wiped), and the power is cut at once: each must open with the new key, none with the
# old.
$BIN keygen -o $W/new.key >/dev/null 2>&1
new=$(grep -o 'age1[0-9a-z]*' $W/new.key | head -1)
sed -i "s/recipients = \[\"$rcpt\"\]/recipients = [\"$new\"]/" $W/reclaim.toml
kill -TERM $(cat $W/pid); wait $(cat $W/pid) 2>/dev/null || true
rm -f $W/admin.sock; start
$BIN -c $W/reclaim.toml -i $W/reviewer.key reseal --reason "power-loss run" --json
power_cut
KEY=$W/new.key RETIRED=$W/reviewer.key check $W/acked.txt $W/deleted.txt
kill -TERM $(cat $W/pid); wait 2>/dev/null || true
$L/scripts/umount-lazyfs.sh -m $W/mnt >/dev/null 2>&1 || true
