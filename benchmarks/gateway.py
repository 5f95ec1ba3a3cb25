"""Gateway overhead: added latency and capacity, side by side with a direct call and LiteLLM.

    .venv/bin/python benchmarks/gateway.py [--seconds 10] [--skip-litellm]

One run starts, each in its own process on loopback: the replay upstream
(``distillguard upstream-replay``), the gateway in front of it (packaged policy,
exchange log on, scoring worker on), and an open-loop load generator (aiohttp):
requests leave on a fixed schedule whatever the answers do, and latency is
counted from each request's scheduled time, so a slow server cannot slow the
load down and hide its own queueing. Measured:

1. the upstream client, the gateway's own against aiohttp and httpx: CPU per
   request forwarding to the replay upstream; then CPU per request of the upstream
   (direct) and of the gateway and its scoring worker under a closed loop (4,000
   requests, 16 at a time, connections kept alive): the figure least moved by what
   else the machine runs;
2. direct to the upstream and through the gateway at 100 and 500 req/s:
   p50/p99 latency and the gateway's added latency (the difference), and CPU per
   request of the gateway, its scoring worker and (in the direct run) the upstream;
   then the higher rate again with the gateway and its scoring worker on one core and
   the upstream and load generator on the other (as deployed, where neither shares
   the gateway's CPU);
3. the highest rate the gateway sustains (p99 under 50 ms and 99% of the
   schedule met), on this machine's 2 cores shared by all processes;
4. the gateway with ``--state redis://`` and a limit on every account (one Lua
   call to Redis per request), at the higher rate;
5. LiteLLM's proxy (``litellm[proxy]`` installed into its own venv under
   /tmp, never the project's) to the same upstream at 50 and 500 req/s, and the
   ratio of its added latency to the gateway's.

The load generator's own CPU use and the machine's load average are printed with
every figure: the load generator is not the bottleneck when it stays well under a
core, and on a shared machine the load says how far to trust a latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LITELLM_VENV = Path("/tmp/dg-litellm-venv")
PROMPTS = 200
# The key the load generator sends; LiteLLM's proxy refuses to start without a master key.
BENCH_KEY = "sk-bench-" + "5f0c" * 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early: {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise SystemExit(f"server did not come up: {url}")


def prompts() -> list[str]:
    from distillguard.corpora import corpus_files, find_corpora_dir, iter_corpus

    files = corpus_files(find_corpora_dir())
    out = []
    for item in iter_corpus(files["dolly"]):
        out.append(item["prompt"])
        if len(out) >= PROMPTS:
            break
    return out


# --- load generator (runs in its own process: --loadgen) -------------------------------------

async def _load(url: str, rate: float, seconds: float, warmup: float, texts: list[str]
                ) -> dict[str, Any]:
    import aiohttp

    bodies = [json.dumps({"model": "model-b1", "messages": [{"role": "user", "content": t}]}
                         ).encode() for t in texts]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=2000)
    headers = {"authorization": f"Bearer {BENCH_KEY}", "content-type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(i: int, scheduled: float) -> None:
            try:
                async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors[str(r.status)] = errors.get(str(r.status), 0) + 1
                        return
            except aiohttp.ClientError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            if scheduled >= start + warmup:
                latencies.append(time.perf_counter() - scheduled)

        total = int(rate * (seconds + warmup))
        tasks = []
        cpu0 = time.process_time()
        start = time.perf_counter() + 0.2
        behind = 0.0
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                behind = max(behind, -delay)
            tasks.append(asyncio.ensure_future(one(i, scheduled)))
        sending = time.perf_counter() - start
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    latencies.sort()
    n = len(latencies)

    def pct(q: float) -> float:
        return latencies[min(n - 1, int(q * n))] * 1000 if n else float("nan")

    return {"rate": rate, "measured": n, "errors": errors, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "max_ms": latencies[-1] * 1000 if n else float("nan"),
            "achieved_rate": total / sending, "loadgen_cpu_share": cpu / elapsed,
            "max_schedule_lag_ms": behind * 1000}


def run_load(url: str, rate: float, seconds: float, warmup: float = 2.0) -> dict[str, Any]:
    out = subprocess.run([PYTHON, __file__, "--loadgen", url, "--rate", str(rate), "--seconds",
                          str(seconds), "--warmup", str(warmup)], capture_output=True, text=True,
                         check=False, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"load generator failed:\n{out.stderr}")
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load": load_average()}


# --- upstream client measurement -------------------------------------------------------------

CLIENT_CODE = """
import asyncio, json, sys, time
url, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = json.dumps({"model": "model-b1", "messages": [{"role": "user", "content": "hello"}]}).encode()
async def main():
    sem = asyncio.Semaphore(16)
    if kind == "aiohttp":
        import aiohttp
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        async def one():
            async with sem, session.post(url, data=body) as r:
                await r.read()
    elif kind == "gateway":
        from distillguard.gateway.upstream import UpstreamClient
        base, path = url.split("/v1/", 1)
        session = UpstreamClient(base, max_connections=64)
        await session.start()
        async def one():
            async with sem:
                r = await session.post("/v1/" + path, body, api="openai", client_headers={},
                                       credential=("authorization", "Bearer x"))
                await r.read()
    else:
        import httpx
        session = httpx.AsyncClient(limits=httpx.Limits(max_connections=64))
        async def one():
            async with sem:
                r = await session.post(url, content=body)
                await r.aread()
    for _ in range(200):
        await one()
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    await (session.aclose() if kind == "httpx" else session.close())
    print(json.dumps({"cpu_us_per_request": cpu / n * 1e6, "requests_per_s": n / wall}))
