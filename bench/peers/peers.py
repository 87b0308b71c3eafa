#!/usr/bin/env python3
"""Side-by-side runs of ringcast and its peers, driven by ringcast-load.

Called by run.sh (which builds everything and installs Node's `ws` first);
see bench/README.md for what it measures and how to read the table.

One server at a time is started pinned to CPU 0 (`taskset -c 0`), driven by
`ringcast-load` pinned to CPU 1 (`--cpus 1`) with the same parameters for
every server, then stopped. A round runs every server once, in order; the
rounds are the interleaved repetitions, so a slow minute on the machine lands
on every server rather than on one. Each figure is the median of the rounds,
shown with its min-max.

Every run records what else the machine was doing: CPU time used by other
processes during the run (all busy time on the box, less the server's and
the generator's own), steal time, and the 1-minute load average, plus the
generator's own `client_bound` verdict. A run is flagged when another
process used more than BUSY_OTHERS_CORES of a core, steal was over
BUSY_STEAL, the generator says it was client-bound, or connections failed.
Flagged figures carry a mark in the table and are listed under it.

Outputs (under --out, default target/peers): report.md (the table and the
machine notes), runs.jsonl (one line per run with every extracted figure and
the busy measurements), json/ (each ringcast-load report), logs/ (server
output).
"""

import argparse
import json
import os
import platform
import re
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RELEASE = ROOT / "target" / "release"
LOAD = RELEASE / "ringcast-load"

SERVER_CPU = "0"
LOAD_CPU = "1"
SOURCES = "127.0.0.2-127.0.0.9"

# Another process using more than this many cores' worth of CPU during a
# run, or more than this share of steal, flags the run as taken on a busy
# machine.
BUSY_OTHERS_CORES = 0.25
BUSY_STEAL = 0.05

HZ = os.sysconf("SC_CLK_TCK")
# Where bench/peers/uws/build.sh takes the uWebSockets sources from.
UWS_SOURCE = "crates.io libuwebsockets-sys 0.0.10"
UWS_BIN = ROOT / "target" / "peers" / "uws" / "uws-peer"
READY = re.compile(r"listening on (\S+)")


# --------------------------------------------------------------------------
# Parameters: full and --quick.


def plan(quick):
    """The scenarios, in run order, with their ringcast-load parameters."""
    if quick:
        w, d = "300ms", "1s"
        tput = [(100, 20), (1000, 1024)]
        lat_conns, lat_rate = 1000, 5000
        wide = []
        fan = [(1000, 50)]
        idle_conns, idle_rate, idle_hold = 2000, 5000, "2s"
        hs_conns, hs_rate = 1000, 20000
    else:
        w, d = "1s", "3s"
        tput = [(100, 20), (100, 1024), (1000, 20), (1000, 1024)]
        lat_conns, lat_rate = 1000, 10000
        # Many connections, each sending about once a second.
        wide = [(19000, 20000)]
        fan = [(1000, 50), (10000, 5)]
        idle_conns, idle_rate, idle_hold = 19000, 5000, "4s"
        hs_conns, hs_rate = 5000, 50000
    scenarios = []
    for conns, size in tput:
        scenarios.append(
            dict(
                id=f"echo_tput_{conns}x{size}",
                kind="echo",
                row=f"echo throughput, closed loop, {conns} conns x {fmt_size(size)} (msg/s)",
                args=[
                    "echo", "--connections", str(conns), "--inflight", "1",
                    "--size", str(size), "--warmup", w, "--duration", d,
                ],
                path="/echo",
            )
        )
    scenarios.append(
        dict(
            id="echo_latency",
            kind="echo_latency",
            rate=lat_rate,
            row=f"echo latency, open loop, {lat_conns} conns at {lat_rate} msg/s, 20 B",
            args=[
                "echo", "--connections", str(lat_conns), "--rate", str(lat_rate),
                "--size", "20", "--warmup", w, "--duration", d,
            ],
            path="/echo",
        )
    )
    for conns, rate in wide:
        scenarios.append(
            dict(
                id=f"echo_latency_{conns}",
                kind="echo_latency",
                rate=rate,
                row=f"echo latency, open loop, {conns} conns at {rate} msg/s, 20 B",
                args=[
                    "echo", "--connections", str(conns), "--rate", str(rate),
                    "--size", "20", "--warmup", w, "--duration", d,
                ],
                path="/echo",
            )
        )
    for subs, rate in fan:
        scenarios.append(
            dict(
                id=f"fanout_{subs}",
                kind="fanout",
                rate=rate * subs,
                row=f"fan-out, {subs} subscribers, 1 publisher at {rate} msg/s, 64 B",
                args=[
                    "fanout", "--subscribers", str(subs), "--publishers", "1",
                    "--rate", str(rate), "--size", "64", "--warmup", w, "--duration", d,
                ],
                path="/ws",
            )
        )
    scenarios.append(
        dict(
            id="idle_memory",
            kind="connect_memory",
            row=f"idle memory per connection, {idle_conns} open (KiB)",
            args=[
                "connect", "--connections", str(idle_conns), "--rate", str(idle_rate),
                "--hold", idle_hold, "--settle", "2s",
            ],
            path="/echo",
            server_pid=True,
            # On a server that already ran the other scenarios, new
            # connections reuse memory those freed and RSS growth reads low:
            # this one starts from a fresh process.
            fresh=True,
        )
    )
    scenarios.append(
        dict(
            id="handshakes",
            kind="connect_rate",
            row=f"handshakes per second ({hs_conns} connections, offered at {hs_rate}/s)",
            args=[
                "connect", "--connections", str(hs_conns), "--rate", str(hs_rate),
                "--hold", "1s", "--settle", "500ms",
            ],
            path="/echo",
        )
    )
    return scenarios


