#!/usr/bin/env python3
"""Turns benches/run.sh's raw.tsv into the Markdown tables of docs/BENCHMARKS.md:
median (min-max) per point and server, ratios of medians, latency percentiles."""
import statistics
import sys
from collections import defaultdict


def fields(text):
    out = {}
    for pair in text.split():
        if "=" in pair:
            key, value = pair.split("=", 1)
            out[key] = value
    return out


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, "-"
    med = statistics.median(values)
    return med, f"{med:,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def ms(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{med:.1f} ({min(values):.1f}-{max(values):.1f})"


rows = defaultdict(list)
other = []
for line in open(sys.argv[1]):
    parts = line.rstrip("\n").split("\t")
    if len(parts) < 7:
        continue
    tool, server, sessions, size, rep, result, extra = parts[:7]
    record = {**fields(result), **fields(extra)}
    if tool in ("smtp-source", "smtp_load"):
        rows[(tool, int(sessions), int(size), server)].append(record)
    else:
        other.append((tool, {**record, "server": server}))

points = sorted({(k[1], k[2]) for k in rows}, key=lambda p: (p[1], p[0]))
# An older build measured in the same run (BASELINE=... benches/run.sh).
before = any(key[3] == "reclaim-before" for key in rows)
for tool in ("smtp-source", "smtp_load"):
    if not any(key[0] == tool for key in rows):
        continue
    print(f"\n### Throughput with {tool}, messages/second: median (min-max)\n")
    header = "| sessions x size | reclaim | Postfix | smtp-sink | reclaim/Postfix | reclaim/smtp-sink |"
    if before:
        header += " reclaim before | after/before |"
    if tool == "smtp_load":
        header += " reclaim p50 / p99 ms |"
        if before:
            header += " before p50 / p99 ms |"
        header += " Postfix p50 / p99 ms | smtp-sink p50 / p99 ms |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for sessions, size in points:
        medians = {}
        cells = []
        for server in ("reclaim", "postfix", "smtp-sink"):
            med, text = spread(num(r.get("msgs_per_s")) for r in rows[(tool, sessions, size, server)])
            medians[server] = med
            cells.append(text)
        ratio = lambda a, b: f"{a / b:.2f}" if a and b else "-"
        cells.append(ratio(medians["reclaim"], medians["postfix"]))
        cells.append(ratio(medians["reclaim"], medians["smtp-sink"]))
        if before:
            med, text = spread(num(r.get("msgs_per_s")) for r in rows[(tool, sessions, size, "reclaim-before")])
            cells.append(text)
            cells.append(ratio(medians["reclaim"], med))
        if tool == "smtp_load":
            for server in ("reclaim", "reclaim-before", "postfix", "smtp-sink") if before else ("reclaim", "postfix", "smtp-sink"):
                recs = rows[(tool, sessions, size, server)]
                cells.append(
                    f"{ms(num(r.get('p50_ms')) for r in recs)} / {ms(num(r.get('p99_ms')) for r in recs)}"
                )
        label = f"{sessions} x {size // 1024} KB"
        print(f"| {label} | " + " | ".join(cells) + " |")

lags = defaultdict(list)
for (tool, sessions, size, server), recs in rows.items():
    if server == "postfix":
        lags[(sessions, size)].extend(num(r.get("maildir_lag_s")) for r in recs)
if lags:
    print("\n### Postfix: seconds from the last 250 until every message was in the Maildir\n")
    print("| sessions x size | median (min-max) |")
    print("|---|---|")
    for sessions, size in points:
        values = [v for v in lags[(sessions, size)] if v is not None]
        if values:
            print(f"| {sessions} x {size // 1024} KB | {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}) |")

memories = [(t, r) for t, r in other if t == "memory"]
if memories:
    print("\n### Memory\n")
for tool, record in memories:
    peak = num(record.get("vmhwm_kb"))
    print(f"- {record['server']}: 200 sessions x 10 MB at once: {record.get('messages')} stored, "
          f"{record.get('failures')} failures, {record.get('seconds')} s; peak RSS (VmHWM) "
          f"{peak / 1024:.0f} MiB (before the load: {num(record.get('vmhwm_before_kb')) / 1024:.0f} MiB)")
lists = [num(r.get("seconds")) for t, r in other if t == "list"]
if lists:
    count = next(r.get("messages") for t, r in other if t == "list")
    print(f"\n### Review at scale\n\n`reclaim list --json` over {count} messages: "
          f"{statistics.median(lists):.2f} s median ({min(lists):.2f}-{max(lists):.2f}), {len(lists)} runs")
