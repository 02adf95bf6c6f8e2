"""The package's import arrows run one way: cli, access → ops → api/queries → workspace → resolve → index/detect → model.

Read from the source (every import statement, also those inside functions), so a shortcut
that would make the layers a tangle fails here rather than in review.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "ckpm"

LEAVES = {"ckpm", "ckpm.errors", "ckpm.fsutil", "ckpm.lazy", "ckpm.netutil", "ckpm.gcpause", "ckpm.procutil", "ckpm.report"}
# entry points (``ckpm.access``, ``python -m ckpm``, ``python -m ckpm.detect``) sit on top of everything
ENTRY_POINTS = {"ckpm", "ckpm.__main__", "ckpm.detect.__main__"}
# what the two adapters (the CLI and ``ckpm.access``) may import, beside the leaves: the settings
# they make, and the facade of the library
FACADE = {"ckpm.settings", "ckpm.api", "ckpm.queries", "ckpm.ops"}
# what each layer may import, beside itself and the leaves
ALLOWED: dict[str, set[str]] = {
    "ckpm.model": set(),
    "ckpm.settings": {"ckpm.model"},
    "ckpm.index": {"ckpm.model", "ckpm.settings"},
    "ckpm.detect": {"ckpm.model", "ckpm.settings"},
    "ckpm.resolve": {"ckpm.model", "ckpm.settings", "ckpm.index", "ckpm.detect"},
    # provisioning: downloads and mirrors; safe unpacking and the store; recipes and toolchains
    "ckpm.fetch": {"ckpm.model", "ckpm.settings"},
    "ckpm.store": {"ckpm.model", "ckpm.settings"},
    "ckpm.build": {"ckpm.model", "ckpm.settings", "ckpm.detect", "ckpm.store"},
    # experiments: records, results, plots, reports, tuning (over the pipeline's run function)
    "ckpm.experiment": {"ckpm.model", "ckpm.settings"},
    # `ckpm run`: provision → compile → run → validate → record (over api.sync)
    "ckpm.pipeline": {"ckpm.model", "ckpm.settings", "ckpm.index", "ckpm.detect", "ckpm.resolve", "ckpm.workspace",
                      "ckpm.fetch", "ckpm.store", "ckpm.build", "ckpm.provision", "ckpm.experiment", "ckpm.queries",
                      "ckpm.api", "ckpm.artifact"},
    # artifact bundles (pack, verify, safe unpack): below the pipeline, whose remote runs ship them
    "ckpm.artifact": {"ckpm.model", "ckpm.settings", "ckpm.index", "ckpm.detect", "ckpm.resolve", "ckpm.workspace",
                      "ckpm.fetch", "ckpm.store", "ckpm.build", "ckpm.provision", "ckpm.experiment", "ckpm.queries",
                      "ckpm.api"},
    # `ckpm artifact evaluate`/`inspect`: replays experiments, so above the pipeline
    "ckpm.artifact.evaluate": {"ckpm.model", "ckpm.settings", "ckpm.index", "ckpm.detect", "ckpm.resolve",
                               "ckpm.workspace", "ckpm.fetch", "ckpm.store", "ckpm.build", "ckpm.provision",
                               "ckpm.experiment", "ckpm.queries", "ckpm.api", "ckpm.pipeline", "ckpm.artifact"},
    # `ckpm sync` and friends: the lock made real (uses everything below the API)
    "ckpm.provision": {"ckpm.model", "ckpm.settings", "ckpm.index", "ckpm.detect", "ckpm.resolve",
                       "ckpm.workspace", "ckpm.fetch", "ckpm.store", "ckpm.build"},
    "ckpm.workspace": {"ckpm.model", "ckpm.settings", "ckpm.index", "ckpm.detect", "ckpm.resolve", "ckpm.store"},
    "ckpm.queries": {"ckpm.model", "ckpm.settings", "ckpm.index", "ckpm.detect", "ckpm.resolve", "ckpm.workspace",
                     "ckpm.store"},
    "ckpm.api": {"ckpm.model", "ckpm.settings", "ckpm.index", "ckpm.detect", "ckpm.resolve", "ckpm.workspace",
                 "ckpm.queries", "ckpm.fetch", "ckpm.store", "ckpm.build", "ckpm.provision", "ckpm.experiment"},
    # `ckpm publish`, `yank`, `login`: a maintainer's side of an index (git index writer, registry client)
    "ckpm.publishing": {"ckpm.model", "ckpm.settings", "ckpm.index", "ckpm.detect", "ckpm.build"},
    # `ckpm container`: a project's OCI image (its context is the project, its lock and `vendor`)
    "ckpm.container": {"ckpm.model", "ckpm.settings", "ckpm.workspace", "ckpm.provision", "ckpm.api",
                       "ckpm.artifact"},
    "ckpm.testing": {"ckpm.model", "ckpm.index"},
    # `ckpm results push/pull`: records to and from a registry (its client is publishing's)
    "ckpm.sharing": {"ckpm.model", "ckpm.settings", "ckpm.experiment", "ckpm.publishing"},
    # `ckpm import ck`: CK repositories read as data and written as an index
    "ckpm.ck": {"ckpm.model", "ckpm.settings", "ckpm.index", "ckpm.detect", "ckpm.build"},
    # the commands above the API (cargo's ops/, uv's commands/): what the CLI and access() both call
    "ckpm.ops": {"ckpm.model", "ckpm.settings", "ckpm.index", "ckpm.detect", "ckpm.resolve", "ckpm.workspace",
                 "ckpm.queries", "ckpm.api", "ckpm.fetch", "ckpm.store", "ckpm.build", "ckpm.provision",
                 "ckpm.pipeline", "ckpm.experiment", "ckpm.publishing", "ckpm.ck", "ckpm.artifact",
                 "ckpm.artifact.evaluate", "ckpm.sharing", "ckpm.container"},
    # the adapters: they parse, call the facade (api, queries, ops) and print or return; nothing else
    "ckpm.access_api": FACADE,
    "ckpm.cli": FACADE,
}


def _layer(module: str) -> str:
    for name in sorted(ALLOWED, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    return module


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("ckpm"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ckpm") and node.level == 0:
            out.add(node.module)
    return out


def test_imports_follow_the_layers() -> None:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        layer = _layer(module)
        if module in ENTRY_POINTS:
            continue
        if layer in LEAVES or module in LEAVES:
            allowed: set[str] = set()
        else:
            allowed = ALLOWED.get(layer, set())
        for imp in _imports(path):
            target = _layer(imp)
            if imp in LEAVES or target == layer or target in allowed:
                continue
            bad.append(f"{module} imports {imp}")
    assert not bad, "\n".join(bad)


def test_base_index_does_not_import_its_clients() -> None:
    imports = _imports(ROOT / "index" / "base.py")
    assert not imports & {"ckpm.index.folder", "ckpm.index.git", "ckpm.index.http", "ckpm.index.writer"}
