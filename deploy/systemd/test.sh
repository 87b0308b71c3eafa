#!/usr/bin/env bash
# deploy/systemd/ringcast.service: `systemd-analyze verify` (with ExecStart
# pointed at a real binary, and any warning counted as a failure), then the
# keys that matter, read from the unit:
# TimeoutStopSec covers the largest drain timeout of hardware-profiles/*.toml
# plus a margin, LimitNOFILE covers the profile's planned connections, the
# restart policy, ExecReload sends SIGHUP (the TLS certificate reload),
# tuning/ringcast.service is the same file, and the unit's environment is a
# configuration `ringcast profile show` accepts.
#
# systemd-analyze is required: where it is missing, Debian's systemd package
# is installed (as root, each apt step bounded to 300 s, no service started);
# where that cannot be done, the test fails rather than check less.
#
# Usage: bash deploy/systemd/test.sh. Needs python3 (3.11+: tomllib). Uses
# $RINGCAST_BIN, else target/release/ringcast, else target/debug/ringcast for
# the last check (never builds one: without a binary that check fails).
# One line per check; exits 1 on the first failure. Takes about a second.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
unit=$root/deploy/systemd/ringcast.service
work=$root/target/tmp/deploy/systemd
passed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$work"
mkdir -p "$work"

bin=${RINGCAST_BIN:-}
for candidate in "$root/target/release/ringcast" "$root/target/debug/ringcast"; do
    [[ -z $bin && -x $candidate ]] && bin=$candidate
done
[[ -n $bin && -x $bin ]] || fail "no ringcast binary: cargo build -p ringcast (or set RINGCAST_BIN)"
bin=$(readlink -f "$bin")

[[ $(readlink -f "$root/tuning/ringcast.service") == "$(readlink -f "$unit")" ]] ||
    fail "tuning/ringcast.service is not a link to deploy/systemd/ringcast.service"
ok "tuning/ringcast.service is deploy/systemd/ringcast.service (one copy)"

if ! command -v systemd-analyze >/dev/null; then
    [[ $(id -u) == 0 ]] || fail "systemd-analyze is not installed and this is not root: apt-get install systemd"
    # The package must not try to start services here (policy-rc.d exit
    # 101 = "not allowed"; removed again right after).
    policy_created=
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        policy_created=1
    fi
    installed=0
    { timeout 300 apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive timeout 300 \
            apt-get install -y -qq --no-install-recommends systemd; } >"$work/apt.log" 2>&1 && installed=1
    [[ -z $policy_created ]] || rm -f /usr/sbin/policy-rc.d
    [[ $installed == 1 ]] || { tail -20 "$work/apt.log"; fail "apt-get install systemd (systemd-analyze)"; }
    command -v systemd-analyze >/dev/null || fail "systemd installed but no systemd-analyze on the PATH"
fi
{
    # The unit names /usr/local/bin/ringcast, which verify requires to exist.
    sed "s#^ExecStart=/usr/local/bin/ringcast #ExecStart=$bin #" "$unit" >"$work/ringcast.service"
    grep -q "^ExecStart=$bin serve" "$work/ringcast.service" || fail "ExecStart is not /usr/local/bin/ringcast serve"
    (cd "$work" && timeout 30 systemd-analyze verify ./ringcast.service) >"$work/verify.log" 2>&1 ||
        { cat "$work/verify.log"; fail "systemd-analyze verify"; }
    [[ ! -s $work/verify.log ]] || { cat "$work/verify.log"; fail "systemd-analyze verify printed warnings"; }
    ok "systemd-analyze verify: no errors, no warnings ($(systemd-analyze --version | head -1))"
}

{ python3 - "$root" "$unit" "$bin" | tee "$work/keys.out"; } <<'PY' || fail "unit keys"
import os, re, subprocess, sys, tomllib

root, unit, binary = sys.argv[1:4]


def ok(what):
    print(f"ok: {what}", flush=True)


def check(cond, what, detail=""):
    if not cond:
        print(f"FAIL: {what}{': ' + detail if detail else ''}", flush=True)
        sys.exit(1)
    ok(what)


def seconds(text):
    """A systemd or humantime span: 45, 45s, 1min 30s, 2m, 500ms."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    text = str(text).strip()
    if re.fullmatch(r"\d+", text):
        return float(text)
    total, pos = 0.0, 0
    for m in re.finditer(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)", text):
        if m.start() != pos or m.group(2) not in units:
            raise ValueError(f"not a time span: {text!r}")
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise ValueError(f"not a time span: {text!r}")
    return total


# [Section] Key=Value, comments and blank lines skipped; keys may repeat.
sections = {}
section = None
with open(unit, encoding="utf-8") as f:
    for line in f:
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
service = sections.get("Service", {})


def one(key):
    values = service.get(key)
    if values is None:
        print(f"FAIL: [Service] {key} is not set", flush=True)
        sys.exit(1)
    return values[-1]


env = dict(v.split("=", 1) for v in service.get("Environment", []))
profiles = {}
for name in ("medium", "high", "ultra"):
    with open(os.path.join(root, "hardware-profiles", f"{name}.toml"), "rb") as f:
        profiles[name] = tomllib.load(f)

drains = {n: seconds(p["timeouts"]["drain_timeout"]) for n, p in profiles.items()}
stop = seconds(one("TimeoutStopSec"))
check(stop >= max(drains.values()) + 5,
      f"TimeoutStopSec={stop:g}s >= largest drain_timeout + 5 s "
      f"({', '.join(f'{n} {d:g}s' for n, d in drains.items())})")
check(service.get("KillSignal", ["SIGTERM"])[-1] == "SIGTERM", "KillSignal is SIGTERM (the drain)")

profile = env.get("RINGCAST_PROFILE")
check(profile in profiles, f"Environment RINGCAST_PROFILE={profile} is a built-in tier")
planned = profiles[profile]["capacity"]["planned_connections"]
nofile = int(one("LimitNOFILE"))
check(nofile >= planned + 1024,
      f"LimitNOFILE={nofile} >= {profile}'s planned connections {planned} + 1024")
check(one("LimitMEMLOCK") == "infinity", "LimitMEMLOCK=infinity (io_uring before 5.12)")

check(one("Restart") in ("on-failure", "always", "on-abnormal"),
      f"Restart={one('Restart')}")
check("2" in one("RestartPreventExitStatus").split(),
      "RestartPreventExitStatus=2 (a refused configuration is not retried)")
check(service.get("ExecReload") == ["/bin/kill -HUP $MAINPID"],
      "ExecReload=/bin/kill -HUP $MAINPID (SIGHUP reloads the TLS certificate)",
      str(service.get("ExecReload")))
check(one("ExecStart").split()[:2] == ["/usr/local/bin/ringcast", "serve"],
      "ExecStart=/usr/local/bin/ringcast serve")
check(env.get("RINGCAST_LOG_FORMAT", "human") in ("human", "json"),
      f"RINGCAST_LOG_FORMAT={env.get('RINGCAST_LOG_FORMAT')}")

# The unit's environment is a configuration the binary accepts (exit 0).
clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
run = subprocess.run([binary, "profile", "show"], env=clean, capture_output=True,
                     text=True, timeout=30)
check(run.returncode == 0,
      f"`ringcast profile show` with the unit's Environment= lines: accepted",
      run.stderr.strip())
PY
passed=$((passed + $(grep -c '^ok: ' "$work/keys.out")))
echo "deploy/systemd: $passed passed, 0 failed"
