"""Closed-loop load test of a `modrl serve` endpoint on loopback (standard library only).

C clients each send requests back to back (keep-alive) until the level has sent --requests requests
or run --seconds, whichever comes first. Prints one JSON line per level: requests, req/s, latency
p50/p90/p99/max (ms) of successful requests, and the status-code counts. With --raw FILE it also
appends every request (level label, start time in the level, latency, status) and one row per level
(wall time, load average before and after) to FILE, from which scripts/results_lib.load_test_lines
rebuilds the page's table.

  python bench/load_test.py --url http://127.0.0.1:8090 --route /v1/moderations \
      --texts runs/data/davidson-hate.jsonl --clients 1 8 32 --requests 200 --seconds 60
"""
import argparse
import http.client
import json
import random
import statistics
import threading
import time
import urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--route", default="/v1/moderations")
ap.add_argument("--texts", required=True, help="JSONL with a text field")
ap.add_argument("--population", type=int, default=5000,
                help="clients draw from the first N texts (bench/load_flops.py must see the same N)")
ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
ap.add_argument("--requests", type=int, default=200, help="most requests per level")
ap.add_argument("--seconds", type=float, default=60.0, help="longest time per level")
ap.add_argument("--model", default=None)
ap.add_argument("--key", default=None)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--raw", default=None, help="append one JSON row per request and per level here")
ap.add_argument("--label", default=None, help="level label in --raw rows (default: the client count)")
a = ap.parse_args()

texts = [json.loads(l)["text"] for l in open(a.texts)][:a.population]
u = urllib.parse.urlparse(a.url)


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def level(c):
    lock = threading.Lock()
    sent = [0]
    lat, codes, reqs = [], {}, []
    rng = random.Random(a.seed + c)
    deadline = time.perf_counter() + a.seconds

    def worker():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
        while True:
            with lock:
                if sent[0] >= a.requests or time.perf_counter() > deadline:
                    break
                sent[0] += 1
                text = rng.choice(texts)
            body = {"input": text}
            if a.model:
                body["model"] = a.model
            headers = {"Content-Type": "application/json"}
            if a.key:
                headers["Authorization"] = f"Bearer {a.key}"
            t0 = time.perf_counter()
            try:
                conn.request("POST", a.route, json.dumps(body), headers)
                r = conn.getresponse()
                r.read()
                code = r.status
            except Exception as e:  # connection reset etc.: count it, reconnect
                code = f"error:{type(e).__name__}"
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
            dt = time.perf_counter() - t0
            with lock:
                codes[str(code)] = codes.get(str(code), 0) + 1
                reqs.append((t0 - start, dt, str(code)))
                if code == 200:
                    lat.append(dt)
        conn.close()

    load0 = loadavg()
    t0 = start = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(c)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    ok = codes.get("200", 0)
    if a.raw:
        label = a.label or str(c)
        with open(a.raw, "a") as f:
            f.write(json.dumps({"kind": "level", "label": label, "clients": c, "wall_s": round(wall, 4),
                                "load_before": load0, "load_after": loadavg()}) + "\n")
            for t, d, code in sorted(reqs):
                f.write(json.dumps({"kind": "request", "label": label, "start_s": round(t, 4),
                                    "latency_ms": round(1000 * d, 2), "code": code}) + "\n")
    ms = lambda x: None if x is None else round(1000 * x, 1)
    return {
        "clients": c,
        "requests": sum(codes.values()),
        "wall_s": round(wall, 2),
        "ok_per_s": round(ok / wall, 2),
        "p50_ms": ms(pct(lat, 0.5)),
        "p90_ms": ms(pct(lat, 0.9)),
        "p99_ms": ms(pct(lat, 0.99)),
        "max_ms": ms(max(lat) if lat else None),
        "mean_ms": ms(statistics.mean(lat) if lat else None),
        "codes": codes,
    }


for c in a.clients:
    print(json.dumps(level(c)), flush=True)
