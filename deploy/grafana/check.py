"""Checks deploy/grafana/ringcast.json against a running ringcast (run by
deploy/grafana/test.sh).

`check.py BINARY DASHBOARD`: starts BINARY (`ringcast serve --listen
127.0.0.1:0`), scrapes its /metrics and stops it with SIGTERM; then loads
DASHBOARD and checks:

- the layout Grafana 10+ imports: schemaVersion, a Prometheus datasource
  variable that every panel and query uses, unique panel ids, no two panels
  overlapping on the grid;
- every metric name in every PromQL expression (panel queries and template
  variables) is a metric family the server exports. The expression is
  tokenised as PromQL: string literals, `{...}` label matchers, `[...]`
  ranges and Grafana `$variables` are skipped; function and aggregation
  names, keywords and the label lists of `by`/`without`/`on`/`ignoring`/
  `group_left`/`group_right` are not metric names; `_bucket`, `_sum` and
  `_count` name a histogram's family (`_sum`/`_count` a summary's too);
- every label name used in a matcher or a grouping is one the scrape shows,
  `le` of a histogram, or one Prometheus adds (`instance`, `job`).

Then the checker checks itself: copies of the dashboard with a made-up
metric, a counter read as a histogram and a misspelt label must each fail.

One line per check; the first failure exits 1.
"""

import copy
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request

# PromQL's functions (Prometheus 2.x and 3.x); a name followed by `(` that is
# one of these is not a metric.
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan",
    "atanh", "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "cos", "cosh", "count_over_time", "day_of_month", "day_of_week", "day_of_year",
    "days_in_month", "deg", "delta", "deriv", "double_exponential_smoothing", "exp",
    "floor", "histogram_avg", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_stddev", "histogram_stdvar", "histogram_sum",
    "holt_winters", "hour", "idelta", "increase", "info", "irate", "label_join",
    "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time",
    "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
    "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round",
    "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc",
    "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time",
    "tan", "tanh", "time", "timestamp", "vector", "year",
}
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
# Followed by a parenthesised list of label names.
GROUPINGS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"instance", "job"}

IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
LABEL_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*")

passed = 0


class Bad(Exception):
    """A dashboard fault (the self-test expects some)."""


def ok(what):
    global passed
    passed += 1
    print(f"ok: {what}", flush=True)


def fail(what):
    print(f"FAIL: {what}", flush=True)
    sys.exit(1)


def skip_string(text, i):
    """Index after the string literal opening at text[i]."""
    quote = text[i]
    i += 1
    while i < len(text):
        if text[i] == "\\" and quote != "`":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    raise Bad(f"unterminated string in {text!r}")


def read_string(text, i):
    """(value, index after) of the string literal at text[i]."""
    end = skip_string(text, i)
    return text[i + 1:end - 1], end


def parse_promql(expr):
    """(metric names, label names) used by a PromQL expression."""
    metrics, labels = [], []
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c.isspace() or c in "()+-*/%^,<>!=@":
            i += 1
        elif c in "\"'`":
            i = skip_string(expr, i)
        elif c == "[":
            end = expr.find("]", i)
            if end < 0:
                raise Bad(f"unclosed [ in {expr!r}")
            i = end + 1
        elif c == "{":
            i = parse_matchers(expr, i + 1, metrics, labels)
        elif c == "$":
            # A Grafana variable: $name, ${name} or ${name:format}.
            if expr.startswith("${", i):
                end = expr.find("}", i)
                if end < 0:
                    raise Bad(f"unclosed ${{ in {expr!r}")
                i = end + 1
            else:
                m = IDENT.match(expr, i + 1)
                i = m.end() if m else i + 1
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            # Numbers and durations (5m, 1h30m, 0x1f, 1e3).
            m = re.compile(r"[0-9A-Za-z_.]+").match(expr, i)
            i = m.end()
        else:
            m = IDENT.match(expr, i)
            if not m:
                raise Bad(f"unexpected {c!r} at {i} in {expr!r}")
            word = m.group(0)
            i = m.end()
            j = i
            while j < n and expr[j].isspace():
                j += 1
            call = j < n and expr[j] == "("
            if word.lower() in GROUPINGS and call:
                end = expr.find(")", j)
                if end < 0:
                    raise Bad(f"unclosed label list in {expr!r}")
                labels += [w for w in re.split(r"[\s,]+", expr[j + 1:end]) if w]
                i = end + 1
            elif call and (word in FUNCTIONS or word in AGGREGATIONS):
                i = j
            elif word.lower() in KEYWORDS or word in AGGREGATIONS:
                pass
            else:
                metrics.append(word)
    return metrics, labels


def parse_matchers(expr, i, metrics, labels):
    """Reads `name op "value", ...}` from expr[i:]; returns the index after `}`."""
    while True:
        while i < len(expr) and expr[i] in " \t\n,":
            i += 1
        if i < len(expr) and expr[i] == "}":
            return i + 1
        m = LABEL_MATCHER.match(expr, i)
        if not m or m.end() >= len(expr) or expr[m.end()] not in "\"'`":
            raise Bad(f"bad label matcher at {i} in {expr!r}")
        value, i = read_string(expr, m.end())
        if m.group(1) == "__name__":
            if m.group(2) != "=":
                raise Bad(f"__name__ matched by a pattern in {expr!r}: cannot check it")
            metrics.append(value)
        else:
            labels.append(m.group(1))


