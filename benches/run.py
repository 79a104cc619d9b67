#!/usr/bin/env python3
"""Benchmark of the Functions Framework for Rust against its peers, run by `make bench`.

Measures, interleaved and side by side in one run:

- throughput, CPU time per request and p50/p99 latency for `GET /` (an HTTP function
  answering OK) and `POST /` (a binary-mode CloudEvent with 1 KiB of JSON data), with wrk at
  32 connections, in short bursts that rotate over the peers for several rounds;
- cold start (process spawn to the first 200, median of several spawns);
- RSS idle and after load;
- deployed size.

Peers: this project's binary run directly, this project through `node` and the shim (the
official launcher, which loads the function before it listens, and the original worker,
which listens first), the Node.js Functions Framework, the Python Functions Framework
(gunicorn), a Node.js server proxying to a native subprocess, and a bare hyper server.

Everything goes over loopback. Servers and the load generator are pinned to different
cores when there are two or more. Every process started here is killed on exit, also on an
error or Ctrl-C. Results go to results/bench-<timestamp>/ (results.md, results.json,
chart.png, server logs).

Environment: BENCH_QUICK=1 (a short run), BENCH_ROUNDS, BENCH_BURST (seconds per burst),
BENCH_COLD_RUNS, BENCH_CONNECTIONS, BENCH_CACHE (where `make bench-tools` installed the
peers), BENCH_RELEASE_DIR (where the release binaries are, default target/release),
BENCH_RESULTS (output folder), BENCH_PEERS (comma-separated peer keys to run, for trying).
"""

from __future__ import annotations

import atexit
import base64
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
BENCHES = ROOT / "benches"
PEERS_DIR = BENCHES / "peers"
CACHE = Path(os.environ.get("BENCH_CACHE") or Path.home() / ".cache" / "functions-framework-rust" / "bench")
RELEASE = Path(os.environ.get("BENCH_RELEASE_DIR") or ROOT / "target" / "release")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ROUNDS = int(os.environ.get("BENCH_ROUNDS") or (2 if QUICK else 5))
BURST = int(os.environ.get("BENCH_BURST") or (1 if QUICK else 3))
WARMUP = BURST  # seconds of unrecorded load per server before the first round
COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS") or (3 if QUICK else 10))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS") or 32)
CE_SCRIPT = BENCHES / "cloudevent.lua"
NODE_FF_VERSION = "5.0.5"

BINARY = RELEASE / "test-functions"
HYPER = RELEASE / "hyper-hello"
SHIM = RELEASE / "libshim_node.so"
NODE_PEER = CACHE / "node-peer"
LAUNCHER = NODE_PEER / "node_modules" / "@google-cloud" / "functions-framework" / "build" / "src" / "main.js"
NODE_PEER_BIN = NODE_PEER / "node_modules" / ".bin" / "functions-framework"
# Functions Framework 3.5.1 installed as the cloud's build injects it (`make node-deps`).
INJECTED_FF = ROOT / "tests" / "node" / "injected-ff"
INJECTED_FF_BIN = INJECTED_FF / "node_modules" / ".bin" / "functions-framework"
VENV = CACHE / "venv"
PY_FF = VENV / "bin" / "functions-framework"
MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
READY_BODY = b"User function is ready"

# The targets of the issue.
TARGET_GET_CPU = 1.10  # x bare hyper
TARGET_CE_CPU = 1.25  # x bare hyper
TARGET_P99_MS = 1.0
TARGET_COLD_BINARY_MS = 10.0
TARGET_COLD_SHIM_EXTRA_MS = 10.0  # over the bare node execve floor
TARGET_COLD_DIRECT_EXTRA_MS = 5.0  # LAUNCHER=direct, over the binary alone
# The Node.js paths held to the `node -e` execve floor + TARGET_COLD_SHIM_EXTRA_MS.
SHIM_COLD_KEYS = ("shim-require", "launch-node", "shim-early")
TARGET_RSS_IDLE_MIB = 5.0
TARGET_RSS_LOAD_MIB = 10.0
TARGET_ZIP_MIB = 5.0
TARGET_H2C_GET_CPU = 1.15  # x bare hyper h2c
TARGET_LARGE_POST_CPU = 1.5  # x bare hyper reading the same body


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------
# Processes: every server runs in its own process group, killed as a group at the end.

_groups: dict[int, subprocess.Popen] = {}
_temp_dirs: list[Path] = []


class pinned:
    """Runs the block on `cores`: a process started inside inherits them. (Cheaper than a
    preexec_fn, which forces fork instead of vfork and adds a millisecond to a cold start.)"""

    def __init__(self, cores: Optional[set[int]]):
        self.cores = cores
        self.previous = None

    def __enter__(self):
        if self.cores:
            self.previous = os.sched_getaffinity(0)
            os.sched_setaffinity(0, self.cores)

    def __exit__(self, *_):
        if self.previous:
            os.sched_setaffinity(0, self.previous)


def spawn(cmd: list[str], *, cwd: Path, env: dict[str, str], logfile: Optional[Path], cores: Optional[set[int]]) -> subprocess.Popen:
    out = open(logfile, "ab") if logfile else subprocess.DEVNULL
    try:
        with pinned(cores):
            proc = subprocess.Popen(
                [str(c) for c in cmd],
                cwd=str(cwd),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as a tree
            )
    finally:
        if logfile:
            out.close()
    _groups[proc.pid] = proc
    return proc


def become_subreaper() -> None:
    """Orphans of a killed group (a proxy's subprocess, a gunicorn worker) are then ours to
    reap, instead of lingering as zombies under an init that may not reap them."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def kill(proc: subprocess.Popen) -> None:
    """Kills the process group that `proc` leads (a server and the processes it started)."""
    members = [pid for pid in group_members(proc.pid) if pid != proc.pid]
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    _groups.pop(proc.pid, None)
    deadline = time.monotonic() + 2
    while members and time.monotonic() < deadline:
        for pid in list(members):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    members.remove(pid)
            except ChildProcessError:
                # Not (yet) reparented to us; gone once its /proc entry is.
                if not os.path.exists(f"/proc/{pid}"):
                    members.remove(pid)
        if members:
            time.sleep(0.01)


def cleanup() -> None:
    for proc in list(_groups.values()):
        kill(proc)
    for path in _temp_dirs:
        shutil.rmtree(path, ignore_errors=True)
    _temp_dirs.clear()


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


atexit.register(cleanup)
for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                rest = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(rest[2]) == pgid:
            members.append(int(entry))
    return members


def tree_cpu_seconds(pgid: int) -> float:
    """utime+stime (and that of reaped children) of every process of the group."""
    ticks = 0
    for pid in group_members(pgid):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                rest = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(v) for v in rest[11:15])
    return ticks / CLK_TCK


def tree_rss_mib(pgid: int) -> float:
    kib = 0
    for pid in group_members(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        kib += int(line.split()[1])
        except OSError:
            continue
    return kib / 1024


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# One HTTP/1.1 request over a fresh loopback connection (readiness and cold start).

CE_HEADERS = {
    "Content-Type": "application/json",
    "ce-specversion": "1.0",
    "ce-id": "bench-0001",
    "ce-source": "//functions-framework-rust/bench",
    "ce-type": "dev.functions-framework-rust.bench.v1",
}


def raw_request(method: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} / HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if method != "GET" or body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


GET_REQUEST = raw_request("GET", {}, b"")
CE_REQUEST = raw_request("POST", CE_HEADERS, b'{"message":"ready?"}')


def http_once(port: int, request: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    """Sends `request`, returns (status, body). Raises OSError when nothing answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the response headers")
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        length = None
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if status in (204, 304):
            return status, b""
        while length is None or len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, body


def answered_by_function(status: int, body: bytes) -> bool:
    # The original worker's first request is answered by the shim, not by the function.
    return 200 <= status < 300 and not body.startswith(READY_BODY)


