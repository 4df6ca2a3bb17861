#!/usr/bin/env python3
"""Render anchorage's /metrics as one SVG laid out like docs/monitoring/grafana-dashboard.json.

Standard library only. Scrapes one or more nodes repeatedly (Prometheus text format), then draws
the dashboard's panels from the samples: counters as per-second rates between consecutive scrapes
(resets handled), histogram quantiles from bucket deltas (interpolated as histogram_quantile does),
gauges as they are, leader-only gauges with max() over nodes. No Prometheus or Grafana needed.

    scripts/render-dashboard.py --url http://127.0.0.1:8081/metrics --url http://127.0.0.1:8082/metrics \\
        --seconds 60 --interval 2 --save /tmp/capture.jsonl --out docs/monitoring/dashboard.svg
    scripts/render-dashboard.py --from-file /tmp/capture.jsonl --out docs/monitoring/dashboard.svg

A capture (--save, --from-file) is JSON lines, one scrape each: {"t": unix_seconds, "url": ...,
"text": ...} ("text" is "" and "error" set when a scrape failed). The n-th scrape of every URL
forms round n; a round's time is the mean of its scrapes' times. The instance of a URL is its
host:port. The /metrics endpoint only answers allowed addresses (metrics.allowCIDRs, loopback by
default): run this on the node or from an allowed host.
"""
import argparse
import json
import math
import sys
import time
import urllib.parse
import urllib.request
from xml.sax.saxutils import escape

# ---------------------------------------------------------------- parsing the text format

ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def parse_labels(s, i):
    """Parses `{a="x",b="y\\"z"}` from s[i] == '{'; returns (labels tuple, index after '}')."""
    labels, i = [], i + 1
    while True:
        while i < len(s) and s[i] in " ,":
            i += 1
        if s[i] == "}":
            return tuple(sorted(labels)), i + 1
        eq = s.index("=", i)
        name = s[i:eq].strip()
        i = s.index('"', eq) + 1
        value = []
        while s[i] != '"':
            if s[i] == "\\":
                value.append(ESCAPES.get(s[i + 1], "\\" + s[i + 1]))
                i += 2
            else:
                value.append(s[i])
                i += 1
        labels.append((name, "".join(value)))
        i += 1


