"""Checks deploy/kubernetes/ (run by deploy/kubernetes/test.sh).

`check.py ROOT BINARY`: every YAML parses; each resource validates against the
Kubernetes API schemas of 1.30 (the first with the preStop sleep action) and
of the newest release kubernetes-validate knows, strictly (an unknown or
misspelt field fails); then the fields the deployment depends on, with the
numbers taken from the profile the Deployment runs (hardware-profiles/NAME.toml
and the container's flags): probes on /readyz and /healthz at the container
port, terminationGracePeriodSeconds >= preStop + drain timeout + margin,
resources = the profile's workers and planned memory, the PDB and the Service
selecting the Deployment's pods, the Service targeting the container port,
the image tag the Dockerfile builds (README.md). Last, BINARY runs with the
container's own arguments (listen address moved to loopback): the probe paths
answer 200, SIGTERM makes /readyz 503 and the process exit 0 well within the
grace period.

One line per check; the first failure exits 1.
"""

import glob
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request

import kubernetes_validate
import yaml

MARGIN = 5  # seconds of grace left after the preStop sleep and the drain
SCHEMA_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]

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


def seconds(text):
    """A humantime span as ringcast writes them: 10s, 1m 30s, 500ms."""
    units = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600}
    total, pos = 0.0, 0
    for m in re.finditer(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)", text):
        if m.start() != pos or m.group(2) not in units:
            raise ValueError(f"not a time span: {text!r}")
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a time span: {text!r}")
    return total