def fmt_size(size):
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


# --------------------------------------------------------------------------
# Servers.


def servers(args):
    node_dir = ROOT / "target" / "peers" / "node"
    listen = ["--listen", "127.0.0.1:0"]
    found = [
        dict(name="ringcast", cmd=[str(RELEASE / "ringcast"), "serve", *listen, "--workers", "1"],
             protocol="ringcast"),
        # The same server with its sockets on io_uring completions (multishot
        # recv into provided buffers, sendmsg SQEs) instead of readiness.
        dict(name="ringcast-completion",
             cmd=[str(RELEASE / "ringcast"), "serve", *listen, "--workers", "1",
                  "--set", "io_uring.socket_io=completion"],
             protocol="ringcast"),
        dict(name="tokio-tungstenite", cmd=[str(RELEASE / "peer-tungstenite"), *listen],
             protocol="broadcast"),
        dict(name="fastwebsockets", cmd=[str(RELEASE / "peer-fastwebsockets"), *listen],
             protocol="broadcast"),
        dict(name="node-ws", cmd=["node", str(node_dir / "server.mjs"), *listen],
             protocol="broadcast"),
    ]
    if args.uws:
        found.append(dict(name="uWebSockets", cmd=shlex.split(args.uws), protocol="broadcast",
                          port_arg=True))
    elif UWS_BIN.exists():
        # Built by bench/peers/uws/build.sh (run.sh does it).
        found.append(dict(name="uWebSockets", cmd=[str(UWS_BIN), *listen], protocol="broadcast"))
    if args.only:
        wanted = set(args.only.split(","))
        found = [s for s in found if s["name"] in wanted or s["name"] == "ringcast"]
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process pinned to SERVER_CPU, from start to stop."""

    def __init__(self, spec, log_path):
        self.spec = spec
        cmd = list(spec["cmd"])
        port = None
        if spec.get("port_arg"):
            # A user-built server (uWebSockets): `{port}` in its command is
            # replaced, or the port is appended; ready when the port accepts.
            port = free_port()
            if any("{port}" in c for c in cmd):
                cmd = [c.replace("{port}", str(port)) for c in cmd]
            else:
                cmd.append(str(port))
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *cmd],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
        self.addr = self._wait_ready(port)

    def _wait_ready(self, port, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.spec['name']} exited with {self.proc.returncode} before it was ready; "
                    f"see {self.log_path}")
            if port is not None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        return f"127.0.0.1:{port}"
                except OSError:
                    pass
            else:
                text = self.log_path.read_text(errors="replace")
                m = READY.search(text)
                if m:
                    return m.group(1)
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.spec['name']} did not print 'listening on ADDR' "
                           f"within {timeout:.0f} s; see {self.log_path}")

    def cpu_seconds(self):
        """User + system CPU of the server process so far (all its threads)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / HZ
        except (OSError, IndexError, ValueError):
            return 0.0

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --------------------------------------------------------------------------
# Busy-machine measurement.


