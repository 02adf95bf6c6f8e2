"""Download throughput: ckpm's fetch_file against curl, on a loopback HTTP server.

    python bench/bench_download.py [--runs 5] [--mb 200]

A file of random bytes is written once under bench/_work/ (``download-<MB>M.bin``), served by
a separate server process (this script with ``--serve``: http.server with the body sent by
``socket.sendfile``, so the server is not the bottleneck), then fetched ``--runs`` times by
``fetch_file`` (a fresh cache folder each run, sha256 given: a full download, hash check,
fsync and rename) and by ``curl -s -o FILE URL``. Prints the median time, MB/s and the ratio
ckpm/curl (the issue's target: at least 0.8). Not run by the tests.
"""
from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
sys.path.insert(0, str(HERE.parent))


class SendfileHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; file bodies go out with sendfile (zero copy)."""

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        self.wfile.flush()
        self.connection.sendfile(source)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(folder: str, port_file: str) -> None:
    """Run the server (in its own process); write the port to ``port_file`` once listening."""
    os.chdir(folder)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SendfileHandler)
    Path(port_file).write_text(str(httpd.server_address[1]))
    httpd.serve_forever()


def make_file(mb: int) -> tuple[Path, str]:
    """The test file (random, written once) and its sha256."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"download-{mb}M.bin"
    if not path.exists() or path.stat().st_size != mb << 20:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for _ in range(mb):
                f.write(os.urandom(1 << 20))
        os.replace(tmp, path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return path, h.hexdigest()


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port_file = Path(tempfile.mkdtemp(prefix="ckpm-bench-")) / "port"
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(folder), str(port_file)])
    for _ in range(200):
        if port_file.exists() and port_file.read_text():
            return proc, int(port_file.read_text())
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("the server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mb", type=int, default=200, help="size of the test file in MiB")
    ap.add_argument("--serve", nargs=2, metavar=("FOLDER", "PORT_FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    from ckpm.fetch import fetch_file

    path, digest = make_file(args.mb)
    if not shutil.which("curl"):
        raise SystemExit("curl is not on PATH")
    proc, port = start_server(path.parent)
    url = f"http://127.0.0.1:{port}/{path.name}"
    size = path.stat().st_size
    times: dict[str, list[float]] = {"ckpm": [], "curl": []}
    try:
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="ckpm-bench-", dir=WORK) as tmp:
                os.sync()  # the previous run's dirty pages are not this run's cost
                t = time.perf_counter()
                got = fetch_file([url], sha256=digest, cache_dir=Path(tmp))
                times["ckpm"].append(time.perf_counter() - t)
                assert got.size == size and not got.cached
            with tempfile.TemporaryDirectory(prefix="ckpm-bench-", dir=WORK) as tmp:
                out = Path(tmp) / "file"
                os.sync()
                t = time.perf_counter()
                subprocess.run(["curl", "-s", "-o", str(out), url], check=True)
                times["curl"].append(time.perf_counter() - t)
                assert out.stat().st_size == size
    finally:
        proc.terminate()
        proc.wait()
    med = {k: statistics.median(v) for k, v in times.items()}
    mbs = {k: size / (1 << 20) / v for k, v in med.items()}
    best = {k: size / (1 << 20) / min(v) for k, v in times.items()}
    print(f"file: {size / (1 << 20):.0f} MiB, {args.runs} runs each (MB/s are MiB/s)")
    for k in ("ckpm", "curl"):
        runs = " ".join(f"{x:.3f}" for x in times[k])
        print(f"{k:5} median {med[k]:6.3f} s  {mbs[k]:7.1f} MB/s   best {best[k]:7.1f} MB/s   (runs: {runs})")
    print(f"ratio ckpm/curl throughput: {mbs['ckpm'] / mbs['curl']:.2f} (medians), "
          f"{best['ckpm'] / best['curl']:.2f} (best runs)")


if __name__ == "__main__":
    main()
