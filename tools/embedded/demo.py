"""Demo components for this repository's own demo project (``ckpm.toml`` at the root).

They are not real software: their archives live under https://example.org/ckpm/.
"""
from __future__ import annotations

from typing import Any

from ._helpers import dep, entry, urls


def _copy(url: str) -> dict[str, Any]:
    return {"targets": ["*"], "sources": [{"urls": [url]}], "steps": [{"kind": "copy"}]}


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
        for v in ("1.0.0", "1.1.0")
    ]


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
