"""Shared pieces of the scale benchmarks (bench_import, bench_serving, bench_retrain).

A throwaway database and data directory per run (a new SQLite file, or a new database created
next to the one `--database-url` names on a PostgreSQL server, dropped at the end), the machine
facts every table is printed with (cores, load average: the machine may be shared), synthetic
pools written straight to files, percentile rows, the server and worker subprocesses, and the
peak resident memory of a process. Nothing here downloads anything.
"""

import csv
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LABELS = ["neg", "pos"]


# ---- machine facts ----------------------------------------------------------------------------------

def machine_facts() -> dict:
    mem_gib = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {"cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "mem_gib": mem_gib, "load_start": [round(x, 2) for x in os.getloadavg()],
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def facts_line(facts: dict) -> str:
    end = [round(x, 2) for x in os.getloadavg()]
    facts["load_end"] = end
    return (f"machine: {facts['cores']} cores, {facts['machine']}, {facts['mem_gib']} GiB, Python {facts['python']}; "
            f"started {facts['started']}; load average (1/5/15 min) at start {facts['load_start']}, at end {end}")


# ---- memory ---------------------------------------------------------------------------------------------

def self_peak_rss_mb() -> float:
    """This process's resident-set high-water mark (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def proc_status_mb(pid: int, field: str = "VmHWM") -> float | None:
    """VmHWM (peak RSS) or VmRSS of any process we may read, in MB; None if gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak_rss(pid: int) -> bool:
    """Reset a process's VmHWM to its current RSS (Linux >= 4.0: write 5 to clear_refs); False if refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# ---- databases ------------------------------------------------------------------------------------------

def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql" if url.startswith("postgres") else url.split(":")[0]


@contextmanager
def scratch_database(base_url: str | None, workdir: Path, tag: str):
    """A new empty database for one measurement: a SQLite file in `workdir`, or a database created on
    the PostgreSQL server of `base_url` (needs CREATEDB; the database of `base_url` itself is untouched)
    and dropped afterwards."""
    if not base_url or base_url.startswith("sqlite"):
        path = workdir / f"{tag}.db"
        yield f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bench_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}".lower().replace("-", "_")
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"
                              " AND pid <> pg_backend_pid()"), {"d": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def point_app_at(url: str, data_dir: Path) -> None:
    """Set the environment the app reads and forget any engine or settings already made."""
    os.environ.update({"DATABASE_URL": url, "LABELLOOP_DATABASE_URL": url, "LABELLOOP_DATA_DIR": str(data_dir),
                       "LABELLOOP_SECRET_KEY": "benchmark-only", "LABELLOOP_LOG_LEVEL": "WARNING"})
    if "app.config" in sys.modules:
        from app.config import get_settings
        from app.db import reset_engine_cache

        get_settings.cache_clear()
        reset_engine_cache()


@contextmanager
def workdir(prefix: str, keep: bool = False):
    path = Path(tempfile.mkdtemp(prefix=f"labelloop-{prefix}-"))
    try:
        yield path
    finally:
        if keep:
            print(f"(kept {path})")
        else:
            shutil.rmtree(path, ignore_errors=True)


# ---- synthetic pools ------------------------------------------------------------------------------------

def oracle_label(features) -> str:
    """The gold label of a synthetic tabular row: `pos` exactly when f0 + f1/2 > 0."""
    return "pos" if features[0] + 0.5 * features[1] > 0 else "neg"


def write_tabular_csv(path: Path, n_rows: int, n_features: int = 20, seed: int = 0, chunk: int = 100_000) -> None:
    """`id,f0..f{n-1}` with 4-decimal normal features, written in chunks (bounded memory)."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        fh.write("id," + ",".join(f"f{j}" for j in range(n_features)) + "\n")
        for start in range(0, n_rows, chunk):
            m = min(chunk, n_rows - start)
            X = rng.normal(size=(m, n_features))
            np.savetxt(fh, np.column_stack([np.arange(start, start + m), X]), delimiter=",",
                       fmt=["%d"] + ["%.4f"] * n_features)


def texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """`n` distinct movie-review snippets and their labels, from the bundled Rotten Tomatoes file
    (as benchmarks/bench_strategies.py builds its text pools): the 13,891 originals first, then
    copies with a fifth of the words dropped and the rest shuffled."""
    from tests.data import rotten_tomatoes

    rows = rotten_tomatoes(13_891, seed=seed)
    rng = np.random.default_rng(seed)
    out, labels = [], []
    for i in range(n):
        row = rows[i % len(rows)]
        words = row["text"].split()
        if i >= len(rows):
            keep = rng.random(len(words)) > 0.2
            words = [w for w, k in zip(words, keep, strict=True) if k] or words
            rng.shuffle(words)
        out.append(" ".join(words))
        labels.append(row["category"])
    return out, labels


def write_text_csv(path: Path, n_rows: int, seed: int = 0) -> list[str]:
    """`id,text`; returns the project's labels (Rotten Tomatoes categories)."""
    body, labels = texts(n_rows, seed=seed)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text"])
        for i, text in enumerate(body):
            writer.writerow([i, text])
    return sorted(set(labels))


def text_labels(n: int, seed: int = 0) -> list[str]:
    return texts(min(n, 13_891), seed=seed)[1]


# ---- tables ---------------------------------------------------------------------------------------------

def pct(values, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def latency_stats(samples_s: list[float]) -> dict:
    a = np.asarray(samples_s) * 1000
    return {"n": int(len(a)), "p50": pct(a, 50), "p95": pct(a, 95), "p99": pct(a, 99),
            "max": float(a.max()) if len(a) else float("nan")}


def markdown_table(headers: list[str], rows: list[list]) -> str:
    def cell(v):
        if isinstance(v, float):
            if v != v:
                return "-"
            return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in cells:
        lines.append("| " + " | ".join((v.rjust(w) if v[:1].isdigit() or v[:1] in "-." else v.ljust(w))
                                       for v, w in zip(r, widths, strict=True)) + " |")
    return "\n".join(lines)


def write_json(path: str | None, payload: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=1, default=str))
        print(f"\n(wrote {path})")


def parse_sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        mult = 1
        if part.endswith("k"):
            part, mult = part[:-1], 1_000
        elif part.endswith("m"):
            part, mult = part[:-1], 1_000_000
        out.append(int(float(part) * mult))
    return out


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


# ---- processes ------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_web(port: int, log_path: Path, web_workers: int = 1) -> subprocess.Popen:
    argv = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--no-access-log"]
    if web_workers > 1:
        argv += ["--workers", str(web_workers)]
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)


