"""Checks the repository's Dockerfile and .dockerignore (run by
deploy/docker/test.sh).

`check.py ROOT BINARY`: no container engine is needed. The Dockerfile is
parsed (comments dropped, continuation lines joined, one instruction per
line, stages split at FROM) and checked against what it promises and what
deploy/kubernetes/deployment.yaml expects of the image:

- two stages: a rust builder at the workspace's rust-version that runs
  `cargo build --release --locked -p ringcast`, and a runtime stage that
  copies the binary alone (one COPY, from the builder, to the path the
  Deployment's `command` runs) and nothing else;
- the runtime stage runs as a non-root numeric user, the Deployment's
  runAsUser:runAsGroup; its entrypoint is `ringcast serve` in exec form;
  it EXPOSEs the Deployment's containerPort, and the listen address it sets
  uses that port;
- the image's version label and the Deployment's image tag are the
  workspace version, and the Dockerfile's own build line makes that tag;
- .dockerignore keeps target/ and .git/ out and keeps every tracked file
  the build reads (manifests, Cargo.lock, sources, hardware profiles) in.

Last, BINARY runs the way the image runs it (entrypoint, the image's
environment, listen address moved to loopback): it listens, and /healthz
answers 200.

One line per check; the first failure exits 1.
"""

import fnmatch
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request

passed = 0


def ok(what):
    global passed
    passed += 1
    print(f"ok: {what}", flush=True)


def check(cond, what, detail=""):
    if not cond:
        print(f"FAIL: {what}{': ' + str(detail) if detail else ''}", flush=True)
        sys.exit(1)
    ok(what)