def cpu_times():
    """(busy, steal, total) jiffies summed over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy, steal, busy + idle + iowait


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_quiet(max_s):
    """Waits up to `max_s` for a half second in which other processes use
    less than BUSY_OTHERS_CORES (the servers are idle between runs), so that
    runs land in the machine's quiet moments. Returns the seconds waited."""
    t0 = time.monotonic()
    while True:
        busy0 = cpu_times()[0]
        time.sleep(0.5)
        others = (cpu_times()[0] - busy0) / HZ / 0.5
        waited = time.monotonic() - t0
        if others < BUSY_OTHERS_CORES or waited >= max_s:
            return waited


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# --------------------------------------------------------------------------
# One run.


def run_scenario(server, scenario, out_dir, round_no, timeout, waited):
    name = server.spec["name"]
    json_path = out_dir / "json" / f"{scenario['id']}.{name}.r{round_no}.json"
    url = f"ws://{server.addr}{scenario['path']}"
    cmd = [str(LOAD), *scenario["args"], "--url", url, "--cpus", LOAD_CPU,
           "--source", SOURCES, "--json", str(json_path)]
    if scenario["kind"] in ("echo", "echo_latency", "fanout"):
        cmd.append("--quiet")
    if scenario["kind"] == "fanout":
        cmd += ["--protocol", server.spec["protocol"]]
    if scenario.get("server_pid"):
        cmd += ["--server-pid", str(server.proc.pid)]

    busy0, steal0, total0 = cpu_times()
    gen0, srv0, load0 = children_cpu(), server.cpu_seconds(), loadavg()
    t0 = time.monotonic()
    try:
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, cwd=ROOT)
        output, rc = done.stdout.decode(errors="replace"), done.returncode
    except subprocess.TimeoutExpired as e:
        output, rc = (e.stdout or b"").decode(errors="replace"), "timeout"
    wall = time.monotonic() - t0
    busy1, steal1, total1 = cpu_times()
    gen_cpu, srv_cpu = children_cpu() - gen0, server.cpu_seconds() - srv0

    all_busy_s = (busy1 - busy0) / HZ
    others = max(0.0, all_busy_s - gen_cpu - srv_cpu) / wall
    steal = (steal1 - steal0) / max(1, total1 - total0)
    record = dict(
        round=round_no, server=name, scenario=scenario["id"], url=url, cmd=cmd,
        exit=rc, wall_s=round(wall, 2), waited_for_quiet_s=round(waited, 1), server_cpu_cores=round(srv_cpu / wall, 3),
        generator_cpu_cores=round(gen_cpu / wall, 3), others_cores=round(others, 3),
        steal=round(steal, 4), loadavg_before=load0, loadavg_after=loadavg(),
        server_alive=server.alive(), figures={}, flags=[],
    )
    report = None
    if json_path.exists():
        try:
            report = json.loads(json_path.read_text())
        except json.JSONDecodeError:
            report = None
    if report is None:
        record["flags"].append(f"no report (exit {rc})")
        tail = "\n".join(output.strip().splitlines()[-5:])
        record["error"] = tail
    else:
        extract(scenario, report, record, srv_cpu)
    if others > BUSY_OTHERS_CORES:
        record["flags"].append(f"busy: other processes used {others:.2f} cores")
    if steal > BUSY_STEAL:
        record["flags"].append(f"busy: steal {steal:.0%}")
    if not record["server_alive"]:
        record["flags"].append("server died")
    return record