import uvloop
uvloop.run(main())
"""


def measure_clients(upstream: str, n: int = 3000) -> dict[str, dict[str, float]]:
    out = {}
    for kind in ("gateway", "aiohttp", "httpx"):
        proc = subprocess.run([PYTHON, "-c", CLIENT_CODE, upstream + "/v1/chat/completions",
                               kind, str(n)], capture_output=True, text=True, check=True)
        out[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def closed_loop_cpu(url: str, proc: subprocess.Popen, n: int = 4000) -> dict[str, float]:
    """CPU per request (µs) of the server ``proc`` and of its children (the scoring worker)
    while the aiohttp client sends ``n`` requests 16 at a time to ``url`` (after 200 to warm
    up, counted too: the server does them)."""
    before = cpu_seconds(proc.pid)
    out = subprocess.run([PYTHON, "-c", CLIENT_CODE, url + "/v1/chat/completions", "aiohttp",
                          str(n)], capture_output=True, text=True, check=True)
    after = cpu_seconds(proc.pid)
    served = n + 200
    return {"server": (after[0] - before[0]) / served * 1e6,
            "children": (after[1] - before[1]) / served * 1e6,
            "requests_per_s": json.loads(out.stdout.strip().splitlines()[-1])["requests_per_s"]}


# --- servers ---------------------------------------------------------------------------------

def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=ROOT, env={**os.environ, **(env or {})})


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def litellm_proxy(upstream: str, port: int, workdir: Path) -> subprocess.Popen | None:
    """LiteLLM's proxy in its own venv (created once under /tmp) routing to ``upstream``."""
    litellm = LITELLM_VENV / "bin" / "litellm"
    if not litellm.exists():
        print("  installing litellm[proxy] into", LITELLM_VENV, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        done = subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "--quiet",
                               "litellm[proxy]"], check=False)
        if done.returncode != 0 or not litellm.exists():
            print("  litellm could not be installed: skipped", flush=True)
            return None
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n  - model_name: model-b1\n    litellm_params:\n"
        f"      model: openai/model-b1\n      api_base: {upstream}/v1\n      api_key: x\n"
        "litellm_settings:\n  drop_params: true\n  telemetry: false\n")
    return start([str(litellm), "--config", str(config), "--port", str(port), "--num_workers",
                  "1"], env={"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
                             "LITELLM_MASTER_KEY": BENCH_KEY})