def start_worker(log_path: Path, poll_seconds: float = 0.2) -> subprocess.Popen:
    env = {**os.environ, "LABELLOOP_WORKER_POLL_SECONDS": str(poll_seconds), "LABELLOOP_LOG_LEVEL": "INFO"}
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode} before answering")
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.2)


def stop(proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    """SIGTERM this one process (our own child), then SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def add_database_args(parser) -> None:
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server (postgresql+psycopg://...) to create scratch databases on; "
                             "default: SQLite files in a temporary directory")
    parser.add_argument("--postgres", action="store_true",
                        help="use $LABELLOOP_TEST_DATABASE_URL (as scripts/with_postgres.sh sets it)")


def database_url(args) -> str | None:
    """The PostgreSQL server to use, or None for SQLite; refuses an empty or unset URL asked for."""
    url = args.database_url
    if args.postgres and not url:
        url = os.environ.get("LABELLOOP_TEST_DATABASE_URL")
        if not url:
            raise SystemExit("--postgres: LABELLOOP_TEST_DATABASE_URL is not set (run under scripts/with_postgres.sh)")
    if args.database_url is not None and not args.database_url.strip():
        raise SystemExit("--database-url is empty (a shell variable expanded before it was set?); "
                         "use --postgres under scripts/with_postgres.sh")
    if url and not url.startswith("postgresql"):
        if url.startswith("sqlite"):
            return None
        raise SystemExit(f"--database-url must be a postgresql URL (SQLite is the default): {url!r}")
    return url