def instructions(text):
    """[(INSTRUCTION, arguments)] of a Dockerfile, continuations joined."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    if pending:
        out.append(tuple(pending.strip().partition(" ")[::2]))
    return out


def stages(instrs):
    """[{'from': image, 'name': alias, 'instrs': [...]}], plus the global ARGs."""
    result, args = [], {}
    for word, rest in instrs:
        if word == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            result.append({"from": parts[0], "name": name, "instrs": []})
        elif not result:
            if word == "ARG":
                key, _, value = rest.partition("=")
                args[key.strip()] = value.strip()
        else:
            result[-1]["instrs"].append((word, rest))
    return result, args


def exec_form(rest):
    """The JSON array of an exec-form ENTRYPOINT/CMD, or None (shell form)."""
    try:
        value = json.loads(rest)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def yaml_value(text, key):
    """The first `key: value` of a YAML file, as text (the Deployment is plain)."""
    m = re.search(rf"^\s*-?\s*{re.escape(key)}:\s*(.+?)\s*$", text, re.M)
    return m.group(1).strip("\"'") if m else None


def ignored(path, patterns):
    """Whether .dockerignore's patterns (last match wins, ! re-includes)
    leave `path` out of the build context."""
    out = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        p = pattern[1:] if negate else pattern
        p = p.strip("/")
        candidates = [path] + [path[:i] for i in range(len(path)) if path[i] == "/"]
        hit = any(fnmatch.fnmatch(c, p) or fnmatch.fnmatch(c, p.replace("**/", ""))
                  or (p.startswith("**/") and fnmatch.fnmatch(c.rsplit("/", 1)[-1], p[3:]))
                  for c in candidates)
        if hit:
            out = not negate
    return out


def main():
    root, binary = sys.argv[1], sys.argv[2]
    with open(os.path.join(root, "Cargo.toml"), "rb") as f:
        workspace = tomllib.load(f)["workspace"]["package"]
    version, rust_version = workspace["version"], workspace["rust-version"]
    with open(os.path.join(root, "Dockerfile"), encoding="utf-8") as f:
        dockerfile = f.read()
    with open(os.path.join(root, "deploy", "kubernetes", "deployment.yaml"), encoding="utf-8") as f:
        deployment = f.read()

    all_stages, global_args = stages(instructions(dockerfile))
    check(len(all_stages) >= 2, f"Dockerfile is multi-stage ({len(all_stages)} stages)")
    build, runtime = all_stages[0], all_stages[-1]

    # --- the builder -----------------------------------------------------------
    image = build["from"]
    for key, value in global_args.items():
        image = image.replace("${" + key + "}", value).replace("$" + key, value)
    check(re.fullmatch(rf"rust:{re.escape(rust_version)}(\.\d+)?(-[a-z0-9-]+)?", image) is not None,
          f"builder {image} is Rust {rust_version}, the workspace's rust-version", build["from"])
    runs = " ".join(rest for word, rest in build["instrs"] if word == "RUN")
    check("cargo build --release --locked -p ringcast" in " ".join(runs.split()),
          "builder runs cargo build --release --locked -p ringcast", runs)

    # --- the runtime stage ------------------------------------------------------
    check(runtime["from"] not in (build["name"], "scratch") and ":" in runtime["from"],
          f"runtime stage starts from a tagged base image ({runtime['from']})")
    copies = [rest for word, rest in runtime["instrs"] if word in ("COPY", "ADD")]
    check(len(copies) == 1, "runtime stage adds one thing (the binary only)", copies)
    copy = shlex.split(copies[0])
    command = json.loads(yaml_value(deployment, "command") or "[]")
    check(command[:1] == ["/usr/local/bin/ringcast"],
          "the Deployment runs /usr/local/bin/ringcast", command)
    check(f"--from={build['name']}" in copy and copy[-1] == command[0]
          and copy[-2].endswith("/ringcast"),
          f"runtime stage copies the builder's ringcast to {command[0]}", copies[0])

    users = [rest for word, rest in runtime["instrs"] if word == "USER"]
    check(bool(users), "runtime stage sets USER", runtime["instrs"])
    user, _, group = users[-1].partition(":")
    check(user.isdigit() and int(user) != 0 and (not group or (group.isdigit() and int(group) != 0)),
          f"runtime user {users[-1]} is numeric and not root (runAsNonRoot can verify it)")
    run_as = f"{yaml_value(deployment, 'runAsUser')}:{yaml_value(deployment, 'runAsGroup')}"
    check(users[-1] == run_as, f"USER {users[-1]} is the Deployment's runAsUser:runAsGroup", run_as)

    entry = [exec_form(rest) for word, rest in runtime["instrs"] if word == "ENTRYPOINT"]
    check(len(entry) == 1 and entry[0] == [command[0], "serve"],
          "ENTRYPOINT is [\"/usr/local/bin/ringcast\", \"serve\"] (exec form)", entry)

    port = yaml_value(deployment, "containerPort")
    exposed = " ".join(rest for word, rest in runtime["instrs"] if word == "EXPOSE").split()
    check(port in [e.split("/")[0] for e in exposed], f"EXPOSE {' '.join(exposed)} includes the containerPort {port}")
    env = {}
    for word, rest in runtime["instrs"]:
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    listen = env.get("RINGCAST_SERVER__LISTEN", "")
    check(listen == f"0.0.0.0:{port}", f"the image listens on {listen} (all interfaces, the containerPort)")

    # --- version and tag ---------------------------------------------------------
    labels = " ".join(rest for word, rest in runtime["instrs"] if word == "LABEL")
    check(f'org.opencontainers.image.version="{version}"' in labels,
          f"image version label is the workspace version {version}")
    tag = f"ringcast:{version}"
    check(f"docker build -t {tag} ." in dockerfile, f"the Dockerfile's build line tags {tag}")
    check(yaml_value(deployment, "image") == tag,
          f"deploy/kubernetes/deployment.yaml names {tag}", yaml_value(deployment, "image"))

    # --- the build context -------------------------------------------------------
    with open(os.path.join(root, ".dockerignore"), encoding="utf-8") as f:
        patterns = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    check(ignored("target/release/ringcast", patterns) and ignored(".git/HEAD", patterns),
          ".dockerignore keeps target/ and .git/ out of the context")
    tracked = subprocess.run(["git", "-C", root, "ls-files"], capture_output=True, text=True,
                             check=True).stdout.split()
    needed = [p for p in tracked if p in ("Cargo.toml", "Cargo.lock", "rustfmt.toml")
              or re.match(r"(core|tools|bench)/(Cargo\.toml|src/|benches/|build\.rs)", p)
              or p.startswith("hardware-profiles/")]
    lost = [p for p in needed if ignored(p, patterns)]
    check(needed and not lost, f".dockerignore keeps the {len(needed)} files the build reads", lost)

    # --- the binary, run as the image runs it ----------------------------------
    run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env,
               "RINGCAST_SERVER__LISTEN": "127.0.0.1:0"}
    proc = subprocess.Popen([binary] + entry[0][1:], env=run_env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        addr, deadline = None, time.monotonic() + 30
        while addr is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.match(r"ringcast listening on (\S+)", line)
            addr = m.group(1) if m else None
        check(addr is not None, "the entrypoint with the image's environment listens",
              "no 'ringcast listening on ADDR'")
        with urllib.request.urlopen(f"http://{addr}/healthz", timeout=10) as resp:
            check(resp.status == 200, f"GET /healthz on {addr} answers 200")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