def wait_ready(proc: subprocess.Popen, port: int, request: bytes, deadline_s: float, logfile: Optional[Path]) -> float:
    """Polls with fresh connections, in a tight loop, until the function answers 2xx; returns
    the time.perf_counter() of that answer."""
    started = time.perf_counter()
    last = "no answer"
    while True:
        try:
            status, body = http_once(port, request)
            if answered_by_function(status, body):
                return time.perf_counter()
            last = f"HTTP {status}: {body[:120]!r}"
        except OSError as error:
            last = str(error)
        if proc.poll() is not None:
            tail = logfile.read_text(errors="replace")[-2000:] if logfile and logfile.exists() else ""
            raise RuntimeError(f"exited with {proc.returncode} before answering ({last})\n{tail}")
        if time.perf_counter() - started > deadline_s:
            raise RuntimeError(f"no 2xx within {deadline_s:.0f} s ({last})")


# ---------------------------------------------------------------------------------------
# The peers.

def base_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in list(env):
        if name in ("PORT", "FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE", "FUNCTION_SOURCE", "K_SERVICE",
                    "K_REVISION", "K_CONFIGURATION", "NODE_OPTIONS", "CONFORMANCE_SLEEP_MS", "CLOUD_RUN_TIMEOUT_SECONDS",
                    "WORKERS", "THREADS", "DEBUG", "RUST_LOG") or name.startswith(("FUNCTIONS_FRAMEWORK_", "TEST_", "BENCH_")):
            del env[name]
    env.update(extra)
    return env


def cloud_env(target: str, signature: str, port: int, **extra: str) -> dict[str, str]:
    """What a Cloud Functions (gen2) instance sets, plus NODE_ENV=production."""
    return base_env(PORT=str(port), FUNCTION_TARGET=target, FUNCTION_SIGNATURE_TYPE=signature, K_SERVICE="bench",
                    K_REVISION="bench-00001", K_CONFIGURATION="bench", NODE_ENV="production", **extra)


@dataclass
class Workload:
    key: str  # "get" or "ce"
    label: str
    request: bytes  # for readiness
    wrk_args: list[str]


WORKLOADS = [
    Workload("get", "GET / (HTTP function answering OK)", GET_REQUEST, []),
    Workload("ce", "POST / binary CloudEvent, 1 KiB JSON", CE_REQUEST, ["-s", str(CE_SCRIPT)]),
]


@dataclass
class Peer:
    key: str
    label: str
    ours: bool
    # workload key -> function(port) -> (cmd, cwd, env); None: the "get" server serves it too.
    servers: dict[str, Optional[Callable[[int], tuple[list, Path, dict]]]]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    logfile: Path
    rss_idle: float = 0.0
    rss_load: float = 0.0


@dataclass
class Stage:
    """Staged function packages, laid out like function.zip and built as the cloud builds them."""
    root: Path
    package: Path  # test-functions, LAUNCHER=node, after `npm ci`
    direct: Path  # test-functions, LAUNCHER=direct, after `npm ci`
    bare: Path  # test-functions without the Functions Framework dependency (the injected case)
    floor: Path  # hyper-hello as function-server: the bare `node` execve floor
    python: Path  # the Python peer's source
    get_target: str


def stage(work: Path) -> Stage:
    listing = subprocess.run([str(BINARY), "--list-functions"], capture_output=True, text=True, check=True,
                             env=base_env(RUST_LOG="off")).stdout
    names = [f["name"] for f in json.loads(listing.strip().splitlines()[-1])]
    # An HTTP function answering OK: `hello` where test-functions registers it, else `echo`
    # (which answers a GET with an empty 200).
    get_target = os.environ.get("BENCH_GET_TARGET") or ("hello" if "hello" in names else "echo")

    def package(dest: Path, server_binary: Path, launcher: str = "node", dependency: bool = True) -> Path:
        # The functions are listed from test-functions: hyper-hello takes no flags.
        subprocess.run(["node", str(ROOT / "tools" / "package.js"), "--binary", str(server_binary), "--shim", str(SHIM),
                        "--launcher", launcher, "--stage", str(dest), "--list-from", str(BINARY)],
                       check=True, env=base_env(), timeout=120)
        if not dependency:
            manifest = json.loads((dest / "package.json").read_text())
            del manifest["dependencies"]
            (dest / "package.json").write_text(json.dumps(manifest, indent=2))
            (dest / "package-lock.json").unlink()
            subprocess.run(["npm", "install", "--package-lock-only", "--quiet"], cwd=dest, check=True, env=base_env())
        # What the cloud's build does with the package.
        subprocess.run(["npm", "ci", "--quiet", "--no-fund", "--no-audit"], cwd=dest, check=True,
                       env=base_env(NODE_ENV="production"), stdout=subprocess.DEVNULL)
        return dest

    python = work / "python"
    python.mkdir()
    shutil.copy(PEERS_DIR / "python" / "main.py", python / "main.py")
    # The Node.js peer runs from the cache, where its node_modules are, with the repo's source.
    shutil.copy(PEERS_DIR / "node" / "index.js", NODE_PEER / "index.js")
    return Stage(work, package(work / "package", BINARY), package(work / "direct", BINARY, "direct"),
                 package(work / "bare", BINARY, dependency=False), package(work / "floor", HYPER), python, get_target)


def make_peers(st: Stage) -> list[Peer]:
    node = shutil.which("node") or "node"
    targets = {"get": (st.get_target, "http"), "ce": ("cloudevent_noop", "cloudevent")}
    node_targets = {"get": ("hello", "http"), "ce": ("cloudevent", "cloudevent")}

    def per_workload(build):
        return {w: (lambda port, w=w: build(w, port)) for w in ("get", "ce")}

    return [
        Peer("hyper", "bare hyper (limit)", False,
             {"get": lambda port: ([HYPER], ROOT, base_env(PORT=str(port))), "ce": None}),
        Peer("rust", "this project, binary", True, per_workload(lambda w, port: (
            [BINARY], ROOT, base_env(PORT=str(port), FUNCTION_TARGET=targets[w][0])))),
        Peer("shim-launcher", "this project, node + shim (launcher order)", True, per_workload(lambda w, port: (
            [node, LAUNCHER, f"--target={targets[w][0]}", f"--signature-type={targets[w][1]}"], st.package,
            cloud_env(*targets[w], port)))),
        Peer("shim-worker", "this project, node + shim (worker order)", True, per_workload(lambda w, port: (
            [node, ROOT / "tools" / "cloud-worker.js", st.package], st.package, cloud_env(*targets[w], port)))),
        Peer("node-ff", f"Node.js Functions Framework {NODE_FF_VERSION}", False, per_workload(lambda w, port: (
            [node, LAUNCHER, f"--target={node_targets[w][0]}", f"--signature-type={node_targets[w][1]}"], NODE_PEER,
            cloud_env(*node_targets[w], port)))),
        Peer("python-ff", "Python Functions Framework (gunicorn)", False, per_workload(lambda w, port: (
            [PY_FF, f"--target={node_targets[w][0]}", "--source=main.py", f"--signature-type={node_targets[w][1]}",
             "--host=127.0.0.1", f"--port={port}"], st.python, cloud_env(*node_targets[w], port)))),
        Peer("node-proxy", "Node.js proxy to a native subprocess", False, per_workload(lambda w, port: (
            [node, PEERS_DIR / "node-proxy" / "proxy.js", BINARY], ROOT, cloud_env(*targets[w], port)))),
    ]


# ---------------------------------------------------------------------------------------
# Load: wrk bursts.

_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"cannot read the latency {text!r}")
    return float(match.group(1)) * _UNIT[match.group(2)]


def parse_wrk(output: str) -> dict:
    requests = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not requests or not rps:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "requests": int(requests.group(1)),
        "rps": float(rps.group(1)),
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(v) for v in errors.groups()) if errors else 0,
    }


def burst(server: Server, workload: Workload, seconds: int, client_cores: Optional[set[int]]) -> dict:
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", *workload.wrk_args,
           f"http://127.0.0.1:{server.port}/"]
    before = tree_cpu_seconds(server.proc.pid)
    with pinned(client_cores):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    time.sleep(0.05)  # the server closes the connections wrk left
    after = tree_cpu_seconds(server.proc.pid)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = parse_wrk(done.stdout)
    result["cpu_s"] = after - before
    result["cpu_us_per_req"] = (after - before) / result["requests"] * 1e6 if result["requests"] else float("nan")
    return result


# ---------------------------------------------------------------------------------------
# Protocol and body rows: this project's binary against bare hyper only, for what the
# rotation above does not cover (HTTP/2 with prior knowledge, large request bodies).

