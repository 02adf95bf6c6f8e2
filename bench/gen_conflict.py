#!/usr/bin/env python3
"""Generate a conflict-heavy synthetic ecosystem with a planted solution, for resolver benchmarks.

    python bench/gen_conflict.py OUT [--n 2000] [--m 20] [--c 0.15] [--seed 1] [--roots 10] [--wheels]

The graph:

* ``N`` components ``pkg-0000`` .. ``pkg-NNNN`` with ``M`` versions each
  (``1.0.0 1.1.0 1.2.0 1.3.0 2.0.0 ..``: four minors per major);
* topologically ordered: component ``i`` depends only on components ``j < i``,
  drawn with a strong skew toward 0 (``j = int(i * r**3)``), so the low
  indices are popular leaf libraries that almost everything reaches;
* each component has a base set of 1-5 dependencies; each version keeps it,
  drops one or adds one (1-5 per version);
* a planted solution: every component gets a planted version (the newest
  about a third of the time, else an older one). For the planted version of
  ``i``, every dependency range admits the planted version of its target:
  an open range ``>=lo`` (``lo`` at or below it), or with probability ``C`` a
  narrow window (``>=a,<b``, one or two versions wide) around it;
* every other version's ranges are open (``>=lo``, where newer versions of
  ``i`` tend to ask for newer versions of ``j``) or, with probability ``C``, a
  narrow window placed anywhere: these clash with one another and with the
  planted windows, so the newest candidates are often not part of a solution;
* ``--roots R`` roots drawn among the top tenth of the indices (the
  components with the deepest closures), each required as ``>=x`` with ``x``
  at or below its planted version, so the planted assignment (restricted to
  what the roots reach) is a solution.

Files written under OUT:

* ``index/``: index format 1 (config.json, one JSON line per version at
  ``ckpm.index.layout.entry_path(name)``, summary.jsonl), as bench/gen_index.py
  writes it;
* ``project/ckpm.toml``: ``[project]``, one ``[[index]]`` (absolute path to
  ``OUT/index``) and the roots in ``[dependencies]``;
* ``requirements.in``: the roots as ``pkg-0123>=x`` lines;
* ``meta.json``: the arguments, the roots, the planted assignment and, for
  every component, its versions and each version's dependencies (what
  bench/bench_conflict.py's checker reads);
* with ``--wheels``: ``wheels/``, one minimal pure-Python wheel per component
  version (METADATA with ``Requires-Dist``, WHEEL, RECORD; fixed zip
  timestamps), so ``uv pip compile --no-index --find-links OUT/wheels
  OUT/requirements.in`` resolves the same graph.

Deterministic: the same arguments give byte-identical files.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from gen_index import DESCRIPTION, _line  # noqa: E402  (also puts the repo root on sys.path)

from ckpm.index.layout import entry_path  # noqa: E402

PER_MAJOR = 4  # minor releases per major
MAX_DEPS = 5
TAGS = ["bench", "conflict"]
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def version_at(k: int) -> str:
    """The k-th version (0-based): 1.0.0 1.1.0 1.2.0 1.3.0 2.0.0 ...; defined past M too (window ends)."""
    return f"{1 + k // PER_MAJOR}.{k % PER_MAJOR}.0"


class Plan:
    """The graph, drawn from the seed; no I/O. Versions are kept as indices 0..M-1."""

    def __init__(self, n: int, m: int, c: float, seed: int, roots: int = 10) -> None:
        if n < 2 or m < 1:
            raise ValueError("need n >= 2 and m >= 1")
        rng = random.Random(f"gen_conflict:{n}:{m}:{c}:{seed}:{roots}")
        self.n, self.m, self.c, self.seed = n, m, c, seed
        width = max(4, len(str(n - 1)))
        self.names = [f"pkg-{i:0{width}d}" for i in range(n)]
        self.versions = [version_at(k) for k in range(m)]
        # the planted version: the newest about a third of the time, else older (skewed toward new)
        self.planted: list[int] = []
        for _ in range(n):
            if m == 1 or rng.random() < 0.35:
                self.planted.append(m - 1)
            else:
                self.planted.append(m - 2 - int((m - 1) * rng.random() ** 2))
        # deps[i][v] = [(j, req)], j ascending
        self.deps: list[list[list[tuple[int, str]]]] = []
        for i in range(n):
            per_version: list[list[tuple[int, str]]] = []
            if i == 0:
                self.deps.append([[] for _ in range(m)])
                continue
            base = self._draw_targets(rng, i, rng.randint(1, min(MAX_DEPS, i)), set())
            for v in range(m):
                targets = set(base)
                r = rng.random()
                if r < 0.15 and len(targets) > 1:
                    targets.discard(rng.choice(sorted(targets)))
                elif r < 0.30 and len(targets) < min(MAX_DEPS, i):
                    targets |= self._draw_targets(rng, i, 1, targets)
                deps = []
                for j in sorted(targets):
                    deps.append((j, self._req(rng, v, self.planted[i], self.planted[j])))
                per_version.append(deps)
            self.deps.append(per_version)
        # roots: among the top tenth of the indices
        top = max(roots, n // 10)
        picks = sorted(rng.sample(range(n - min(top, n), n), min(roots, n)))
        self.roots: list[tuple[int, str]] = []
        for i in picks:
            lo = int((self.planted[i] + 1) * rng.random() ** 2)
            self.roots.append((i, f">={self.versions[lo]}"))

    @staticmethod
    def _draw_targets(rng: random.Random, i: int, k: int, taken: set[int]) -> set[int]:
        out: set[int] = set()
        while len(out) < k:
            j = min(i - 1, int(i * rng.random() ** 3))
            if j not in taken and j not in out:
                out.add(j)
            elif rng.random() < 0.2:  # popular ones taken: fall back to uniform
                j = rng.randrange(i)
                if j not in taken:
                    out.add(j)
        return out

    def _req(self, rng: random.Random, v: int, planted_i: int, pj: int) -> str:
        m = self.m
        window = rng.random() < self.c
        if v == planted_i:
            if window:
                w = rng.randint(1, 2)
                a = max(0, pj - rng.randint(0, w - 1))
                return f">={version_at(a)},<{version_at(a + w)}"
            return f">={version_at(int((pj + 1) * rng.random() ** 2))}"
        if window:
            w = rng.randint(1, 2)
            a = rng.randrange(m)
            return f">={version_at(a)},<{version_at(a + w)}"
        # open: newer versions of i tend to ask for newer versions of j
        return f">={version_at(min(m - 1, int((v + 1) * rng.random())))}"

    # ------------------------------------------------------------------ views
    def planted_closure(self) -> dict[str, str]:
        """The planted assignment restricted to what the roots reach through planted versions."""
        seen: set[int] = set()
        stack = [i for i, _ in self.roots]
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            stack.extend(j for j, _ in self.deps[i][self.planted[i]])
        return {self.names[i]: self.versions[self.planted[i]] for i in sorted(seen)}

    def meta(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": "ckpm-bench-conflict-1",
            "args": args,
            "versions": self.versions,
            "roots": [[self.names[i], req] for i, req in self.roots],
            "planted": {self.names[i]: self.versions[self.planted[i]] for i in range(self.n)},
            "planted_closure": self.planted_closure(),
            "components": {
                self.names[i]: {
                    "versions": self.versions,
                    "deps": {
                        self.versions[v]: [[self.names[j], req] for j, req in self.deps[i][v]]
                        for v in range(self.m)
                    },
                }
                for i in range(self.n)
            },
        }


# ---------------------------------------------------------------------- writers
def summary_line(name: str, versions: list[str]) -> str:
    d = {"name": name, "kind": "lib", "tags": sorted(TAGS), "description": DESCRIPTION, "versions": versions}
    return json.dumps(d, separators=(",", ":"))


def write_index(plan: Plan, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({"format": 1, "name": "bench", "api": None}, indent=2) + "\n")
    made: set[Path] = set()
    summary = {}
    lines = 0
    for i, name in enumerate(plan.names):
        rows = [
            _line(name, plan.versions[v], TAGS, [{"name": plan.names[j], "req": req} for j, req in plan.deps[i][v]])
            for v in range(plan.m)
        ]
        p = out / entry_path(name)
        if p.parent not in made:
            p.parent.mkdir(parents=True, exist_ok=True)
            made.add(p.parent)
        p.write_text("\n".join(rows) + "\n", encoding="utf-8")
        summary[name] = summary_line(name, plan.versions)
        lines += len(rows)
    (out / "summary.jsonl").write_text("".join(summary[k] + "\n" for k in sorted(summary)), encoding="utf-8")
    return lines


def write_project(plan: Plan, index: Path, project: Path) -> None:
    project.mkdir(parents=True, exist_ok=True)
    toml = [
        "[project]",
        'name = "bench-conflict"',
        'version = "0.1.0"',
        "",
        "[[index]]",
        'name = "bench"',
        f"url = {json.dumps(str(index.resolve()))}",
        "",
        "[dependencies]",
        *(f'{plan.names[i]} = "{req}"' for i, req in plan.roots),
        "",
    ]
    (project / "ckpm.toml").write_text("\n".join(toml), encoding="utf-8")


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def wheel_bytes_files(name: str, version: str, deps: list[tuple[str, str]]) -> tuple[str, list[tuple[str, bytes]]]:
    """The wheel's file name and its members (path, bytes), RECORD last."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    meta = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {dep}{req}" for dep, req in deps]
    wheel = ["Wheel-Version: 1.0", "Generator: ckpm-bench-gen-conflict", "Root-Is-Purelib: true", "Tag: py3-none-any"]
    members = [
        (f"{info}/METADATA", ("\n".join(meta) + "\n").encode()),
        (f"{info}/WHEEL", ("\n".join(wheel) + "\n").encode()),
    ]
    record = "".join(f"{p},{_record_hash(b)},{len(b)}\n" for p, b in members) + f"{info}/RECORD,,\n"
    members.append((f"{info}/RECORD", record.encode()))
    return f"{dist}-{version}-py3-none-any.whl", members


