#!/usr/bin/env python3
"""Generate a synthetic index (format 1) and a project that depends on it, for benchmarks.

    python bench/gen_index.py OUT [--components 10000] [--versions 20] [--seed 1]

Shape of the index:

* a core of shared libraries ``core-000`` .. ``core-299``; each depends on 1-3
  lower-numbered cores (from the 40 below it, so closures are deep);
* leaves ``leaf-00000`` ..; each depends on 2-5 cores with version ranges;
* versions ``1.0.0 .. 1.4.0, 2.0.0 .. 2.4.0, ...`` (five minors per major);
* conflicts that force older choices: in the newest major, about a third of a
  core's dependencies move in lockstep (``core-b 4.x`` requires ``core-a >=4.0``),
  while about one leaf dependency in eight caps a core (``core-a <2.0`` or
  ``>=1.0,<3.0``). Every older major is loose (``>=1.0``), so a solution
  always exists, but the newest candidates are not always it: with the default
  seed the baseline resolver backtracks (bench/README.md has the figures).
  ``--core-caps`` adds caps between cores too, which arrive late and make
  backtracking explode: a stress test.
* every component carries the tags ``bench``, ``core`` or ``leaf`` and
  ``group-NN`` (NN = index mod 100): each group tag is on ~1% of the components.

It also writes ``summary.jsonl`` (the same bytes ``ckpm.index.writer.reindex``
would write) and ``OUT/../project/ckpm.toml`` whose ``[dependencies]`` are 10
leaves with large closures, at least 3 of which cap a core. Deterministic for a
given seed.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ckpm.index.layout import entry_path  # noqa: E402

PER_MAJOR = 5  # minor releases per major
WINDOW = 40  # a core depends on cores at most this far below it
N_ROOTS = 10
P_LOCK = 0.35  # default share of core->core edges in lockstep in the newest major
DESCRIPTION = "synthetic component for ckpm benchmarks"


def version_list(n: int) -> list[str]:
    return [f"{1 + i // PER_MAJOR}.{i % PER_MAJOR}.0" for i in range(n)]


class Plan:
    """The dependency graph, drawn from the seed; no I/O."""

    def __init__(
        self, components: int, versions: int, seed: int, core: int = 300,
        lockstep: float = P_LOCK, core_caps: float = 0.0,
    ) -> None:
        rng = random.Random(seed)
        self.versions = version_list(versions)
        self.top = 1 + (versions - 1) // PER_MAJOR  # the newest major
        n_core = max(2, min(core, components // 4))
        width = max(3, len(str(n_core - 1)))
        self.cores = [f"core-{i:0{width}d}" for i in range(n_core)]
        self.leaves = [f"leaf-{i:05d}" for i in range(components - n_core)]
        # core i -> [(core j, style)]: "lock" = lockstep in the newest major,
        # "cap" = a legacy core that never moved past major 2, "loose" otherwise
        self.core_deps: list[list[tuple[int, str]]] = [[]]
        for i in range(1, n_core):
            lo = max(0, i - WINDOW)
            k = min(rng.randint(1, 3), i - lo)
            picks = sorted(rng.sample(range(lo, i), k))
            styles = []
            for j in picks:
                r = rng.random()
                styles.append((j, "cap" if (self.top >= 3 and r < core_caps) else "lock" if r < lockstep else "loose"))
            self.core_deps.append(styles)
        # leaf -> [(core j, range)]
        self.leaf_deps: list[list[tuple[int, str]]] = []
        for _ in self.leaves:
            k = rng.randint(2, 5)
            picks = sorted(rng.sample(range(n_core), k))
            deps = []
            for j in picks:
                r = rng.random()
                if self.top >= 2 and r < 0.07:
                    req = "<2.0"
                elif self.top >= 3 and r < 0.125:
                    req = ">=1.0,<3.0"
                elif r < 0.5:
                    req = ">=1.0"
                else:
                    req = "*"
                deps.append((j, req))
            self.leaf_deps.append(deps)

    # ------------------------------------------------------------------ lines
    def core_lines(self, i: int) -> list[str]:
        name = self.cores[i]
        tags = ["bench", "core", f"group-{i % 100:02d}"]
        out = []
        for v in self.versions:
            major = int(v.split(".", 1)[0])
            deps = []
            for j, style in self.core_deps[i]:
                if style == "cap":
                    req = ">=1.0,<3.0"
                elif style == "lock" and major == self.top and self.top >= 2:
                    req = f">={self.top}.0"
                else:
                    req = ">=1.0"
                deps.append({"name": self.cores[j], "req": req})
            out.append(_line(name, v, tags, deps))
        return out

    def leaf_lines(self, n: int) -> list[str]:
        name = self.leaves[n]
        tags = ["bench", "leaf", f"group-{(len(self.cores) + n) % 100:02d}"]
        deps = [{"name": self.cores[j], "req": req} for j, req in self.leaf_deps[n]]
        return [_line(name, v, tags, deps) for v in self.versions]

    def summary_line(self, name: str, tags: list[str]) -> str:
        d = {"name": name, "kind": "lib", "tags": sorted(tags), "description": DESCRIPTION, "versions": self.versions}
        return json.dumps(d, separators=(",", ":"))

    # ------------------------------------------------------------------ roots
    def roots(self, n: int = N_ROOTS) -> list[str]:
        """Leaves with the largest closures; at least 3 of them cap a core (so that the newest core versions conflict)."""
        closure: list[frozenset[int]] = []
        for i, cdeps in enumerate(self.core_deps):
            reach = {i}
            for j, _ in cdeps:
                reach |= closure[j]
            closure.append(frozenset(reach))
        sizes: list[tuple[int, bool, int]] = []
        for k, ldeps in enumerate(self.leaf_deps):
            seen: set[int] = set()
            for j, _ in ldeps:
                seen |= closure[j]
            has_cap = any(req.startswith("<") or ",<" in req for _, req in ldeps)
            sizes.append((len(seen), has_cap, k))
        by_size = sorted(sizes, key=lambda t: (-t[0], t[2]))
        capped_roots = [t for t in by_size if t[1]][:3]
        chosen = {t[2] for t in capped_roots}
        for t in by_size:
            if len(chosen) >= n:
                break
            chosen.add(t[2])
        return [self.leaves[k] for k in sorted(chosen)]


def _line(name: str, version: str, tags: list[str], deps: list[dict]) -> str:
    d = {
        "name": name, "version": version, "kind": "lib", "tags": tags, "description": DESCRIPTION,
        "targets": ["*"], "deps": deps,
        "source": {"urls": [f"https://example.org/bench/{name}-{version}.tar.gz"]},
        "yanked": False,
    }
    return json.dumps(d, separators=(",", ":"))


def write(plan: Plan, out: Path, project: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({"format": 1, "name": "bench", "api": None}, indent=2) + "\n")
    made: set[Path] = set()
    summary: dict[str, str] = {}
    lines_written = 0

    def put(name: str, lines: list[str], tags: list[str]) -> None:
        nonlocal lines_written
        p = out / entry_path(name)
        if p.parent not in made:
            p.parent.mkdir(parents=True, exist_ok=True)
            made.add(p.parent)
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
        summary[name] = plan.summary_line(name, tags)
        lines_written += len(lines)

    for i, name in enumerate(plan.cores):
        put(name, plan.core_lines(i), ["bench", "core", f"group-{i % 100:02d}"])
    for n, name in enumerate(plan.leaves):
        put(name, plan.leaf_lines(n), ["bench", "leaf", f"group-{(len(plan.cores) + n) % 100:02d}"])
    (out / "summary.jsonl").write_text("".join(summary[k] + "\n" for k in sorted(summary)), encoding="utf-8")

    roots = plan.roots()
    project.mkdir(parents=True, exist_ok=True)
    toml = [
        "[project]",
        'name = "bench"',
        'version = "0.1.0"',
        "",
        "[[index]]",
        'name = "bench"',
        f"url = {json.dumps(str(out.resolve()))}",
        "",
        "[dependencies]",
        *(f'{r} = "*"' for r in roots),
        "",
    ]
    (project / "ckpm.toml").write_text("\n".join(toml), encoding="utf-8")
    return {"components": len(summary), "lines": lines_written, "roots": roots}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate a synthetic format-1 index and a project using it.")
    ap.add_argument("out", type=Path, help="index folder to write (created)")
    ap.add_argument("--components", type=int, default=10000)
    ap.add_argument("--versions", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--core", type=int, default=300, help="number of core libraries (default 300)")
    ap.add_argument("--lockstep", type=float, default=P_LOCK,
                    help=f"share of core->core edges in lockstep in the newest major (default {P_LOCK})")
    ap.add_argument("--core-caps", type=float, default=0.0,
                    help="share of core->core edges capped below major 3 in every version (default 0; "
                         "even 0.01 can make resolution backtrack for minutes: a stress test, not a benchmark)")
    ap.add_argument("--project", type=Path, help="project folder (default: OUT/../project)")
    ap.add_argument("--verify-summary", action="store_true",
                    help="check summary.jsonl against ckpm.index.writer.reindex (slow)")
    args = ap.parse_args(argv)
    out: Path = args.out.resolve()
    if (out / "config.json").exists():
        print(f"{out}: already an index; remove it first", file=sys.stderr)
        return 2
    project = (args.project or out.parent / "project").resolve()
    t0 = time.perf_counter()
    plan = Plan(args.components, args.versions, args.seed, args.core, args.lockstep, args.core_caps)
    info = write(plan, out, project)
    dt = time.perf_counter() - t0
    print(f"wrote {out}: {info['components']} components, {info['lines']} lines in {dt:.2f} s")
    print(f"wrote {project / 'ckpm.toml'}: roots {' '.join(info['roots'])}")
    if args.verify_summary:
        import shutil
        import tempfile

        from ckpm.index.writer import reindex

        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "index"
            shutil.copytree(out, copy)
            reindex(copy)
            same = (copy / "summary.jsonl").read_bytes() == (out / "summary.jsonl").read_bytes()
        print(f"summary.jsonl {'matches' if same else 'DIFFERS FROM'} ckpm.index.writer.reindex")
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
