"""Demo components for this repository's own demo project (``ckpm.toml`` at the root).

They are not published software: their archives are named under https://example.org/ckpm/,
and the versions this repository ships (hello-images 1.1.0, hello-ckpm 0.3.0) are in
``vendor/example.org/ckpm/`` — the demo project maps that URL prefix to the folder in its
``[mirrors]``, so ``ckpm run`` works with no network. Their sha256 are those of the files in
``vendor/`` (made by ``tools/make_demo_data.py``; tests/test_embedded_index.py checks them
against the files), never made up.
"""
from __future__ import annotations

from typing import Any

from ._helpers import dep, entry, urls


def _copy(url: str) -> dict[str, Any]:
    return {"targets": ["*"], "sources": [{"urls": [url]}], "steps": [{"kind": "copy"}]}


SHIPPED = {  # file name -> (sha256, size) of what vendor/example.org/ckpm/ holds
    "hello-images-1.1.0.tar.gz": ("3d4590c055aac543419711bc55417aeaf76006ad82de1d47cbc6844b88d2e75a", 449234),
    "hello-ckpm-0.3.0.tar.gz": ("dd773359c8f174bbb5a0efa3f62c1f03f3ca78e0f66beb006140093fd36907ef", 10197),
}


def shipped(name: str) -> dict[str, Any]:
    sha, size = SHIPPED[name]
    return {"urls": [f"https://example.org/ckpm/{name}"], "sha256": sha, "size": size}


def corners_run(prefix: str) -> dict[str, Any]:
    """The [run] table of the image-corners program, its sources under ``prefix``."""
    return {
        "sources": [f"{prefix}corners.c", f"{prefix}pgm.c"],
        "binary": "corners",
        "cflags": ["-std=c99", "-O2"],
        "input": "dataset-hello-images",
        "command": "corners",
        "timeout": 120,
        "flags": {"speed": ["-O3"], "size": ["-Os"], "debug": ["-O0", "-g"]},
        "params": {"threshold": "40"},
        "commands": {
            "corners": {"args": ["{input}/images", "{out}", "{param.threshold}"]},
            "blur": {"args": ["--blur", "{input}/images", "{out}", "{param.threshold}"]},
            "fast": {"args": ["--score=fast", "{input}/images", "{out}", "{param.threshold}"]},
        },
        "validate": {"exists": ["metrics.json", "img-01.pgm"], "stdout": ["images: 8"],
                     "metrics": [{"name": "images", "equals": 8}, {"name": "corners", "min": 1}]},
        "metrics": {"corners": {"json": "corners", "file": "metrics.json"},
                    "images": {"regex": "images: ([0-9]+)"}},
    }


def program() -> list[dict[str, Any]]:
    out = []
    for v in ("0.1.0", "0.2.0"):
        url = f"https://example.org/ckpm/hello-ckpm-{v}.tar.gz"
        out.append(entry(
            "program-hello-ckpm", v, kind="program",
            tags=["program", "demo", "image-classification"],
            description="Demo: a tiny C program that classifies the hello-images data set (ckpm's own demo)",
            targets=["linux-*", "macos-*"],
            deps=[
                dep("compiler", ">=9", tags=["compiler", "lang-c"], kind="build"),
                dep("dataset-hello-images", ">=1"),
            ],
            source=urls(url),
            install=[{"targets": ["linux-*", "macos-*"], "sources": [{"urls": [url]}], "steps": [{"kind": "make"}]}],
        ))
    src = shipped("hello-ckpm-0.3.0.tar.gz")
    out.append(entry(
        "program-hello-ckpm", "0.3.0", kind="program",
        tags=["program", "demo", "image-corners", "corner-detection"],
        description="Demo: image-corners, a FAST-9 + Harris corner detector over PGM images (C99, integers only)",
        targets=["linux-*", "macos-*"],
        deps=[
            dep("compiler", ">=9", tags=["compiler", "lang-c"], kind="build"),
            dep("dataset-hello-images", ">=1.1"),
        ],
        source=src,
        install=[{"targets": ["*"], "sources": [src], "steps": [{"kind": "copy", "to": "src"}]}],
        run=corners_run("src/"),
        pubtime="2026-12-02",
    ))
    return out


def dataset() -> list[dict[str, Any]]:
    return [
        entry(
            "dataset-hello-images", v, kind="dataset",
            tags=["dataset", "demo", "images"],
            description="Demo: a handful of small images for ckpm's demo program",
            targets=["*"],
            source=urls(f"https://example.org/ckpm/hello-images-{v}.tar.gz"),
            install=[_copy(f"https://example.org/ckpm/hello-images-{v}.tar.gz")],
        )
        for v in ("1.0.0",)
    ] + [entry(
        "dataset-hello-images", "1.1.0", kind="dataset",
        tags=["dataset", "demo", "images", "pgm"],
        description="Demo: eight 512x512 grayscale PGM images (shapes, checkerboards, a little noise) in images/",
        targets=["*"],
        source=shipped("hello-images-1.1.0.tar.gz"),
        install=[{"targets": ["*"], "steps": [{"kind": "copy"}]}],
        pubtime="2026-12-02",
    )]


def model() -> list[dict[str, Any]]:
    url = "https://example.org/ckpm/hello-mobilenet-1.0.0.tar.gz"
    return [
        entry(
            "model-hello-mobilenet", "1.0.0", kind="model",
            tags=["model", "demo", "image-classification", "mobilenet"],
            description="Demo: a placeholder MobileNet-style model for ckpm's demo project",
            targets=["*"],
            source=urls(url),
            install=[_copy(url)],
        )
    ]


def components() -> dict[str, list[dict[str, Any]]]:
    return {
        "program-hello-ckpm": program(),
        "dataset-hello-images": dataset(),
        "model-hello-mobilenet": model(),
    }