def added_histogram(admin: str) -> dict[float, float]:
    """The gateway's own added-latency histogram (cumulative counts by upper bound, s), from
    ``/metrics`` on its admin port."""
    import urllib.request

    with urllib.request.urlopen(admin + "/metrics", timeout=5) as r:
        text = r.read().decode()
    prefix = 'distillguard_gateway_added_latency_seconds_bucket{api="openai",le="'
    out = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            bound, count = line[len(prefix):].split('"} ')
            out[float(bound)] = float(count)
    return out


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds used so far by process ``pid`` and by its children (the scoring worker)."""
    import psutil

    proc = psutil.Process(pid)
    own = sum(proc.cpu_times()[:2])
    children = sum(sum(c.cpu_times()[:2]) for c in proc.children(recursive=True))
    return own, children


def load_average() -> str:
    """The machine's 1-minute load average, printed with every figure (2 cores here)."""
    return f"load {os.getloadavg()[0]:.1f}"


def direct_and_gateway(rate: float, seconds: float, upstream_proc: subprocess.Popen,
                       gateway_proc: subprocess.Popen, upstream: str, gateway: str
                       ) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """The same load direct to the upstream and through the gateway, one after the other,
    and the CPU per request meanwhile: of the upstream (a plain uvicorn app: the direct
    run's reference), of the gateway process and of its scoring worker."""
    n = rate * (seconds + 2)
    up0 = cpu_seconds(upstream_proc.pid)[0]
    direct = run_load(upstream + "/v1/chat/completions", rate, seconds)
    up1 = cpu_seconds(upstream_proc.pid)[0]
    gw0 = cpu_seconds(gateway_proc.pid)
    through = run_load(gateway + "/v1/chat/completions", rate, seconds)
    gw1 = cpu_seconds(gateway_proc.pid)
    return direct, through, {"upstream": (up1 - up0) / n * 1e6,
                             "gateway": (gw1[0] - gw0[0]) / n * 1e6,
                             "worker": (gw1[1] - gw0[1]) / n * 1e6}


def cpu_line(cpu: dict[str, float]) -> str:
    return (f"gateway process {cpu['gateway']:.0f} us (bar <= 500 us), its scoring worker "
            f"{cpu['worker']:.0f} us; the upstream (a plain uvicorn app) {cpu['upstream']:.0f} us "
            f"in the direct run; {load_average()}")