def start_and_scrape(binary):
    """The /metrics text of a fresh `ringcast serve` on a loopback port."""
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 30
        addr = None
        while addr is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.match(r"ringcast listening on (\S+)", line)
            if m:
                addr = m.group(1)
        if addr is None:
            fail(f"{binary} serve did not print 'ringcast listening on ADDR'")
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        ok(f"scraped http://{addr}/metrics ({len(text.splitlines())} lines)")
        return text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def parse_exposition(text):
    """({family: type}, {label names}) of a Prometheus text exposition."""
    families, labels = {}, set()
    lines = text.splitlines()
    for line in lines:
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            families[name] = kind
    for line in lines:
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s", line)
        if not m:
            fail(f"unparsable sample line in /metrics: {line!r}")
        if m.group(2):
            labels |= set(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="', m.group(2)))
        if family_of(m.group(1), families) is None:
            families[m.group(1)] = "untyped"
    return families, labels


def family_of(name, families):
    """The exported family a metric name in a query reads, or None."""
    if name in families:
        return name
    for suffix, kinds in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                          ("_count", ("histogram", "summary"))):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and families.get(base) in kinds:
            return base
    return None


def queries(dash):
    """(where, PromQL expression) of every panel target and template variable."""
    out = []
    for panel in all_panels(dash):
        for t in panel.get("targets", []):
            out.append((f"panel {panel.get('id')} {panel.get('title')!r} {t.get('refId')}",
                        t.get("expr", "")))
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        q = var.get("query")
        q = q.get("query", "") if isinstance(q, dict) else q or ""
        m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", q)
        if m:
            # label_values(expr, label): the expression plus a label it reads.
            q = f"{m.group(1)} by ({m.group(2)})" if m.group(1).strip() else ""
        out.append((f"variable ${var.get('name')}", q))
    return out


def all_panels(dash):
    for panel in dash.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def check_layout(dash):
    """Raises Bad unless Grafana 10+ imports the dashboard as intended."""
    if dash.get("schemaVersion", 0) < 38:
        raise Bad(f"schemaVersion {dash.get('schemaVersion')} is older than Grafana 10's (38)")
    variables = dash.get("templating", {}).get("list", [])
    ds = [v for v in variables if v.get("type") == "datasource" and v.get("query") == "prometheus"]
    if len(ds) != 1:
        raise Bad("no Prometheus datasource variable")
    uid = "${" + ds[0]["name"] + "}"
    ids, cells = set(), {}
    for panel in all_panels(dash):
        pid = panel.get("id")
        if pid in ids:
            raise Bad(f"panel id {pid} used twice")
        ids.add(pid)
        if panel.get("type") == "row":
            continue
        if panel.get("datasource", {}).get("uid") != uid:
            raise Bad(f"panel {pid} does not use the datasource variable {uid}")
        targets = panel.get("targets", [])
        if not targets or any(not t.get("expr") for t in targets):
            raise Bad(f"panel {pid} has a query without an expression")
        if any(t.get("datasource", {}).get("uid") != uid for t in targets):
            raise Bad(f"a query of panel {pid} does not use {uid}")
        g = panel.get("gridPos", {})
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    raise Bad(f"panels {cells[(x, y)]} and {pid} overlap")
                cells[(x, y)] = pid
        if g["x"] + g["w"] > 24:
            raise Bad(f"panel {pid} is wider than the grid")
    return len(ids)


def check_names(dash, families, labels):
    """Raises Bad unless every metric and label the queries use is exported;
    returns the metric families used."""
    used = set()
    histograms = {f for f, k in families.items() if k == "histogram"}
    for where, expr in queries(dash):
        metrics, used_labels = parse_promql(expr)
        if not metrics:
            raise Bad(f"{where}: no metric in {expr!r}")
        for name in metrics:
            family = family_of(name, families)
            if family is None:
                raise Bad(f"{where}: {name} is not exported by ringcast")
            used.add(family)
        reads_histogram = any(family_of(m, families) in histograms for m in metrics)
        for label in used_labels:
            if label in labels or label in TARGET_LABELS or (label == "le" and reads_histogram):
                continue
            raise Bad(f"{where}: label {label!r} is on no exported series")
    return used


def main():
    binary, path = sys.argv[1:3]
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    ok(f"{path} is JSON")
    families, labels = parse_exposition(start_and_scrape(binary))
    ok(f"/metrics exports {len(families)} families, labels {sorted(labels)}")
    try:
        n = check_layout(dash)
        ok(f"layout: schemaVersion {dash['schemaVersion']}, {n} panels, datasource variable, no overlap")
        used = check_names(dash, families, labels)
    except Bad as e:
        fail(str(e))
    ok(f"{len(queries(dash))} queries use {len(used)} metric families, every one exported")
    unused = sorted(set(families) - used)
    if unused:
        print(f"note: exported but on no panel: {', '.join(unused)}")

    # The checker must catch what it is for.
    def mutated(change):
        d = copy.deepcopy(dash)
        target = next(p for p in all_panels(d) if p.get("targets"))["targets"][0]
        target["expr"] = change(target["expr"])
        return d

    cases = [
        ("a made-up metric", lambda e: e + " + ringcast_bogus_total"),
        ("a counter read as a histogram",
         lambda e: e + " + ringcast_connections_opened_total_bucket"),
        ("a made-up metric inside a function",
         lambda e: 'histogram_quantile(0.99, sum by (le) (rate(ringcast_bogus_seconds_bucket{worker="0"}[5m])))'),
        ("a misspelt label", lambda e: f"sum by (wroker) ({e})"),
        ("a metric named by __name__", lambda e: e + ' + {__name__="ringcast_bogus"}'),
    ]
    for what, change in cases:
        try:
            check_names(mutated(change), families, labels)
        except Bad as e:
            ok(f"self-test: {what} is caught ({e})")
            continue
        fail(f"self-test: {what} was not caught")


if __name__ == "__main__":
    main()