def extract(scenario, r, record, srv_cpu):
    """The scenario's figures from a ringcast-load JSON report, and the
    server's CPU per message: its CPU time over the whole run (connection
    setup and close included, which makes it slightly pessimistic for every
    server alike) divided by the messages it echoed or delivered."""
    f, flags = record["figures"], record["flags"]
    kind = scenario["kind"]
    received = r.get("counts", {}).get("received") or 0
    per_msg = srv_cpu * 1e6 / received if received else None
    if kind in ("echo", "echo_latency", "fanout"):
        if r.get("client_bound"):
            flags.append("client-bound: " + "; ".join(r.get("client_bound_reasons", [])))
        conns = r.get("connections", {})
        if conns.get("failed"):
            flags.append(f"{conns['failed']} of {conns.get('requested')} connections failed")
        lat = r.get("metrics", {}).get("latency", {})
        thr = r.get("throughput", {})
        if kind == "echo":
            f["msg_per_s"] = thr.get("received_per_s")
            f["cpu_us_per_msg"] = per_msg
        elif kind == "echo_latency":
            for p in ("p50", "p99", "p999"):
                f[f"{p}_us"] = lat.get(f"{p}_us")
            got = thr.get("received_per_s") or 0
            if got < 0.95 * scenario["rate"]:
                flags.append(f"fell behind: {got:.0f} of {scenario['rate']} msg/s echoed")
        else:
            f["deliveries_per_s"] = thr.get("deliveries_per_s")
            f["p99_us"] = lat.get("p99_us")
            f["cpu_us_per_msg"] = per_msg
            undelivered = r.get("counts", {}).get("undelivered", 0)
            if undelivered:
                flags.append(f"{undelivered} deliveries lost")
            target = thr.get("target_deliveries_per_s") or scenario["rate"]
            if (f["deliveries_per_s"] or 0) < 0.95 * target:
                flags.append(f"fell behind: {f['deliveries_per_s']:.0f} of {target:.0f} deliveries/s")
    else:
        if r.get("failed"):
            flags.append(f"{r['failed']} of {r.get('connections_requested')} connections failed "
                         f"({r.get('failures')})")
        if kind == "connect_memory":
            rss = r.get("server_rss") or {}
            f["kib_per_conn"] = rss.get("per_connection_kib")
            f["open_at_sample"] = r.get("open_at_sample")
        else:
            phase = r.get("open_phase_s") or 0
            f["handshakes_per_s"] = (r.get("opened", 0) / phase) if phase > 0 else None
            f["cpu_us_per_handshake"] = (srv_cpu * 1e6 / r["opened"]) if r.get("opened") else None
            f["handshake_p99_us"] = (r.get("handshake_latency") or {}).get("p99_us")


# --------------------------------------------------------------------------
# The table.

# (scenario kind, figure, label, higher is better, format)
ROWS = {
    "echo": [("msg_per_s", "", True, "{:,.0f}"),
             ("cpu_us_per_msg", "server CPU per message (µs)", False, "{:.1f}")],
    "echo_latency": [("p50_us", "p50 (µs)", False, "{:,.0f}"),
                     ("p99_us", "p99 (µs)", False, "{:,.0f}"),
                     ("p999_us", "p99.9 (µs)", False, "{:,.0f}")],
    "fanout": [("deliveries_per_s", "deliveries/s", True, "{:,.0f}"),
               ("p99_us", "delivery p99 (µs)", False, "{:,.0f}"),
               ("cpu_us_per_msg", "server CPU per delivery (µs)", False, "{:.2f}")],
    "connect_memory": [("kib_per_conn", "", False, "{:.2f}")],
    "connect_rate": [("handshakes_per_s", "", True, "{:,.0f}"),
                     ("cpu_us_per_handshake", "server CPU per connection (µs)", False, "{:.0f}")],
}


def summarize(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals), len(vals)