def quantity(text):
    """A Kubernetes quantity (4Gi, 500m, 6) or a ringcast size (4 GiB) as a number."""
    text = str(text).replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", text)
    if not m:
        raise ValueError(f"not a quantity: {text!r}")
    scale = {"": 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1 << 10,
             "Mi": 1 << 20, "Gi": 1 << 30, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
    return float(m.group(1)) * scale[m.group(2)]


def flag(args, name):
    """The value of `--name VALUE` or `--name=VALUE` in a container's args."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def http_status(addr, path):
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def main():
    root, binary = sys.argv[1], sys.argv[2]
    folder = os.path.join(root, "deploy", "kubernetes")

    # --- every YAML parses; resources by kind --------------------------------
    resources = {}
    files = sorted(glob.glob(os.path.join(folder, "*.yaml")))
    for path in files:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        name = os.path.basename(path)
        check(docs and all(isinstance(d, dict) and d.get("kind") for d in docs),
              f"{name}: parses, {', '.join(d['kind'] for d in docs)}")
        for doc in docs:
            resources.setdefault(doc["kind"], []).append((name, doc))
    kustomization = resources.pop("Kustomization")[0][1]
    listed = sorted(kustomization["resources"])
    check(listed == sorted(n for n, _ in sum(resources.values(), [])),
          f"kustomization.yaml lists every manifest: {', '.join(listed)}")

    # --- API schemas ------------------------------------------------------------
    for version in SCHEMA_VERSIONS:
        for kind, items in sorted(resources.items()):
            for name, doc in items:
                try:
                    got = kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    path = ".".join(str(p) for p in e.path)
                    check(False, f"{name}: {kind} against the {version} schema", f"{path}: {e.message}")
                check(True, f"{name}: {kind} valid against the Kubernetes {got} schema (strict)")

    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        check(len(resources.get(kind, [])) == 1, f"one {kind}")
    deploy = resources["Deployment"][0][1]
    service = resources["Service"][0][1]
    pdb = resources["PodDisruptionBudget"][0][1]

    # --- the Deployment ---------------------------------------------------------
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    selector = spec["selector"]["matchLabels"]
    check(selector.items() <= labels.items(), "Deployment selector matches its pod labels")
    (container,) = pod["containers"]
    args = container.get("args", [])
    check(container.get("command", [""])[0].endswith("ringcast") and args[:1] == ["serve"],
          "container runs `ringcast serve`")
    profile_name = flag(args, "--profile")
    check(profile_name in ("medium", "high", "ultra"), f"--profile {profile_name}")
    with open(os.path.join(root, "hardware-profiles", f"{profile_name}.toml"), "rb") as f:
        profile = tomllib.load(f)
    listen = flag(args, "--listen") or profile["server"]["listen"]
    listen_port = int(listen.rsplit(":", 1)[1])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    check(listen_port in ports.values(),
          f"containerPort {listen_port} is the port ringcast listens on ({listen})")

    def port_of(ref):
        return ports.get(ref) if isinstance(ref, str) else ref

    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path and port_of(get.get("port")) == listen_port,
              f"{probe}: GET {path} on port {get.get('port')} (= {listen_port})", get)

    drain = seconds(flag(args, "--drain-timeout") or profile["timeouts"]["drain_timeout"])
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre_stop:
        pause = pre_stop["sleep"]["seconds"]
    else:
        command = pre_stop.get("exec", {}).get("command", [])
        pause = int(command[1]) if command[:1] == ["sleep"] and len(command) == 2 else None
    check(pause is not None and pause >= 5,
          f"preStop waits {pause} s for the endpoint removal to spread before SIGTERM", pre_stop)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace >= pause + drain + MARGIN,
          f"terminationGracePeriodSeconds {grace} >= preStop {pause} + drain_timeout "
          f"{drain:g} ({profile_name}) + {MARGIN}")

    resources_ = container.get("resources", {})
    requests, limits = resources_.get("requests", {}), resources_.get("limits", {})
    workers = profile["server"]["workers"]
    memory = profile["capacity"]["planned_memory"]
    check(quantity(requests.get("cpu", 0)) == workers,
          f"requests.cpu {requests.get('cpu')} = {profile_name} workers ({workers})")
    check(quantity(requests.get("memory", 0)) == quantity(memory),
          f"requests.memory {requests.get('memory')} = {profile_name} planned memory ({memory})")
    check(limits == requests, "limits = requests (Guaranteed QoS: whole cores for pinned workers)")

    # --- PDB and Service -------------------------------------------------------
    pdb_selector = pdb["spec"]["selector"]["matchLabels"]
    check(pdb_selector == selector, "PodDisruptionBudget selects the Deployment's pods", pdb_selector)
    budget = pdb["spec"].get("maxUnavailable", pdb["spec"].get("minAvailable"))
    if "minAvailable" in pdb["spec"]:
        check(isinstance(budget, int) and budget < spec["replicas"],
              f"PDB minAvailable {budget} < replicas {spec['replicas']} (drains can proceed)")
    else:
        check(budget not in (None, 0), f"PDB maxUnavailable {budget} (drains can proceed)")
    check(service["spec"]["selector"].items() <= labels.items(), "Service selects the Deployment's pods")
    for port in service["spec"]["ports"]:
        check(port_of(port["targetPort"]) == listen_port,
              f"Service port {port['port']} -> targetPort {port['targetPort']} (= {listen_port})")

    # The tag the repository's Dockerfile builds (deploy/docker/test.sh
    # checks the Dockerfile itself).
    image = container["image"]
    with open(os.path.join(root, "Cargo.toml"), "rb") as f:
        version = tomllib.load(f)["workspace"]["package"]["version"]
    with open(os.path.join(folder, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    check(image == f"ringcast:{version}" and f"docker build -t {image} ." in readme,
          f"image {image} is the workspace version's tag, built as README.md says", image)

    # --- the container's arguments, run --------------------------------------
    run_args = list(args)
    i = run_args.index("--listen") if "--listen" in run_args else None
    if i is None:
        run_args += ["--listen", "127.0.0.1:0"]
    else:
        run_args[i + 1] = "127.0.0.1:0"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    log = open(os.path.join(root, "target", "tmp", "deploy", "kubernetes-serve.log"), "w+")
    server = subprocess.Popen([binary] + run_args, env=env, stdout=subprocess.PIPE,
                              stderr=log, text=True)
    try:
        line = server.stdout.readline().strip()
        log.seek(0)
        check(line.startswith("ringcast listening on "),
              f"ringcast {' '.join(run_args)}: starts", line or log.read()[-2000:])
        addr = line.rsplit(" ", 1)[1]
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            check(http_status(addr, path) == 200, f"{probe} path {path}: 200")
        # A WebSocket that does not answer the close keeps the drain going
        # while /readyz is read; closing it then lets the drain finish.
        host, port = addr.rsplit(":", 1)
        ws = socket.create_connection((host, int(port)), timeout=5)
        ws.sendall((f"GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        check(b" 101 " in ws.recv(4096), "a WebSocket is open")
        server.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        status = http_status(addr, "/readyz")
        while status != 503 and time.monotonic() < deadline:
            time.sleep(0.02)
            status = http_status(addr, "/readyz")
        check(status == 503, "SIGTERM: readinessProbe path /readyz answers 503 while draining", status)
        ws.close()
        limit = grace - pause
        try:
            code = server.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            code = None
        check(code == 0, f"SIGTERM: exit 0 within {limit} s (grace minus preStop)", code)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()
    print(f"check.py: {passed} checks passed", flush=True)


if __name__ == "__main__":
    main()