def write_wheels(plan: Plan, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for i, name in enumerate(plan.names):
        for v in range(plan.m):
            deps = [(plan.names[j], req) for j, req in plan.deps[i][v]]
            fname, members = wheel_bytes_files(name, plan.versions[v], deps)
            with zipfile.ZipFile(out / fname, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for path, data in members:
                    zi = zipfile.ZipInfo(path, date_time=ZIP_DATE)
                    zi.compress_type = zipfile.ZIP_DEFLATED
                    zi.external_attr = 0o644 << 16
                    zi.create_system = 3
                    zf.writestr(zi, data)
            count += 1
    return count


def generate(out: Path, n: int, m: int, c: float, seed: int, roots: int = 10, wheels: bool = False) -> dict[str, Any]:
    """Write everything under ``out`` (created). Returns a short report."""
    out = out.resolve()
    plan = Plan(n, m, c, seed, roots)
    args = {"n": n, "m": m, "c": c, "seed": seed, "roots": roots}
    out.mkdir(parents=True, exist_ok=True)
    lines = write_index(plan, out / "index")
    write_project(plan, out / "index", out / "project")
    (out / "requirements.in").write_text("".join(f"{plan.names[i]}{req}\n" for i, req in plan.roots), encoding="utf-8")
    (out / "meta.json").write_text(json.dumps(plan.meta(args), separators=(",", ":")) + "\n", encoding="utf-8")
    nwheels = write_wheels(plan, out / "wheels") if wheels else 0
    return {"out": str(out), "components": n, "lines": lines, "wheels": nwheels,
            "roots": [f"{plan.names[i]}{req}" for i, req in plan.roots],
            "planted_closure": len(plan.planted_closure())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate a conflict-heavy synthetic index with a planted solution.")
    ap.add_argument("out", type=Path, help="folder to write (index/, project/, requirements.in, meta.json, wheels/)")
    ap.add_argument("--n", type=int, default=2000, help="components (default 2000)")
    ap.add_argument("--m", type=int, default=20, help="versions per component (default 20)")
    ap.add_argument("--c", type=float, default=0.15, help="probability of a narrow window range (default 0.15)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--roots", type=int, default=10, help="project roots (default 10)")
    ap.add_argument("--wheels", action="store_true", help="also write OUT/wheels/ for uv pip compile")
    args = ap.parse_args(argv)
    if (args.out / "index" / "config.json").exists():
        print(f"{args.out}: already generated; remove it first", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    info = generate(args.out, args.n, args.m, args.c, args.seed, args.roots, args.wheels)
    dt = time.perf_counter() - t0
    print(f"wrote {info['out']}: {info['components']} components, {info['lines']} lines, "
          f"{info['wheels']} wheels in {dt:.2f} s")
    print(f"roots: {' '.join(info['roots'])}; planted closure: {info['planted_closure']} components")
    return 0


if __name__ == "__main__":
    sys.exit(main())