POST_BODY_SCRIPT = BENCHES / "post-body.lua"
PUBSUB_READY_REQUEST = raw_request("POST", {
    "Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "ready", "ce-source": "//bench",
    "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
}, b'{"message":{"messageId":"ready"}}')


@dataclass
class ExtraRow:
    key: str
    label: str
    tool: str  # "wrk" or "h2load"
    limit: float  # CPU per request, × bare hyper
    body_bytes: int = 0
    script: Path = POST_BODY_SCRIPT  # wrk's Lua script
    target: str = ""  # this project's function; the GET target when empty
    results: dict = field(default_factory=dict)  # peer key -> list of bursts


def extra_rows() -> list[ExtraRow]:
    return [
        ExtraRow("h2c-get", "GET / over HTTP/2 with prior knowledge (h2load)", "h2load", TARGET_H2C_GET_CPU),
        ExtraRow("post-1m", "POST / with a 1 MiB body (HTTP function)", "wrk", TARGET_LARGE_POST_CPU, MIB),
        ExtraRow("post-16m", "POST / with a 16 MiB body (HTTP function)", "wrk", TARGET_LARGE_POST_CPU, 16 * MIB),
        ExtraRow("pubsub-typed", "POST / binary Pub/Sub CloudEvent, 1 KiB, typed (CloudEvent<MessagePublishedData>)",
                 "wrk", TARGET_CE_CPU, script=BENCHES / "pubsub.lua", target="pubsub_noop"),
    ]


def parse_h2load(output: str) -> dict:
    done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                     output)
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output)
    if not done or not rps:
        raise RuntimeError(f"cannot read h2load's output:\n{output}")
    return {"requests": int(done.group(4)), "rps": float(rps.group(1)),
            "errors": int(done.group(5)) + int(done.group(6))}


def extra_burst(row: ExtraRow, server: Server, seconds: int, client_cores: Optional[set[int]]) -> dict:
    url = f"http://127.0.0.1:{server.port}/"
    if row.tool == "h2load":
        cmd = ["h2load", "-c", str(CONNECTIONS), "-m", "1", "-t", "1", "-D", str(seconds), url]
        return loaded(server, cmd, {}, seconds, client_cores)
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(row.script), url]
    return loaded(server, cmd, {"BODY_BYTES": str(row.body_bytes)}, seconds, client_cores)


def loaded(server: Server, cmd: list[str], extra_env: dict[str, str], seconds: int,
           client_cores: Optional[set[int]]) -> dict:
    """Runs a load client (wrk or h2load) against the server; its requests, rate, errors and
    the server's CPU per request."""
    before = tree_cpu_seconds(server.proc.pid)
    with pinned(client_cores):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120,
                              env={**os.environ, **extra_env})
    time.sleep(0.05)
    after = tree_cpu_seconds(server.proc.pid)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {done.stderr or done.stdout}")
    if cmd[0] == "h2load":
        result = parse_h2load(done.stdout)
    else:
        parsed = parse_wrk(done.stdout)
        result = {"requests": parsed["requests"], "rps": parsed["rps"],
                  "errors": parsed["non2xx"] + parsed["socket_errors"]}
    if not result["requests"]:
        raise RuntimeError(f"{cmd[0]}: no request completed")
    result["cpu_us_per_req"] = (after - before) / result["requests"] * 1e6
    return result


def measure_extra(st: Stage, server_cores, client_cores, logdir: Path) -> list[dict]:
    rows = extra_rows()
    servers: dict[str, Server] = {}
    builds = {
        "hyper": lambda port: [HYPER], "hyper-h2c": lambda port: [HYPER],
        "rust": lambda port: [BINARY], "rust-pubsub": lambda port: [BINARY],
    }
    envs = {
        "hyper": lambda port: base_env(PORT=str(port)),
        "hyper-h2c": lambda port: base_env(PORT=str(port), H2C="1"),
        "rust": lambda port: base_env(PORT=str(port), FUNCTION_TARGET=st.get_target),
        "rust-pubsub": lambda port: base_env(PORT=str(port), FUNCTION_TARGET="pubsub_noop"),
    }
    try:
        for key in builds:
            port = free_port()
            logfile = logdir / f"extra-{key}.log"
            proc = spawn(builds[key](port), cwd=ROOT, env=envs[key](port), logfile=logfile, cores=server_cores)
            server = Server(f"extra/{key}", proc, port, logfile)
            # The h2c-only peer does not speak HTTP/1: readiness is its listening socket.
            if key == "hyper-h2c":
                deadline = time.monotonic() + 30
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise RuntimeError("the h2c hyper peer did not listen")
                        time.sleep(0.02)
            else:
                wait_ready(proc, port, PUBSUB_READY_REQUEST if key == "rust-pubsub" else GET_REQUEST, 60, logfile)
            servers[key] = server
        peers_of = {"h2c-get": ("hyper-h2c", "rust"), "pubsub-typed": ("hyper", "rust-pubsub")}
        for row in rows:
            for key in peers_of.get(row.key, ("hyper", "rust")):
                extra_burst(row, servers[key], WARMUP, client_cores)
        for round_index in range(ROUNDS):
            for row in rows:
                keys = peers_of.get(row.key, ("hyper", "rust"))
                for key in (keys if round_index % 2 == 0 else tuple(reversed(keys))):
                    try:
                        result = extra_burst(row, servers[key], BURST, client_cores)
                    except (RuntimeError, subprocess.TimeoutExpired) as error:
                        log(f"{row.key} {key}: {error}")
                        continue
                    row.results.setdefault("hyper" if key.startswith("hyper") else "rust", []).append(result)
            log(f"protocol and body rows: round {round_index + 1}/{ROUNDS} done")
    finally:
        for server in servers.values():
            kill(server.proc)
    out = []
    for row in rows:
        summary = {"key": row.key, "label": row.label, "limit": row.limit}
        for peer, runs in row.results.items():
            peer = "rust" if peer.startswith("rust") else peer
            summary[peer] = {"rps": med([r["rps"] for r in runs]),
                             "cpu_us_per_req": med([r["cpu_us_per_req"] for r in runs]),
                             "errors": sum(r["errors"] for r in runs), "bursts": len(runs)}
        hyper, rust = row.results.get("hyper", []), row.results.get("rust", [])
        summary["paired"] = [b["cpu_us_per_req"] / a["cpu_us_per_req"] for a, b in zip(hyper, rust)]
        out.append(summary)
    return out


# ---------------------------------------------------------------------------------------
# Events by size: the cost of an event function as its data grows, against bare hyper reading
# the same body, serde_json alone decoding the same bytes into the same type, and the Node.js
# framework.

EVENT_SCRIPT = BENCHES / "event-file.lua"
JSON_DECODE = RELEASE / "json-decode"
EVENT_SIZES = (("event-1k", "1 KiB", 1024), ("event-64k", "64 KiB", 64 * 1024), ("event-1m", "1 MiB", MIB))
TARGET_EVENT_VS_SERDE = 1.5  # x serde_json alone, at 64 KiB and 1 MiB
TARGET_EVENT_VS_NODE = 10.0  # the Node.js framework's CPU per request / ours, at every size
FIRESTORE_FIXTURE = ROOT / "tests" / "fixtures" / "events" / "firestore-protobuf.json"


def flat_json(size: int) -> bytes:
    """A flat JSON object of exactly `size` bytes: keys "f000000"... with 48-character values."""
    value = "v" * 48
    entries, length = [], 2
    while True:
        entry = '"f%06d":"%s"' % (len(entries), value)
        extra = len(entry) + (1 if entries else 0)
        if length + extra > size:
            break
        entries.append(entry)
        length += extra
    body = "{" + ",".join(entries) + "}"
    if len(body) < size:
        entries[-1] = '"f%06d":"%s"' % (len(entries) - 1, value + "v" * (size - len(body)))
        body = "{" + ",".join(entries) + "}"
    assert len(body) == size and json.loads(body)
    return body.encode()


def event_request(headers: dict[str, str], body: bytes) -> bytes:
    return raw_request("POST", {"ce-specversion": "1.0", "ce-id": "ready", "ce-source": "//bench", **headers}, body)