def histogram_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """Upper bound (ms) of the bucket holding quantile ``q`` of the requests in between."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0
    for bound, count in zip(bounds, counts, strict=True):
        if total and count >= q * total:
            return bound * 1000
    return float("nan")


def redis_gateway(dg: str, upstream: str, work: Path, procs: list[subprocess.Popen]) -> str:
    """A second gateway with shared state in a redis-server of its own (Debian's, installed
    when missing) and limits on every account, so every request makes the limiter's Lua call."""
    binary = shutil.which("redis-server")
    if binary is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "redis-server"], check=True,
                       capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        binary = shutil.which("redis-server") or "redis-server"
    redis_port, port = free_port(), free_port()
    procs.append(start([binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--dir", str(work)]))
    time.sleep(0.5)
    config = work / "limits.yaml"
    config.write_text("limits:\n  account: {requests_per_minute: 1000000, "
                      "tokens_per_minute: 1000000000}\n  org: null\n")
    procs.append(start([dg, "gateway", "--upstream", upstream, "--port", str(port),
                        "--admin-port", "0", "--config", str(config),
                        "--state", f"redis://127.0.0.1:{redis_port}/0"]))
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", procs[-1])
    return url


# --- the run ---------------------------------------------------------------------------------

def fmt(r: dict[str, Any]) -> str:
    errs = f", errors {r['errors']}" if r["errors"] else ""
    return (f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms, "
            f"sent {r['achieved_rate']:.0f}/s, loadgen CPU {r['loadgen_cpu_share']:.0%}{errs}, "
            f"{r['load']}")


def sustained(r: dict[str, Any]) -> bool:
    return (not r["errors"] and r["p99_ms"] < 50 and r["achieved_rate"] >= 0.99 * r["rate"]
            and r["max_schedule_lag_ms"] < 50)


def _pin(proc: subprocess.Popen | int, cores: set[int]) -> None:
    """Pin a process and all its children (the gateway's scoring worker) to ``cores``."""
    import psutil

    root = psutil.Process(proc if isinstance(proc, int) else proc.pid)
    for p in [root, *root.children(recursive=True)]:
        p.cpu_affinity(sorted(cores))


def separate_cores(upstream_proc: subprocess.Popen, gateway_proc: subprocess.Popen,
                   upstream: str, gateway: str, rate: float, seconds: float) -> None:
    """Direct and through the gateway again, with the gateway (and its scoring worker) on
    core 1 and everything else (upstream, load generator) on core 0: as deployed, where
    the client and the model server do not share the gateway's CPU. Two repetitions."""
    everything = set(range(os.cpu_count() or 1))
    _pin(os.getpid(), {0})
    _pin(upstream_proc, {0})
    _pin(gateway_proc, {1})
    try:
        for rep in (1, 2):
            d = run_load(upstream + "/v1/chat/completions", rate, seconds)
            g = run_load(gateway + "/v1/chat/completions", rate, seconds)
            print(f"{rate:5.0f} req/s, gateway on a core of its own (run {rep}): direct p50 "
                  f"{d['p50_ms']:.2f} / p99 {d['p99_ms']:.2f} ms, gateway p50 {g['p50_ms']:.2f} / "
                  f"p99 {g['p99_ms']:.2f} ms; added p50 {g['p50_ms'] - d['p50_ms']:+.2f} ms, "
                  f"p99 {g['p99_ms'] - d['p99_ms']:+.2f} ms; {load_average()}", flush=True)
    finally:
        for proc in (os.getpid(), upstream_proc, gateway_proc):
            _pin(proc, everything)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="100,500")
    parser.add_argument("--max-rates", default="700,900,1100,1300,1500")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--skip-redis", action="store_true")
    parser.add_argument("--skip-pinned", action="store_true")
    parser.add_argument("--skip-clients", action="store_true")
    parser.add_argument("--loadgen")
    parser.add_argument("--rate", type=float)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    if args.loadgen:
        import uvloop

        print(json.dumps(uvloop.run(_load(args.loadgen, args.rate, args.seconds, args.warmup,
                                          prompts()))))
        return
    rates = [float(r) for r in args.rates.split(",")]
    dg = shutil.which("distillguard", path=str(Path(PYTHON).parent)) or "distillguard"
    up_port, gw_port, admin_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    gateway = f"http://127.0.0.1:{gw_port}"
    admin = f"http://127.0.0.1:{admin_port}"
    print(f"gateway benchmark on {os.cpu_count()} cores, {args.seconds:g} s per point "
          f"(+2 s warm-up), OpenAI chat completions, non-streamed", flush=True)
    with tempfile.TemporaryDirectory(prefix="dg-bench-") as tmp:
        work = Path(tmp)
        procs = [start([dg, "upstream-replay", "--port", str(up_port)])]
        try:
            wait_http(upstream + "/v1/models", procs[0])
            clients = {} if args.skip_clients else measure_clients(upstream)
            if clients:
                print("upstream client, 3000 requests at concurrency 16 to the replay upstream: "
                      + "; ".join(f"{k} {v['cpu_us_per_request']:.0f} us CPU/request, "
                                  f"{v['requests_per_s']:.0f} req/s" for k, v in clients.items()),
                      flush=True)
            procs.append(start([dg, "gateway", "--upstream", upstream, "--port", str(gw_port),
                                "--admin-port", str(admin_port), "--log-dir",
                                str(work / "log")]))
            wait_http(gateway + "/healthz", procs[1])
            direct_cpu = closed_loop_cpu(upstream, procs[0])
            gateway_cpu = closed_loop_cpu(gateway, procs[1])
            print(f"CPU per request, closed loop (16 at a time, kept alive): the upstream direct "
                  f"{direct_cpu['server']:.0f} us ({direct_cpu['requests_per_s']:.0f} req/s); "
                  f"the gateway process {gateway_cpu['server']:.0f} us (bar <= 500 us), its "
                  f"scoring worker {gateway_cpu['children']:.0f} us "
                  f"({gateway_cpu['requests_per_s']:.0f} req/s); {load_average()}", flush=True)
            results: dict[str, dict[float, dict[str, Any]]] = {"direct": {}, "gateway": {}}
            for rate in rates:
                before = added_histogram(admin)
                d, g, cpu = direct_and_gateway(rate, args.seconds, procs[0], procs[1], upstream,
                                               gateway)
                results["direct"][rate], results["gateway"][rate] = d, g
                after = added_histogram(admin)
                print(f"{rate:5.0f} req/s direct  : {fmt(d)}", flush=True)
                print(f"{rate:5.0f} req/s gateway : {fmt(g)}", flush=True)
                print(f"{rate:5.0f} req/s CPU per request: {cpu_line(cpu)}", flush=True)
                print(f"{rate:5.0f} req/s added by the gateway: p50 "
                      f"{g['p50_ms'] - d['p50_ms']:+.2f} ms, p99 {g['p99_ms'] - d['p99_ms']:+.2f} ms"
                      f" (bar at 500 req/s: p99 <= 2 ms); the gateway's own histogram: p50 <= "
                      f"{histogram_quantile(before, after, 0.5):g} ms, p99 <= "
                      f"{histogram_quantile(before, after, 0.99):g} ms", flush=True)
            if (os.cpu_count() or 1) >= 2 and not args.skip_pinned:
                separate_cores(procs[0], procs[1], upstream, gateway, rates[-1], args.seconds)
            if not args.skip_redis:
                shared = redis_gateway(dg, upstream, work, procs)
                rate = rates[-1]
                d, r, cpu = direct_and_gateway(rate, args.seconds, procs[0], procs[-1], upstream,
                                               shared)
                print(f"{rate:5.0f} req/s direct  : {fmt(d)}", flush=True)
                print(f"{rate:5.0f} req/s gateway with Redis state and limits: {fmt(r)}",
                      flush=True)
                print(f"{rate:5.0f} req/s CPU per request with Redis: {cpu_line(cpu)}",
                      flush=True)
                print(f"{rate:5.0f} req/s added with Redis state and limits: p50 "
                      f"{r['p50_ms'] - d['p50_ms']:+.2f} ms, p99 {r['p99_ms'] - d['p99_ms']:+.2f}"
                      f" ms (bar: p99 <= 3 ms)", flush=True)
                for proc in procs[-2:]:
                    stop(proc)
            best = None
            for rate in (float(r) for r in args.max_rates.split(",") if r):
                r = run_load(gateway + "/v1/chat/completions", rate, args.seconds / 2)
                ok = sustained(r)
                print(f"{rate:5.0f} req/s gateway : {fmt(r)} -> "
                      f"{'sustained' if ok else 'not sustained'}", flush=True)
                if not ok:
                    break
                best = rate
            print(f"max sustained through the gateway: {best or 'below the first step'} req/s "
                  f"(p99 < 50 ms, 99% of schedule, no errors; all processes share the cores)",
                  flush=True)
            if not args.skip_litellm:
                lp = free_port()
                proxy = litellm_proxy(upstream, lp, work)
                if proxy is not None:
                    procs.append(proxy)
                    wait_http(f"http://127.0.0.1:{lp}/health/liveliness", proxy, timeout=180)
                    for rate in (50.0, *rates[-1:]):
                        d = results["direct"].get(rate) or run_load(
                            upstream + "/v1/chat/completions", rate, args.seconds)
                        g = results["gateway"].get(rate) or run_load(
                            gateway + "/v1/chat/completions", rate, args.seconds)
                        lite = run_load(f"http://127.0.0.1:{lp}/v1/chat/completions", rate,
                                        args.seconds)
                        print(f"{rate:5.0f} req/s litellm : {fmt(lite)}", flush=True)
                        ours = (g["p50_ms"] - d["p50_ms"], g["p99_ms"] - d["p99_ms"])
                        theirs = (lite["p50_ms"] - d["p50_ms"], lite["p99_ms"] - d["p99_ms"])
                        print(f"{rate:5.0f} req/s added: gateway p50 {ours[0]:+.2f} / p99 "
                              f"{ours[1]:+.2f} ms; litellm p50 {theirs[0]:+.2f} / p99 "
                              f"{theirs[1]:+.2f} ms; ratio litellm/gateway p50 "
                              f"{theirs[0] / max(ours[0], 0.01):.0f}x, p99 "
                              f"{theirs[1] / max(ours[1], 0.01):.0f}x", flush=True)
        finally:
            for proc in reversed(procs):
                stop(proc)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"(benchmark children CPU: {usage.ru_utime + usage.ru_stime:.0f} s)")


if __name__ == "__main__":
    main()