def build_table(scenarios, names, records, marks_from=0, show_n=False):
    """The markdown table (medians, min–max, ratios) and its footnotes."""
    by = {}
    for rec in records:
        by.setdefault((rec["scenario"], rec["server"]), []).append(rec)
    peers = [n for n in names if n != "ringcast"]
    header = ["scenario", *names] + [f"vs {p}" for p in peers]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes, marks = [], {}
    first = marks_from + 1
    for sc in scenarios:
        for key, label, higher, fmt in ROWS[sc["kind"]]:
            row = [sc["row"] + (f": {label}" if label else "")]
            medians = {}
            for name in names:
                recs = by.get((sc["id"], name), [])
                s = summarize(rec["figures"].get(key) for rec in recs)
                if s is None:
                    row.append("n/a")
                    continue
                med, lo, hi, n = s
                medians[name] = med
                cell = fmt.format(med)
                if n > 1:
                    cell += f" ({fmt.format(lo)}–{fmt.format(hi)})"
                if show_n:
                    cell += f" n={n}"
                flagged = [rec for rec in recs if rec["flags"]]
                if flagged:
                    if (name, sc["id"]) not in marks:
                        marks[(name, sc["id"])] = first + len(marks)
                        why = "; ".join(f"round {rec['round']}: " + ", ".join(rec["flags"])
                                        for rec in flagged)
                        notes.append(f"- [{marks[(name, sc['id'])]}] {name}, {sc['id']}, {len(flagged)} of "
                                     f"{len(recs)} runs flagged: {why}")
                    cell += f" [{marks[(name, sc['id'])]}]"
                row.append(cell)
            base = medians.get("ringcast")
            for p in peers:
                other = medians.get(p)
                if not base or not other:
                    row.append("n/a")
                else:
                    ratio = base / other if higher else other / base
                    row.append(f"{ratio:.2f}×")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines), notes


# --------------------------------------------------------------------------
# Machine notes.


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, timeout=10).stdout.strip()
    except subprocess.TimeoutExpired:
        return ""


def lock_version(name):
    text = (ROOT / "Cargo.lock").read_text()
    m = re.search(r'name = "' + re.escape(name) + r'"\nversion = "([^"]+)"', text)
    return m.group(1) if m else "?"