def serde_floor(kind: str, path: Path, cores) -> float:
    """serde_json alone: CPU µs per decode of the file into a Value or a HashMap<String, String>."""
    with pinned(cores):
        done = subprocess.run([str(JSON_DECODE), kind, str(path), str(max(1, BURST // 2))],
                              capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"json-decode {kind} {path.name} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)["cpu_us_per_decode"]


def measure_events(server_cores, client_cores, logdir: Path) -> dict:
    files = {}
    for key, _, size in EVENT_SIZES:
        files[key] = logdir / f"{key}.json"
        files[key].write_bytes(flat_json(size))
    fixture = json.loads(FIRESTORE_FIXTURE.read_text())
    files["firestore"] = logdir / "firestore.pb"
    files["firestore"].write_bytes(base64.b64decode(fixture["bodyBase64"]))
    firestore_env = {"CONTENT_TYPE": "application/protobuf", "CE_TYPE": fixture["headers"]["ce-type"],
                     "CE_SOURCE": fixture["headers"]["ce-source"]}
    flat_ready = event_request({"ce-type": "bench", "Content-Type": "application/json"}, b'{"f":"v"}')
    specs = {
        "hyper": ([HYPER], ROOT, lambda port: base_env(PORT=str(port)), GET_REQUEST),
        "untyped": ([BINARY], ROOT, lambda port: base_env(PORT=str(port), FUNCTION_TARGET="cloudevent_noop"), flat_ready),
        "typed": ([BINARY], ROOT, lambda port: base_env(PORT=str(port), FUNCTION_TARGET="flat_noop"), flat_ready),
        "node-ff": ([shutil.which("node") or "node", LAUNCHER, "--target=cloudevent", "--signature-type=cloudevent"],
                    NODE_PEER, lambda port: cloud_env("cloudevent", "cloudevent", port), flat_ready),
        "firestore": ([BINARY], ROOT, lambda port: base_env(PORT=str(port), FUNCTION_TARGET="firestore_noop"),
                      event_request({"ce-type": fixture["headers"]["ce-type"], "Content-Type": "application/protobuf"},
                                    files["firestore"].read_bytes())),
    }
    rows = [(key, label, ("hyper", "untyped", "typed", "node-ff"), {"BODY_FILE": str(files[key])})
            for key, label, _ in EVENT_SIZES]
    rows.append(("firestore", f"Firestore event, protobuf ({len(files['firestore'].read_bytes())} B)",
                 ("hyper", "firestore"), {"BODY_FILE": str(files["firestore"]), **firestore_env}))
    servers: dict[str, Server] = {}
    raw: dict[str, dict[str, list]] = {}
    floors: dict[str, dict[str, list]] = {}
    try:
        for key, (cmd, cwd, env, ready) in specs.items():
            port = free_port()
            logfile = logdir / f"events-{key}.log"
            proc = spawn(cmd, cwd=cwd, env=env(port), logfile=logfile, cores=server_cores)
            servers[key] = Server(f"events/{key}", proc, port, logfile)
            wait_ready(proc, port, ready, 60, logfile)
        for round_index in range(ROUNDS):
            for key, _, peers, env in rows:
                for peer in (peers if round_index % 2 == 0 else tuple(reversed(peers))):
                    try:
                        if round_index == 0:
                            event_burst(servers[peer], env, WARMUP, client_cores)
                        result = event_burst(servers[peer], env, BURST, client_cores)
                    except (RuntimeError, subprocess.TimeoutExpired) as error:
                        log(f"events {key} {peer}: {error}")
                        continue
                    raw.setdefault(key, {}).setdefault(peer, []).append(result)
            for key, _, _ in EVENT_SIZES:
                for kind in ("value", "map"):
                    floors.setdefault(key, {}).setdefault(kind, []).append(serde_floor(kind, files[key], server_cores))
            log(f"events by size: round {round_index + 1}/{ROUNDS} done")
    finally:
        for server in servers.values():
            kill(server.proc)
    out = []
    for key, label, peers, _ in rows:
        row = {"key": key, "label": label, "peers": {}, "serde": {}}
        for peer in peers:
            runs = raw.get(key, {}).get(peer, [])
            if runs:
                row["peers"][peer] = {"rps": med([r["rps"] for r in runs]),
                                      "cpu_us_per_req": med([r["cpu_us_per_req"] for r in runs]),
                                      "errors": sum(r["errors"] for r in runs), "bursts": len(runs)}
        for kind, values in floors.get(key, {}).items():
            row["serde"][kind] = med(values)
        out.append(row)
    return {"rows": out}


def event_burst(server: Server, extra_env: dict[str, str], seconds: int, client_cores) -> dict:
    url = f"http://127.0.0.1:{server.port}/"
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(EVENT_SCRIPT), url]
    return loaded(server, cmd, extra_env, seconds, client_cores)


def event_ratios(row: dict) -> dict:
    """untyped ÷ serde_json→Value, typed ÷ serde_json→HashMap, Node ÷ each of ours."""
    p, serde = row["peers"], row["serde"]
    cpu = {k: v["cpu_us_per_req"] for k, v in p.items()}
    out = {}
    if "untyped" in cpu and serde.get("value"):
        out["untyped_vs_serde"] = cpu["untyped"] / serde["value"]
    if "typed" in cpu and serde.get("map"):
        out["typed_vs_serde"] = cpu["typed"] / serde["map"]
    for ours in ("untyped", "typed"):
        if ours in cpu and "node-ff" in cpu:
            out[f"node_vs_{ours}"] = cpu["node-ff"] / cpu[ours]
    if "hyper" in cpu:
        for ours in ("untyped", "typed", "firestore"):
            if ours in cpu:
                out[f"{ours}_vs_hyper"] = cpu[ours] / cpu["hyper"]
    return out


# ---------------------------------------------------------------------------------------
# Cold start.

@dataclass
class ColdRow:
    key: str
    label: str
    ours: bool
    build: Callable[[int], tuple[list, Path, dict]]
    request: bytes = GET_REQUEST
    exits: bool = False  # measured to exit, not to the first 200
    note: str = ""
    samples: list[float] = field(default_factory=list)
    error: str = ""


def cold_rows(st: Stage) -> list[ColdRow]:
    node = shutil.which("node") or "node"
    t = st.get_target
    pkg_index = st.package / "index.js"
    require = lambda path: f"require({json.dumps(str(path))})"  # noqa: E731
    # The runtime's web process: `/bin/bash -c <functions-framework bin>` in the app folder.
    launch = lambda bin_path: ["/bin/bash", "-c", str(bin_path)]  # noqa: E731
    own_bin = "node_modules/.bin/functions-framework"
    return [
        ColdRow("spawn", "process spawn (`true`, start to exit, reference)", False,
                lambda p: (["true"], ROOT, base_env()), exits=True),
        ColdRow("hyper", "bare hyper binary", False, lambda p: ([HYPER], ROOT, base_env(PORT=str(p)))),
        ColdRow("rust", "this project, binary alone", True,
                lambda p: ([BINARY], ROOT, base_env(PORT=str(p), FUNCTION_TARGET=t))),
        ColdRow("node-e0", "`node -e 0` (start to exit, reference)", False,
                lambda p: ([node, "-e", "0"], ROOT, base_env()), exits=True, note="includes Node.js's exit"),
        ColdRow("node-http", "bare `node` http server (reference)", False,
                lambda p: ([node, "-e", "require('http').createServer((q, s) => s.end('OK')).listen(process.env.PORT)"],
                           ROOT, base_env(PORT=str(p)))),
        ColdRow("floor", "bare `node` execve floor (node + shim exec'ing hyper)", False,
                lambda p: ([node, "-e", require(st.floor / "index.js")], ROOT, cloud_env(t, "http", p))),
        ColdRow("shim-require", "this project, `node -e` requiring the package", True,
                lambda p: ([node, "-e", require(pkg_index)], ROOT, cloud_env(t, "http", p))),
        ColdRow("launch-node", "this project, cloud launch, `LAUNCHER=node` (default)", True,
                lambda p: (launch(own_bin), st.package, cloud_env(t, "http", p))),
        ColdRow("launch-direct", "this project, cloud launch, `LAUNCHER=direct`", True,
                lambda p: (launch(own_bin), st.direct, cloud_env(t, "http", p))),
        ColdRow("launch-ff3", "this project, cloud launch, injected Functions Framework 3.5.1 + shim", True,
                lambda p: (launch(INJECTED_FF_BIN), st.bare,
                           cloud_env(t, "http", p, NODE_PATH=str(st.bare / "node_modules")))),
        ColdRow("launch-ff5", f"this project, cloud launch, Functions Framework {NODE_FF_VERSION} + shim", True,
                lambda p: (launch(NODE_PEER_BIN), st.package, cloud_env(t, "http", p))),
        ColdRow("shim-early", f"this project, FF {NODE_FF_VERSION} + `NODE_OPTIONS=--require=./index.js` (opt-in)", True,
                lambda p: (launch(NODE_PEER_BIN), st.package,
                           cloud_env(t, "http", p, NODE_OPTIONS="--require=./index.js"))),
        ColdRow("shim-worker", "this project, node + shim, original worker (listen first)", True,
                lambda p: ([node, ROOT / "tools" / "cloud-worker.js", st.package], st.package, cloud_env(t, "http", p)),
                note="to the first answer of the function, after the shim's \"User function is ready\""),
        ColdRow("node-ff", f"Node.js Functions Framework {NODE_FF_VERSION}, its own hello (cloud launch)", False,
                lambda p: (launch(NODE_PEER_BIN), NODE_PEER, cloud_env("hello", "http", p))),
        ColdRow("python-ff", "Python Functions Framework (gunicorn)", False,
                lambda p: ([PY_FF, "--target=hello", "--source=main.py", "--host=127.0.0.1", f"--port={p}"], st.python,
                           cloud_env("hello", "http", p))),
        ColdRow("node-proxy", "Node.js proxy to a native subprocess", False,
                lambda p: ([node, PEERS_DIR / "node-proxy" / "proxy.js", BINARY], ROOT, cloud_env(t, "http", p))),
    ]


def measure_cold(row: ColdRow, runs: int, server_cores, logdir: Path) -> None:
    logfile = logdir / f"cold-{row.key}.log"
    for _ in range(runs):
        port = free_port()
        cmd, cwd, env = row.build(port)
        started = time.perf_counter()
        proc = spawn(cmd, cwd=cwd, env=env, logfile=logfile, cores=server_cores)
        try:
            if row.exits:
                proc.wait(timeout=30)
                ended = time.perf_counter()
            else:
                ended = wait_ready(proc, port, row.request, 30, logfile)
        finally:
            kill(proc)
        row.samples.append((ended - started) * 1000)


# ---------------------------------------------------------------------------------------
# Sizes.

def tree_files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()] if path.is_dir() else [path]


def zipped_size(files: list[tuple[Path, str]]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "size.zip"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for path, name in files:
                z.write(path, name)
        return out.stat().st_size


def python_peer_files() -> list[Path]:
    """The files of functions-framework, gunicorn and everything they require, in the venv."""
    script = r"""
import json, sys
from importlib import metadata
from packaging.requirements import Requirement
seen, todo, files = set(), ["functions-framework", "gunicorn"], []
while todo:
    name = todo.pop().lower().replace("_", "-")
    if name in seen:
        continue
    seen.add(name)
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        continue
    files += [str(f.locate()) for f in dist.files or []]
    for spec in dist.requires or []:
        req = Requirement(spec)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append(req.name)
json.dump(files, sys.stdout)
"""
    out = subprocess.run([str(VENV / "bin" / "python"), "-c", script], capture_output=True, text=True, check=True).stdout
    return [Path(p) for p in json.loads(out) if Path(p).is_file()]


def measure_sizes(st: Stage) -> list[dict]:
    rows = []

    def add(key, label, ours, files_with_names, zip_bytes=None, note=""):
        unpacked = sum(p.stat().st_size for p, _ in files_with_names)
        rows.append({
            "key": key, "label": label, "ours": ours, "files": len(files_with_names),
            "unpacked_mib": unpacked / MIB,
            "zip_mib": (zip_bytes if zip_bytes is not None else zipped_size(files_with_names)) / MIB,
            "note": note,
        })

    zip_path = ROOT / "function.zip"
    if zip_path.exists():
        with zipfile.ZipFile(zip_path) as z:
            infos = z.infolist()
        rows.append({"key": "function.zip", "label": "this project, function.zip (`make`)", "ours": True,
                     "files": len(infos), "unpacked_mib": sum(i.file_size for i in infos) / MIB,
                     "zip_mib": zip_path.stat().st_size / MIB, "note": "the `function` crate, glibc 2.17 build"})
    packaged = [p for p in tree_files(st.package) if "node_modules" not in p.relative_to(st.package).parts]
    add("package", "this project, staged package (test-functions)", True,
        [(p, str(p.relative_to(st.package))) for p in packaged],
        note="index.js, package.json, package-lock.json, functions-framework-rust/")
    add("hyper", "bare hyper binary", False, [(HYPER, HYPER.name)])
    node_files = [p for p in tree_files(NODE_PEER) if p.name not in (".npmrc", "package-lock.json")]
    add("node-ff", f"Node.js Functions Framework {NODE_FF_VERSION} (node_modules + source)", False,
        [(p, str(p.relative_to(NODE_PEER))) for p in node_files])
    try:
        py = python_peer_files()
        add("python-ff", "Python Functions Framework + gunicorn (installed packages + source)", False,
            [(p, str(i) + p.name) for i, p in enumerate(py)] + [(st.python / "main.py", "main.py")],
            note="interpreter not counted")
    except (subprocess.CalledProcessError, OSError, ValueError) as error:
        log(f"python peer size: {error}")
    proxy = PEERS_DIR / "node-proxy" / "proxy.js"
    add("node-proxy", "Node.js proxy + native binary", False, [(proxy, "proxy.js"), (BINARY, "function-server")])
    return rows


# ---------------------------------------------------------------------------------------
# Report.

def med(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def ratio(value, reference):
    if not (value == value and reference == reference) or not reference:
        return "n/a"
    return f"{value / reference:.2f}×"


def fmt(value, digits=1):
    if value is None or value != value:
        return "n/a"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def machine_info() -> dict:
    def first(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "n/a"

    model = "n/a"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "n/a"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / MIB:.1f} GiB"
    except OSError:
        pass
    py_versions = first([str(VENV / "bin" / "python"), "-c",
                         "import sys; from importlib.metadata import version as v; "
                         "print(sys.version.split()[0], v('functions-framework'), v('gunicorn'))"])
    return {
        "cpu": model, "cores": os.cpu_count(), "usable_cores": sorted(os.sched_getaffinity(0)), "memory": mem,
        "kernel": platform.release(), "os": first(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""]),
        "node": first(["node", "--version"]), "python_peer": py_versions,
        "wrk": first(["sh", "-c", "wrk --version 2>&1"]), "loadavg_start": os.getloadavg(),
    }


def report(results: dict) -> str:
    peers = results["peers"]
    load = results["load"]
    m = results["machine"]
    lines = [f"# Benchmark run {results['started']}", ""]
    lines += [
        f"- Machine: {m['cpu']}, {m['cores']} cores ({m['memory']}), kernel {m['kernel']}, {m['os']}",
        f"- Node.js {m['node']}; Python, functions-framework, gunicorn: {m['python_peer']}; {m['wrk']}",
        f"- Load average at start {m['loadavg_start'][0]:.2f}, at end {m['loadavg_end'][0]:.2f}"
        " (above 0 means other work shared the machine: the figures are indicative)",
        f"- Method: {results['rounds']} rounds × {results['burst_s']} s bursts per peer and workload, rotating; "
        f"wrk 1 thread, {results['connections']} connections; "
        + (f"servers pinned to core {results['server_cores']}, wrk to core {results['client_cores']}"
           if results["server_cores"] else "no pinning (a single core)")
        + f"; medians over the rounds. Cold start: median of {results['cold_runs']} spawns.",
        f"- GET target of test-functions: `{results['get_target']}`"
        + (" (answers a GET with an empty 200)" if results["get_target"] == "echo" else ""),
        "",
    ]

    def summary(peer_key, workload):
        return load.get(peer_key, {}).get(workload)

    for workload in WORKLOADS:
        hyper = summary("hyper", workload.key)
        node = summary("node-ff", workload.key)
        limit = TARGET_GET_CPU if workload.key == "get" else TARGET_CE_CPU
        lines += [f"## {workload.label}", "",
                  "| peer | req/s | × hyper | × Node FF | CPU µs/req | × hyper | × Node FF | p50 ms | p99 ms | target |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for peer in peers:
            s = summary(peer["key"], workload.key)
            if not s:
                lines.append(f"| {peer['label']} | failed: {peer.get('error', 'not run')} |  |  |  |  |  |  |  |  |")
                continue
            target = ""
            if peer["ours"] and hyper:
                cpu_ok = s["cpu_us_per_req"] <= limit * hyper["cpu_us_per_req"]
                target = f"CPU ≤ {limit:.2f}× hyper: {met(cpu_ok)}; p99 ≤ {TARGET_P99_MS:g} ms: {met(s['p99_ms'] <= TARGET_P99_MS)}"
            if s["errors"]:
                target = (target + "; " if target else "") + f"{s['errors']} errors"
            lines.append(
                f"| {peer['label']} | {fmt(s['rps'], 0)} | {ratio(s['rps'], hyper and hyper['rps'])} | "
                f"{ratio(s['rps'], node and node['rps'])} | {fmt(s['cpu_us_per_req'])} | "
                f"{ratio(s['cpu_us_per_req'], hyper and hyper['cpu_us_per_req'])} | "
                f"{ratio(s['cpu_us_per_req'], node and node['cpu_us_per_req'])} | {fmt(s['p50_ms'], 3)} | "
                f"{fmt(s['p99_ms'], 3)} | {target} |")
        lines.append("")

    if results.get("extra"):
        lines += ["## HTTP/2 and large bodies (this project's binary against bare hyper)", "",
                  "| workload | hyper req/s | ours req/s | hyper CPU µs/req | ours CPU µs/req | × hyper | per round | target |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
        for row in results["extra"]:
            h, o = row.get("hyper"), row.get("rust")
            if not h or not o:
                lines.append(f"| {row['label']} | failed |  |  |  |  |  |  |")
                continue
            r = o["cpu_us_per_req"] / h["cpu_us_per_req"]
            paired = row["paired"]
            spread = f"{min(paired):.2f}–{max(paired):.2f}×" if paired else ""
            errors = o["errors"] + h["errors"]
            lines.append(f"| {row['label']} | {fmt(h['rps'], 0)} | {fmt(o['rps'], 0)} | {fmt(h['cpu_us_per_req'])} | "
                         f"{fmt(o['cpu_us_per_req'])} | {r:.2f}× | {spread} | ≤ {row['limit']:.2f}×: {met(r <= row['limit'])}"
                         + (f"; {errors} errors" if errors else "") + " |")
        lines.append("")

    if results.get("events"):
        lines += ["## Events by size (binary-mode CloudEvents, CPU µs per request)", "",
                  "Data is a flat JSON object of strings. Untyped is `Event` (`cloudevent_noop`), typed is "
                  "`CloudEvent<HashMap<String, String>>` (`flat_noop`); serde_json alone decodes the same bytes "
                  "into the same type (`serde_json::Value`, `HashMap<String, String>`) in a loop.", "",
                  "| data | bare hyper | untyped | typed | Node.js FF | serde_json → Value | serde_json → HashMap | "
                  "untyped ÷ serde | typed ÷ serde | Node ÷ untyped | Node ÷ typed | target |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for row in results["events"]["rows"]:
            p, serde, r = row["peers"], row["serde"], event_ratios(row)
            cpu = {k: fmt(v["cpu_us_per_req"]) for k, v in p.items()}
            errors = sum(v["errors"] for v in p.values())
            if row["key"] == "firestore":
                lines.append(f"| {row['label']} | {cpu.get('hyper', 'failed')} | {cpu.get('firestore', 'failed')} "
                             f"(`CloudEvent<DocumentEventData>`, {fmt(r.get('firestore_vs_hyper'), 2)}× hyper) |  |  |  |  |  |  |  |  | "
                             + (f"{errors} errors" if errors else "") + " |")
                continue
            verdicts = [f"Node ≥ {TARGET_EVENT_VS_NODE:g}× ours: "
                        + met(min(r.get("node_vs_untyped", 0), r.get("node_vs_typed", 0)) >= TARGET_EVENT_VS_NODE)]
            if row["key"] != "event-1k":
                verdicts.insert(0, f"≤ {TARGET_EVENT_VS_SERDE:g}× serde: " + met(
                    max(r.get("untyped_vs_serde", 99), r.get("typed_vs_serde", 99)) <= TARGET_EVENT_VS_SERDE))
            if errors:
                verdicts.append(f"{errors} errors")
            lines.append(
                f"| {row['label']} | {cpu.get('hyper', 'failed')} | {cpu.get('untyped', 'failed')} | "
                f"{cpu.get('typed', 'failed')} | {cpu.get('node-ff', 'failed')} | {fmt(serde.get('value'))} | "
                f"{fmt(serde.get('map'))} | {fmt(r.get('untyped_vs_serde'), 2)}× | {fmt(r.get('typed_vs_serde'), 2)}× | "
                f"{fmt(r.get('node_vs_untyped'), 1)}× | {fmt(r.get('node_vs_typed'), 1)}× | {'; '.join(verdicts)} |")
        lines.append("")

    cold = {r["key"]: r for r in results["cold"]}
    hyper_ms = cold.get("hyper", {}).get("median_ms")
    node_ms = cold.get("node-ff", {}).get("median_ms")
    floor_ms = cold.get("floor", {}).get("median_ms")
    rust_ms = cold.get("rust", {}).get("median_ms")
    lines += ["## Cold start (spawn to the first 200)", "",
              "| path | median ms | min | max | × hyper | × Node FF | target |",
              "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results["cold"]:
        if r["error"]:
            lines.append(f"| {r['label']} | failed: {r['error'].splitlines()[0]} |  |  |  |  |  |")
            continue
        target = ""
        if r["key"] == "rust":
            target = f"≤ {TARGET_COLD_BINARY_MS:g} ms: {met(r['median_ms'] <= TARGET_COLD_BINARY_MS)}"
        elif r["key"] == "launch-direct" and rust_ms is not None:
            limit = rust_ms + TARGET_COLD_DIRECT_EXTRA_MS
            target = f"≤ binary + {TARGET_COLD_DIRECT_EXTRA_MS:g} ms ({limit:.1f} ms): {met(r['median_ms'] <= limit)}"
        elif r["key"] in SHIM_COLD_KEYS and floor_ms is not None:
            limit = floor_ms + TARGET_COLD_SHIM_EXTRA_MS
            target = f"≤ floor + {TARGET_COLD_SHIM_EXTRA_MS:g} ms ({limit:.0f} ms): {met(r['median_ms'] <= limit)}"
        if r["note"]:
            target = (target + "; " if target else "") + r["note"]
        lines.append(f"| {r['label']} | {fmt(r['median_ms'])} | {fmt(r['min_ms'])} | {fmt(r['max_ms'])} | "
                     f"{ratio(r['median_ms'], hyper_ms)} | {ratio(r['median_ms'], node_ms)} | {target} |")
    lines.append("")

    rss = results["rss"]
    hyper_rss = rss.get("hyper", {})
    node_rss = rss.get("node-ff", {})
    lines += ["## Memory (RSS, whole process tree)", "",
              "| peer | idle MiB | × hyper | × Node FF | after load MiB | × hyper | × Node FF | target |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for peer in peers:
        r = rss.get(peer["key"])
        if not r:
            continue
        target = ""
        if peer["ours"]:
            target = (f"idle ≤ {TARGET_RSS_IDLE_MIB:g}: {met(r['idle'] <= TARGET_RSS_IDLE_MIB)}; "
                      f"load ≤ {TARGET_RSS_LOAD_MIB:g}: {met(r['load'] <= TARGET_RSS_LOAD_MIB)}")
        lines.append(f"| {peer['label']} | {fmt(r['idle'])} | {ratio(r['idle'], hyper_rss.get('idle'))} | "
                     f"{ratio(r['idle'], node_rss.get('idle'))} | {fmt(r['load'])} | "
                     f"{ratio(r['load'], hyper_rss.get('load'))} | {ratio(r['load'], node_rss.get('load'))} | {target} |")
    lines.append("")

    sizes = {r["key"]: r for r in results["sizes"]}
    lines += ["## Deployed size", "",
              "| what | files | unpacked MiB | zip MiB | zip × hyper | zip × Node FF | target |",
              "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results["sizes"]:
        target = ""
        if r["key"] == "function.zip" or (r["key"] == "package" and "function.zip" not in sizes):
            target = f"zip ≤ {TARGET_ZIP_MIB:g} MiB: {met(r['zip_mib'] <= TARGET_ZIP_MIB)}"
        if r["note"]:
            target = (target + "; " if target else "") + r["note"]
        lines.append(f"| {r['label']} | {r['files']} | {fmt(r['unpacked_mib'], 2)} | {fmt(r['zip_mib'], 2)} | "
                     f"{ratio(r['zip_mib'], sizes.get('hyper', {}).get('zip_mib'))} | "
                     f"{ratio(r['zip_mib'], sizes.get('node-ff', {}).get('zip_mib'))} | {target} |")
    lines.append("")
    lines += ["## Targets", "", "| target | limit | measured | |", "| --- | --- | --- | --- |"]
    for row in results["targets"]:
        lines.append(f"| {row['what']} | {row['limit']} | {row['measured']} | {met(row['ok']) if row['ok'] is not None else 'n/a'} |")
    lines.append("")
    return "\n".join(lines)


def targets(results: dict) -> list[dict]:
    load, cold, rss = results["load"], {r["key"]: r for r in results["cold"]}, results["rss"]
    rows = []

    def add(what, limit, measured, ok):
        rows.append({"what": what, "limit": limit, "measured": measured, "ok": ok})

    for workload, limit in (("get", TARGET_GET_CPU), ("ce", TARGET_CE_CPU)):
        ours, hyper = load.get("rust", {}).get(workload), load.get("hyper", {}).get(workload)
        name = "GET" if workload == "get" else "CloudEvent POST"
        if ours and hyper:
            r = ours["cpu_us_per_req"] / hyper["cpu_us_per_req"]
            # The same ratio within each round (bursts close in time): how much drift moved it.
            paired = [a["cpu_us_per_req"] / b["cpu_us_per_req"]
                      for a, b in zip(results["raw"]["rust"][workload], results["raw"]["hyper"][workload])]
            add(f"{name} CPU/request, binary", f"≤ {limit:.2f}× bare hyper",
                f"{r:.2f}× ({ours['cpu_us_per_req']:.1f} vs {hyper['cpu_us_per_req']:.1f} µs; "
                f"per round {min(paired):.2f}–{max(paired):.2f}×)", r <= limit)
        if ours:
            add(f"{name} p99 latency at {CONNECTIONS} connections, binary", f"≤ {TARGET_P99_MS:g} ms",
                f"{ours['p99_ms']:.3f} ms", ours["p99_ms"] <= TARGET_P99_MS)
    if cold.get("rust") and not cold["rust"]["error"]:
        v = cold["rust"]["median_ms"]
        add("cold start, binary alone", f"≤ {TARGET_COLD_BINARY_MS:g} ms", f"{v:.1f} ms", v <= TARGET_COLD_BINARY_MS)
    floor = cold.get("floor")
    rust_cold = cold.get("rust")
    direct = cold.get("launch-direct")
    if direct and not direct["error"] and rust_cold and not rust_cold["error"]:
        extra = direct["median_ms"] - rust_cold["median_ms"]
        sign = "+" if extra >= 0 else "−"
        add("cold start, cloud launch, LAUNCHER=direct", f"≤ binary + {TARGET_COLD_DIRECT_EXTRA_MS:g} ms",
            f"binary {sign} {abs(extra):.1f} ms ({direct['median_ms']:.1f} ms)", extra <= TARGET_COLD_DIRECT_EXTRA_MS)
    for key in SHIM_COLD_KEYS:
        r = cold.get(key)
        if r and not r["error"] and floor and not floor["error"]:
            extra = r["median_ms"] - floor["median_ms"]
            sign = "+" if extra >= 0 else "−"
            add(f"cold start, {r['label'].replace('this project, ', '')}", f"≤ floor + {TARGET_COLD_SHIM_EXTRA_MS:g} ms",
                f"floor {sign} {abs(extra):.1f} ms ({r['median_ms']:.1f} ms)", extra <= TARGET_COLD_SHIM_EXTRA_MS)
    if rss.get("rust"):
        add("RSS idle, binary", f"≤ {TARGET_RSS_IDLE_MIB:g} MiB", f"{rss['rust']['idle']:.1f} MiB",
            rss["rust"]["idle"] <= TARGET_RSS_IDLE_MIB)
        add("RSS after load, binary", f"≤ {TARGET_RSS_LOAD_MIB:g} MiB", f"{rss['rust']['load']:.1f} MiB",
            rss["rust"]["load"] <= TARGET_RSS_LOAD_MIB)
    for row in results.get("extra", []):
        h, o = row.get("hyper"), row.get("rust")
        if h and o:
            r = o["cpu_us_per_req"] / h["cpu_us_per_req"]
            add(f"{row['label']}: CPU/request, binary", f"≤ {row['limit']:.2f}× bare hyper",
                f"{r:.2f}× ({o['cpu_us_per_req']:.1f} vs {h['cpu_us_per_req']:.1f} µs)", r <= row["limit"])
    for row in results.get("events", {}).get("rows", []):
        r = event_ratios(row)
        for ours in ("untyped", "typed"):
            if row["key"] != "event-1k" and f"{ours}_vs_serde" in r:
                add(f"event {row['label']}, {ours}: CPU/request", f"≤ {TARGET_EVENT_VS_SERDE:g}× serde_json alone",
                    f"{r[f'{ours}_vs_serde']:.2f}×", r[f"{ours}_vs_serde"] <= TARGET_EVENT_VS_SERDE)
            if f"node_vs_{ours}" in r:
                add(f"event {row['label']}, {ours}: Node.js FF CPU/request ÷ ours", f"≥ {TARGET_EVENT_VS_NODE:g}×",
                    f"{r[f'node_vs_{ours}']:.1f}×", r[f"node_vs_{ours}"] >= TARGET_EVENT_VS_NODE)
    sizes = {r["key"]: r for r in results["sizes"]}
    z = sizes.get("function.zip") or sizes.get("package")
    if z:
        add(f"deployed size ({z['key']})", f"≤ {TARGET_ZIP_MIB:g} MiB", f"{z['zip_mib']:.2f} MiB", z["zip_mib"] <= TARGET_ZIP_MIB)
    return rows


def chart(results: dict, out: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        log("matplotlib is missing: no chart (make bench-tools installs it)")
        return
    peers = results["peers"]
    load = results["load"]
    palette = {True: "#d95f02", False: "#7570b3"}
    fig, axes = plt.subplots(2, 3, figsize=(18, 10), layout="constrained")

    def bars(ax, labels, values, colors, title, log_scale=False):
        y = list(range(len(labels)))
        ax.barh(y, values, color=colors)
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        if log_scale:
            ax.set_xscale("log")
        for i, v in enumerate(values):
            if v == v and v > 0:
                ax.text(v, i, f" {v:,.1f}" if v < 1000 else f" {v:,.0f}", va="center", fontsize=7)
        ax.margins(x=0.2)

    def short(label):
        return label.replace("this project, ", "ours: ").replace("Functions Framework", "FF")

    def peer_bars(ax, workload, metric, title, log_scale=False):
        rows = [(short(p["label"]), load[p["key"]][workload][metric], palette[p["ours"]] if p["key"] != "hyper" else "#1b9e77")
                for p in peers if load.get(p["key"], {}).get(workload)]
        bars(ax, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], title, log_scale)

    peer_bars(axes[0][0], "get", "cpu_us_per_req", "GET /: CPU µs per request (lower is better)", log_scale=True)
    peer_bars(axes[0][1], "ce", "cpu_us_per_req", "CloudEvent POST: CPU µs per request", log_scale=True)
    peer_bars(axes[0][2], "get", "rps", f"GET /: requests/s, {CONNECTIONS} connections (higher is better)")
    axes[0][2].xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1000:.0f}k"))
    peer_bars(axes[1][0], "get", "p99_ms", "GET /: p99 latency ms", log_scale=True)
    cold = [r for r in results["cold"] if not r["error"]]
    cold_labels = {"node-e0": "node -e 0 (to exit)", "spawn": "spawn true (to exit)", "node-http": "bare node http server",
                   "shim-early": "ours: launcher + early require"}
    bars(axes[1][1], [cold_labels.get(r["key"], short(r["label"]).split(" (")[0]) for r in cold],
         [r["median_ms"] for r in cold],
         ["#1b9e77" if r["key"] == "hyper" else palette[r["ours"]] for r in cold], "Cold start ms, median (log)", log_scale=True)
    rss = results["rss"]
    rows = [(short(p["label"]), rss[p["key"]]["load"], "#1b9e77" if p["key"] == "hyper" else palette[p["ours"]])
            for p in peers if p["key"] in rss]
    bars(axes[1][2], [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], "RSS after load MiB (log)", log_scale=True)
    fig.suptitle(f"Functions Framework for Rust vs peers — {results['started']} "
                 f"({results['machine']['cpu']}, load avg {results['machine']['loadavg_start'][0]:.1f})", fontsize=11)
    fig.savefig(out, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------

def check_prerequisites() -> None:
    missing = []
    for path, what in ((BINARY, "test-functions"), (HYPER, "hyper-hello"), (JSON_DECODE, "hyper-hello"),
                       (SHIM, "the shim")):
        if not path.exists():
            missing.append(f"{path} ({what}: cargo build --release -p test-functions -p hyper-hello -p shim-node)")
    for path, what in ((LAUNCHER, "the Node.js peer"), (PY_FF, "the Python peer"),
                       (INJECTED_FF_BIN, "the injected Functions Framework 3.5.1")):
        if not path.exists():
            missing.append(f"{path} ({what}: make bench-tools)")
    for tool in ("wrk", "node"):
        if not shutil.which(tool):
            missing.append(f"{tool} (make bench-tools installs wrk)")
    if missing:
        sys.exit("bench: missing:\n  " + "\n  ".join(missing))


def main() -> int:
    check_prerequisites()
    become_subreaper()
    started = datetime.datetime.now()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    outdir = Path(os.environ.get("BENCH_RESULTS") or ROOT / "results" / f"bench-{stamp}")
    logdir = outdir / "logs"
    logdir.mkdir(parents=True, exist_ok=True)

    cores = sorted(os.sched_getaffinity(0))
    server_cores = {cores[0]} if len(cores) >= 2 else None
    client_cores = {cores[1]} if len(cores) >= 2 else None
    if client_cores:
        os.sched_setaffinity(0, client_cores)  # this harness polls from the client's core too

    machine = machine_info()
    work = Path(tempfile.mkdtemp(prefix="ff-bench-"))
    _temp_dirs.append(work)
    st = stage(work)
    peers = make_peers(st)
    only = [k for k in os.environ.get("BENCH_PEERS", "").split(",") if k]
    if only:
        peers = [p for p in peers if p.key in only or p.key in ("hyper", "node-ff")]
    log(f"{len(peers)} peers, {ROUNDS} rounds of {BURST} s bursts, {COLD_RUNS} cold starts each; results in {outdir}")

    results = {
        "started": started.strftime("%Y-%m-%d %H:%M"), "machine": machine, "rounds": ROUNDS, "burst_s": BURST,
        "connections": CONNECTIONS, "cold_runs": COLD_RUNS, "get_target": st.get_target,
        "server_cores": sorted(server_cores) if server_cores else None,
        "client_cores": sorted(client_cores) if client_cores else None,
        "peers": [{"key": p.key, "label": p.label, "ours": p.ours} for p in peers],
        "load": {}, "raw": {}, "rss": {}, "cold": [], "sizes": [], "extra": [], "events": {},
    }
    peer_info = {p["key"]: p for p in results["peers"]}

    # 1. Start every server once; they stay up for the whole rotation.
    servers: dict[tuple[str, str], Server] = {}
    for peer in peers:
        try:
            for workload in WORKLOADS:
                build = peer.servers.get(workload.key)
                if build is None:
                    servers[(peer.key, workload.key)] = servers[(peer.key, "get")]
                    continue
                port = free_port()
                cmd, cwd, env = build(port)
                logfile = logdir / f"{peer.key}-{workload.key}.log"
                proc = spawn(cmd, cwd=cwd, env=env, logfile=logfile, cores=server_cores)
                server = Server(f"{peer.key}/{workload.key}", proc, port, logfile)
                wait_ready(proc, port, workload.request, 60, logfile)
                servers[(peer.key, workload.key)] = server
            log(f"started {peer.label}")
        except (RuntimeError, OSError) as error:
            log(f"{peer.label} failed to start: {error}")
            peer_info[peer.key]["error"] = str(error).splitlines()[0]
            for workload in WORKLOADS:
                server = servers.pop((peer.key, workload.key), None)
                if server and server.proc.pid in _groups:
                    kill(server.proc)
    live = [p for p in peers if (p.key, "get") in servers]
    time.sleep(1)
    for peer in live:
        results["rss"][peer.key] = {"idle": tree_rss_mib(servers[(peer.key, "get")].proc.pid)}

    # 2. Warm-up, then rotating bursts.
    for (key, workload_key), server in servers.items():
        if key == "hyper" and workload_key == "ce":
            continue
        burst(server, next(w for w in WORKLOADS if w.key == workload_key), WARMUP, client_cores)
    for round_index in range(ROUNDS):
        for workload in WORKLOADS:
            order = live[round_index % len(live):] + live[:round_index % len(live)]
            for peer in order:
                server = servers[(peer.key, workload.key)]
                try:
                    result = burst(server, workload, BURST, client_cores)
                except (RuntimeError, subprocess.TimeoutExpired) as error:
                    log(f"{peer.key} {workload.key}: {error}")
                    continue
                results["raw"].setdefault(peer.key, {}).setdefault(workload.key, []).append(result)
        log(f"round {round_index + 1}/{ROUNDS} done")
    for peer in live:
        keys = {id(servers[(peer.key, w.key)]): servers[(peer.key, w.key)] for w in WORKLOADS}
        results["rss"][peer.key]["load"] = max(tree_rss_mib(s.proc.pid) for s in keys.values())
        for workload in WORKLOADS:
            runs = results["raw"].get(peer.key, {}).get(workload.key, [])
            if not runs:
                continue
            results["load"].setdefault(peer.key, {})[workload.key] = {
                "rps": med([r["rps"] for r in runs]),
                "cpu_us_per_req": med([r["cpu_us_per_req"] for r in runs]),
                "p50_ms": med([r["p50_ms"] for r in runs]),
                "p99_ms": med([r["p99_ms"] for r in runs]),
                "errors": sum(r["non2xx"] + r["socket_errors"] for r in runs),
                "bursts": len(runs),
            }
    for server in {id(s): s for s in servers.values()}.values():
        kill(server.proc)

    # 2b. HTTP/2 and large bodies, against bare hyper.
    if not only or "extra" in only:
        results["extra"] = measure_extra(st, server_cores, client_cores, logdir)

    # 2c. Events by size, and a protobuf Firestore event.
    if not only or "events" in only:
        results["events"] = measure_events(server_cores, client_cores, logdir)

    # 3. Cold starts, rotating over the paths too.
    rows = cold_rows(st)
    if only:
        rows = [r for r in rows if r.key in only or r.key in ("spawn", "hyper", "node-ff", "floor", "node-e0", "node-http")]
    for index in range(COLD_RUNS):
        for row in rows:
            if row.error:
                continue
            try:
                measure_cold(row, 1, server_cores, logdir)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
                row.error = str(error)
                log(f"cold start {row.key}: {error}")
    for row in rows:
        results["cold"].append({
            "key": row.key, "label": row.label, "ours": row.ours, "note": row.note, "error": row.error,
            "samples_ms": row.samples, "median_ms": med(row.samples) if row.samples else float("nan"),
            "min_ms": min(row.samples) if row.samples else float("nan"),
            "max_ms": max(row.samples) if row.samples else float("nan"),
        })
    log("cold starts done")

    # 4. Sizes, then the report.
    results["sizes"] = measure_sizes(st)
    machine["loadavg_end"] = os.getloadavg()
    results["targets"] = targets(results)
    markdown = report(results)
    (outdir / "results.md").write_text(markdown)
    (outdir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    chart(results, outdir / "chart.png")
    print()
    print(markdown)
    log(f"wrote {outdir / 'results.md'} and {outdir / 'chart.png'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nbench: interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
    finally:
        cleanup()