def parse(text):
    """Returns ({metric name: {labels tuple: value}}, {family: type}) from Prometheus text format."""
    samples, types = {}, {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip()
            continue  # HELP (its text may hold escapes), EOF, comments
        try:
            j = 0
            while j < len(line) and line[j] not in "{ \t":
                j += 1
            name, labels = line[:j], ()
            if j < len(line) and line[j] == "{":
                labels, j = parse_labels(line, j)
            value = float(line[j:].split()[0])  # float() takes +Inf, -Inf, NaN; a timestamp may follow
        except (ValueError, IndexError):
            print(f"skipping unparsable line: {raw!r}", file=sys.stderr)
            continue
        samples.setdefault(name, {})[labels] = value
    return samples, types


# ---------------------------------------------------------------- capture

def instance_of(url):
    return urllib.parse.urlsplit(url).netloc or url


def scrape_live(urls, seconds, interval, save):
    records, out = [], open(save, "w") if save else None
    start, n = time.time(), int(seconds // interval) + 1
    for k in range(n):
        time.sleep(max(0.0, start + k * interval - time.time()))
        for url in urls:
            rec = {"t": time.time(), "url": url, "text": ""}
            try:
                with urllib.request.urlopen(url, timeout=max(1.0, interval)) as r:
                    rec["text"] = r.read().decode("utf-8", "replace")
            except Exception as e:  # keep the round aligned; the render shows a gap
                rec["error"] = str(e)
                print(f"{url}: {e}", file=sys.stderr)
            records.append(rec)
            if out:
                out.write(json.dumps(rec) + "\n")
                out.flush()
    if out:
        out.close()
    return records


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def to_rounds(records):
    """[{instance: (t, samples)}] per round; round n = the n-th scrape of each URL."""
    per_url = {}
    for rec in records:
        per_url.setdefault(rec["url"], []).append(rec)
    rounds = []
    for url, recs in per_url.items():
        for n, rec in enumerate(recs):
            while len(rounds) <= n:
                rounds.append({})
            if rec.get("text"):
                rounds[n][instance_of(url)] = (rec["t"], parse(rec["text"])[0])
    return [r for r in rounds if r]


# ---------------------------------------------------------------- the panels' quantities

def vec(rounds, i, name, rate=False):
    """Instant vector at round i: [(labels dict incl. instance, value)]; rate=True: per-second
    increase since round i-1 (a decrease is a counter reset: the new value is the increase)."""
    out = []
    for inst, (t, s) in rounds[i].items():
        prev = rounds[i - 1].get(inst) if rate and i > 0 else None
        if rate and prev is None:
            continue
        for labels, v in s.get(name, {}).items():
            if rate:
                v0 = prev[1].get(name, {}).get(labels)
                if v0 is None or t <= prev[0]:
                    continue
                v = ((v - v0) if v >= v0 else v) / (t - prev[0])
            out.append((dict(labels, instance=inst), v))
    return out


def agg(vector, by, fn=sum):
    groups = {}
    for labels, v in vector:
        groups.setdefault(tuple(labels.get(b, "") for b in by), []).append(v)
    return {k: fn(vs) for k, vs in groups.items()}


def legend_of(by, key, fmt):
    return fmt.format(**dict(zip(by, key)))


def gauge(name, by, fmt, fn=sum):
    return lambda R, i: {legend_of(by, k, fmt): v for k, v in agg(vec(R, i, name), by, fn).items()}


def rate(name, by, fmt):
    return lambda R, i: {legend_of(by, k, fmt): v for k, v in agg(vec(R, i, name, True), by).items()}


def quantile(q, buckets):
    """histogram_quantile over {le: cumulative rate}."""
    bs = sorted((float(le), c) for le, c in buckets.items())
    if len(bs) < 2 or bs[-1][0] != math.inf or bs[-1][1] <= 0:
        return None
    rank, prev_le, prev_c = q * bs[-1][1], 0.0, 0.0
    for le, c in bs:
        if c >= rank:
            if le == math.inf:
                return bs[-2][0]
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, max(c, prev_c)
    return None


def hq(name, q, fmt):
    def f(R, i):
        b = {k[0]: v for k, v in agg(vec(R, i, name + "_bucket", True), ["le"]).items()}
        v = quantile(q, b)
        return {} if v is None else {fmt: v}
    return f


def hit_ratio(R, i):
    h = agg(vec(R, i, "anchorage_cache_hits_total", True), ["cache"])
    m = agg(vec(R, i, "anchorage_cache_misses_total", True), ["cache"])
    return {k[0]: h[k] / (h[k] + m.get(k, 0)) for k in h if h[k] + m.get(k, 0) > 0}


I = ["instance"]
ROWS = [  # title, unit, (y min, y max), queries: the same as grafana-dashboard.json
    ("HTTP", [
        ("HTTP request rate by status class", "/s", None, [rate("anchorage_http_requests_total", ["status_class"], "{status_class}")]),
        ("HTTP latency p50 / p99", "s", None, [hq("anchorage_http_request_duration_seconds", .5, "p50"),
                                               hq("anchorage_http_request_duration_seconds", .99, "p99")]),
        ("HTTP requests in flight", "", None, [gauge("anchorage_http_requests_in_flight", I, "{instance}")])]),
    ("Pins (leader)", [
        ("Pins by status", "", None, [gauge("anchorage_pins", ["status"], "{status}", max)]),
        ("Placements by state", "", None, [gauge("anchorage_placements", ["state"], "{state}", max)]),
        ("Under-replicated pins", "", None, [gauge("anchorage_pins_under_replicated", [], "under-replicated", max)])]),
    ("Scheduler", [
        ("Scheduler queue depth", "", None, [gauge("anchorage_scheduler_queue_depth", I, "{instance}")]),
        ("Attempts by outcome", "/s", None, [rate("anchorage_scheduler_attempts_total", ["outcome"], "{outcome}")]),
        ("Attempt latency p50 / p99", "s", None, [hq("anchorage_scheduler_attempt_duration_seconds", .5, "p50"),
                                                  hq("anchorage_scheduler_attempt_duration_seconds", .99, "p99")]),
        ("Failures by reason", "/s", None, [rate("anchorage_scheduler_failures_total", ["reason"], "{reason}")])]),
    ("Cluster", [
        ("Leader / fence", "", None, [gauge("anchorage_cluster_leader", I, "leader {instance}"),
                                      gauge("anchorage_cluster_leader_fence", [], "fence", max)]),
        ("Live / eligible nodes", "", (0, None), [gauge("anchorage_cluster_live_nodes", I, "live {instance}"),
                                                  gauge("anchorage_cluster_eligible_nodes", I, "eligible {instance}")]),
        ("Maintenance on / overdue", "", (0, 1), [gauge("anchorage_maintenance_on", [], "on", max),
                                                  gauge("anchorage_maintenance_overdue", [], "overdue", max)]),
        ("NATS connected", "", (0, 1), [gauge("anchorage_nats_connected", I, "{instance}")])]),
    ("Caches", [
        ("Cache hit ratio", "%", (0, 1), [hit_ratio]),
        ("Cache entries", "", None, [gauge("anchorage_cache_entries", ["cache", "instance"], "{cache} {instance}")]),
        ("Cache invalidations sent / received", "/s", None, [
            rate("anchorage_cache_invalidations_sent_total", ["cache"], "sent {cache}"),
            rate("anchorage_cache_invalidations_received_total", ["cache"], "received {cache}")])]),
]


def evaluate(rounds, queries):
    """{legend: [(round index, t, value)]} over all rounds."""
    series = {}
    for i, r in enumerate(rounds):
        t = sum(ts for ts, _ in r.values()) / len(r)
        for q in queries:
            for legend, v in q(rounds, i).items():
                if v is not None and math.isfinite(v):
                    series.setdefault(legend, []).append((i, t, v))
    return series


# ---------------------------------------------------------------- drawing

PALETTE = ["#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2", "#B877D9", "#37872D",
           "#FADE2A", "#C4162A", "#1F60C4", "#8F3BB8"]
BG, PANEL, BORDER, TEXT, DIM, GRID = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#8e8e8e", "#23262b"


def nice_step(span, n=4):
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def fmt(v, unit):
    if unit == "%":
        return f"{v * 100:.0f}%"
    if unit == "s" and 0 < abs(v) < 1:
        return f"{v * 1000:.3g} ms"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}{' ' + unit if unit else ''}"
    return f"{v:.3g}{' ' + unit if unit else ''}"


def draw_panel(out, x, y, w, h, title, unit, yrange, series, t0, t1):
    out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="3" fill="{PANEL}" stroke="{BORDER}"/>')
    out.append(f'<text x="{x + 10}" y="{y + 20}" fill="{TEXT}" font-size="13" font-weight="600">{escape(title)}</text>')
    names = sorted(series)
    # legend: as many lines as needed, at most 3
    lx, ly, legend, hidden = x + 10, 0, [], 0
    for n, name in enumerate(names):
        lw = 22 + 6.5 * len(name)
        if lx + lw > x + w - 10:
            lx, ly = x + 10, ly + 1
        if ly >= 3 or (ly == 2 and lx + lw > x + w - 70):  # room for "+N more"
            hidden = len(names) - n
            break
        legend.append((lx, ly, name, PALETTE[n % len(PALETTE)]))
        lx += lw + 8
    legend_h = (ly + 1) * 15 + 6 if names else 0
    px0, px1, py0, py1 = x + 60, x + w - 12, y + 32, y + h - 24 - legend_h
    values = [v for pts in series.values() for _, _, v in pts]
    lo = min(values + [0.0]) if values else 0.0
    hi = max(values) if values else 1.0
    if yrange:
        lo = yrange[0] if yrange[0] is not None else lo
        hi = max(hi, yrange[1]) if yrange[1] is not None else hi
    if hi <= lo:
        hi = lo + 1
    step = nice_step(hi - lo)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    sx = lambda t: px0 + (px1 - px0) * (t - t0) / ((t1 - t0) or 1)
    sy = lambda v: py1 - (py1 - py0) * (v - lo) / (hi - lo)
    v = lo
    while v <= hi + step / 2:
        yy = sy(v)
        out.append(f'<line x1="{px0}" y1="{yy:.1f}" x2="{px1}" y2="{yy:.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{px0 - 6}" y="{yy + 4:.1f}" fill="{DIM}" font-size="10" text-anchor="end">{escape(fmt(v, unit))}</text>')
        v += step
    for k in range(5):
        t = t0 + (t1 - t0) * k / 4
        anchor = ("start", "middle", "middle", "middle", "end")[k]
        out.append(f'<text x="{sx(t):.1f}" y="{py1 + 14}" fill="{DIM}" font-size="10" text-anchor="{anchor}">'
                   f'{time.strftime("%H:%M:%S", time.localtime(t))}</text>')
    out.append(f'<line x1="{px0}" y1="{py1}" x2="{px1}" y2="{py1}" stroke="{BORDER}"/>')
    if not values:
        out.append(f'<text x="{(px0 + px1) / 2}" y="{(py0 + py1) / 2}" fill="{DIM}" font-size="12" text-anchor="middle">No data</text>')
    for n, name in enumerate(names):
        color, seg, last = PALETTE[n % len(PALETTE)], [], None
        segments = []
        for i, t, val in series[name]:
            if last is not None and i != last + 1:
                segments.append(seg)
                seg = []
            seg.append(f"{sx(t):.1f},{sy(val):.1f}")
            last = i
        segments.append(seg)
        for s in segments:
            if len(s) == 1:
                cx, cy = s[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="1.5" fill="{color}"/>')
            elif s:
                out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(s)}"/>')
    base = py1 + 24
    for lx, ly, name, color in legend:
        yy = base + ly * 15
        out.append(f'<line x1="{lx}" y1="{yy - 4}" x2="{lx + 14}" y2="{yy - 4}" stroke="{color}" stroke-width="3"/>')
        out.append(f'<text x="{lx + 18}" y="{yy}" fill="{TEXT}" font-size="11">{escape(name)}</text>')
    if hidden:
        out.append(f'<text x="{x + w - 10}" y="{base + 2 * 15}" fill="{DIM}" font-size="11" text-anchor="end">+{hidden} more</text>')


def render(rounds, sources, silent=(), width=1600, panel_h=250):
    t0 = min(t for r in rounds for t, _ in r.values())
    t1 = max(t for r in rounds for t, _ in r.values())
    out, y = [], 56
    for row, panels in ROWS:
        out.append(f'<text x="12" y="{y + 18}" fill="{TEXT}" font-size="15" font-weight="600">{escape(row)}</text>')
        y += 28
        pw = (width - 8 * (len(panels) + 1)) / len(panels)
        for n, (title, unit, yrange, queries) in enumerate(panels):
            draw_panel(out, round(8 + n * (pw + 8), 1), y, round(pw, 1), panel_h, title, unit, yrange,
                       evaluate(rounds, queries), t0, t1)
        y += panel_h + 8
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0))
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + 8}" viewBox="0 0 {width} {y + 8}" '
            f'font-family="Inter, Helvetica, Arial, sans-serif">\n<rect width="100%" height="100%" fill="{BG}"/>\n'
            f'<text x="12" y="26" fill="{TEXT}" font-size="18" font-weight="600">anchorage</text>\n'
            f'<text x="12" y="46" fill="{DIM}" font-size="11">{escape(when)}, {t1 - t0:.0f} s, {len(rounds)} scrapes of '
            f'{escape(", ".join(sources))}{escape(" (never answered: " + ", ".join(silent) + ")") if silent else ""}'
            f' (scripts/render-dashboard.py)</text>')
    return head + "\n" + "\n".join(out) + "\n</svg>\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", action="append", default=[], help="a node's /metrics URL (repeat for several nodes)")
    ap.add_argument("--seconds", type=float, default=60, help="how long to scrape (default 60)")
    ap.add_argument("--interval", type=float, default=2, help="seconds between scrapes (default 2)")
    ap.add_argument("--save", help="also write the capture to this JSON-lines file")
    ap.add_argument("--from-file", help="render a capture written by --save instead of scraping")
    ap.add_argument("--out", required=True, help="the SVG to write")
    a = ap.parse_args()
    if bool(a.url) == bool(a.from_file):
        ap.error("give either --url (one or more) or --from-file")
    if a.interval <= 0 or a.seconds < a.interval:
        ap.error("need --interval > 0 and --seconds >= --interval")
    records = load(a.from_file) if a.from_file else scrape_live(a.url, a.seconds, a.interval, a.save)
    rounds = to_rounds(records)
    if len(rounds) < 2:
        sys.exit("fewer than two successful scrape rounds: nothing to draw")
    every = list(dict.fromkeys(instance_of(r["url"]) for r in records))
    sources = [s for s in every if any(s in r for r in rounds)]
    silent = [s for s in every if s not in sources]
    with open(a.out, "w") as f:
        f.write(render(rounds, sources, silent))
    print(f"wrote {a.out}: {len(rounds)} rounds from {len(sources)} node(s)"
          + (f"; never answered: {', '.join(silent)}" if silent else ""))


if __name__ == "__main__":
    main()