def machine_notes(args, started, records):
    cpu = sh("lscpu | sed -n 's/^Model name: *//p'")
    mem = sh("free -g | awk '/Mem:/{print $2}'")
    node_ws = sh(f"node -p \"require('{ROOT}/target/peers/node/node_modules/ws/package.json').version\"")
    busy = [r["others_cores"] for r in records]
    return "\n".join([
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}; mode: {'--quick' if args.quick else 'full'},"
        f" {args.runs} round(s)",
        f"- machine: {cpu or platform.processor()}, {os.cpu_count()} CPUs, {mem} GiB,"
        f" kernel {platform.release()}",
        f"- toolchain: {sh('rustc --version')}; node {sh('node --version')}",
        f"- peers: tokio-tungstenite {lock_version('tokio-tungstenite')}, fastwebsockets"
        f" {lock_version('fastwebsockets')} (hyper {lock_version('hyper')}), tokio"
        f" {lock_version('tokio')}, ws {node_ws or '?'}"
        + (", uWebSockets (user-built)" if args.uws else
           f", uWebSockets from {UWS_SOURCE} (bench/peers/uws)" if UWS_BIN.exists() else ""),
        f"- pinning: server on CPU {SERVER_CPU} (`taskset -c {SERVER_CPU}`, ringcast with"
        f" `--workers 1`, every peer single-threaded), ringcast-load on CPU {LOAD_CPU}"
        f" (`--cpus {LOAD_CPU}`), sources {SOURCES}",
        f"- open-file limit: {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}",
        f"- other processes' CPU during runs: median {statistics.median(busy):.2f} cores,"
        f" max {max(busy):.2f} (flag above {BUSY_OTHERS_CORES})" if busy else "- no runs",
    ])


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round, short runs")
    ap.add_argument("--runs", type=int, help="rounds (default 3, --quick 1)")
    ap.add_argument("--uws", help="command of a user-built uWebSockets echo/broadcast server; "
                    "'{port}' in it is replaced by the port, else the port is appended")
    ap.add_argument("--only", help="comma list of peers to run beside ringcast")
    ap.add_argument("--scenarios", help="comma list of scenario ids to run (default all)")
    ap.add_argument("--out", default=str(ROOT / "target" / "peers"))
    args = ap.parse_args()
    args.runs = args.runs or (1 if args.quick else 3)

    out = Path(args.out)
    for sub in ("json", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    scenarios = plan(args.quick)
    if args.scenarios:
        wanted = set(args.scenarios.split(","))
        scenarios = [s for s in scenarios if s["id"] in wanted]
    specs = servers(args)
    names = [s["name"] for s in specs]
    started = datetime.now(timezone.utc)
    t_start = time.monotonic()
    records = []
    runs_path = out / "runs.jsonl"
    runs_path.write_text("")
    timeout = 120 if args.quick else 180
    # Waiting for quiet moments: at most this long before one run, and this
    # long over the whole script (so it still ends in its time).
    quiet_per_run, quiet_budget = (3.0, 20.0) if args.quick else (20.0, 240.0)

    for round_no in range(1, args.runs + 1):
        for spec in specs:
            name = spec["name"]
            log = out / "logs" / f"{name}.r{round_no}.log"
            print(f"== round {round_no}/{args.runs}: {name}", flush=True)
            try:
                server = Server(spec, log)
            except RuntimeError as e:
                print(f"   {e}", flush=True)
                for sc in scenarios:
                    records.append(dict(round=round_no, server=name, scenario=sc["id"],
                                        figures={}, flags=[str(e)], others_cores=0.0))
                continue
            try:
                for sc in scenarios:
                    if sc.get("fresh") or not server.alive():
                        server.stop()
                        server = Server(spec, log.with_suffix(f".{sc['id']}.log"))
                    waited = wait_quiet(min(quiet_per_run, quiet_budget))
                    quiet_budget -= waited
                    rec = run_scenario(server, sc, out, round_no, timeout, waited)
                    records.append(rec)
                    with open(runs_path, "a") as f:
                        f.write(json.dumps(rec) + "\n")
                    figs = ", ".join(f"{k}={v:,.1f}" for k, v in rec["figures"].items()
                                     if isinstance(v, (int, float)))
                    flag = f"  FLAGGED: {'; '.join(rec['flags'])}" if rec["flags"] else ""
                    print(f"   {sc['id']:<20} {figs or '(no figures)'}  "
                          f"[server {rec['server_cpu_cores']:.2f} cores, others "
                          f"{rec['others_cores']:.2f}]{flag}", flush=True)
            finally:
                server.stop()

    table, notes = build_table(scenarios, names, records)
    quiet = [r for r in records if not any(f.startswith("busy") for f in r["flags"])]
    quiet_table, quiet_notes = build_table(scenarios, names, quiet, marks_from=len(notes),
                                           show_n=True)
    elapsed = time.monotonic() - t_start
    ratio_note = ("Ratio columns: ringcast's advantage over that peer, from the medians "
                  "(throughput: ringcast ÷ peer; latency and memory: peer ÷ ringcast), "
                  "so above 1× means ringcast is better.")
    cells = ("Cells: median of the rounds (min–max); [n] marks a figure with flagged runs, "
             "listed below.")
    report = "\n".join([
        "# ringcast vs peers",
        "",
        f"Command: `{' '.join(['bash bench/peers/run.sh', *sys.argv[1:]])}`"
        f" ({elapsed / 60:.1f} min of runs, builds not counted).",
        "",
        table,
        "",
        cells + " " + ratio_note,
        "",
        *(notes or ["No run was flagged."]),
        "",
        "## Quiet runs only",
        "",
        "The same, from the runs with no `busy` flag (another process used under "
        f"{BUSY_OTHERS_CORES} cores and steal under {BUSY_STEAL:.0%}); a cell's median is over "
        "fewer runs, n/a where every run was busy. Client-bound runs stay in, marked.",
        "",
        quiet_table,
        "",
        *(quiet_notes or ["No quiet run was flagged."]),
        "",
        "Machine:",
        "",
        machine_notes(args, started, records),
        "",
    ])
    (out / "report.md").write_text(report)
    print()
    print(report)
    print(f"written: {out / 'report.md'}, {runs_path}")
    # A server that did not start, or a scenario that measured nothing, fails
    # the script (the CI smoke run relies on it).
    missing = sorted({f"{r['server']}/{r['scenario']}" for r in records if not r["figures"]})
    if missing:
        print(f"peers.py: no figures for {', '.join(missing)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
