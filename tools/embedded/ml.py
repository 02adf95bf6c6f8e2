"""Python ML libraries: TensorFlow, NumPy, PyTorch, ONNX Runtime.

Versions are the final releases published on PyPI. Dates are given only where
we are confident of them (release announcements); otherwise ``pubtime`` is left
out. Dependency ranges follow each release's declared requirements, with an
upper bound ``<2`` on NumPy added for binaries built against the NumPy 1.x ABI
(a careful curator's choice: those wheels break on NumPy 2).
"""
from __future__ import annotations

from typing import Any

from ._helpers import dep, entry, pick, urls, versions

# --------------------------------------------------------------------------- TensorFlow
# 1.13.0 and 1.15.1 were never published as final releases; 2.16.0 neither
# (2.16.1 was the first 2.16 release on PyPI). 2.15.0.post1 is a real PyPI
# post-release (dependency metadata fix) built from the v2.15.0 sources.
TENSORFLOW = versions(
    """
    1.13.1 2019-02-26
    1.13.2
    1.14.0 2019-06-18
    1.15.0 2019-10-16
    1.15.2 2020-01-27
    1.15.3 1.15.4 1.15.5
    2.0.0 2019-09-30
    2.0.1 2020-01-27
    2.0.2 2.0.3 2.0.4
    2.1.0 2020-01-08
    2.1.1 2.1.2 2.1.3 2.1.4
    2.2.0 2020-05-07
    2.2.1 2.2.2 2.2.3
    2.3.0 2020-07-27
    2.3.1 2.3.2 2.3.3 2.3.4
    2.4.0 2020-12-14
    2.4.1 2.4.2 2.4.3 2.4.4
    2.5.0 2021-05-13
    2.5.1 2.5.2 2.5.3
    2.6.0 2021-08-11
    2.6.1 2.6.2 2.6.3 2.6.4 2.6.5
    2.7.0 2021-11-04
    2.7.1 2.7.2 2.7.3 2.7.4
    2.8.0 2022-02-02
    2.8.1 2.8.2 2.8.3 2.8.4
    2.9.0 2022-05-16
    2.9.1 2.9.2 2.9.3
    2.10.0 2022-09-06
    2.10.1
    2.11.0 2022-11-18
    2.11.1
    2.12.0
    2.12.1
    2.13.0 2023-07-05
    2.13.1
    2.14.0 2023-09-26
    2.14.1
    2.15.0 2023-11-14
    2.15.0.post1 2.15.1
    2.16.1 2.16.2
    2.17.0 2024-07-11
    2.17.1
    2.18.0 2024-10-24
    2.18.1
    2.19.0
    """
)

TF_NUMPY = [
    ("1.13", ">=1.13.3,<2"),
    ("1.14", ">=1.14.5,<2"),
    ("1.15", ">=1.16.0,<2"),
    ("2.0", ">=1.16.0,<2"),
    ("2.2", ">=1.16.0,<1.19"),
    ("2.4", "~=1.19.2"),
    ("2.7", ">=1.14.5,<2"),
    ("2.8", ">=1.20,<2"),
    ("2.12", ">=1.22,<1.24"),
    ("2.13", ">=1.22,<=1.24.3"),
    ("2.14", ">=1.23.5,<2"),
    ("2.18", ">=1.26.0,<2.1"),
    ("2.19", ">=1.26.0,<2.2"),
]

TF_PYTHON = [
    ("1.13", ">=3.5,<3.8"),
    ("2.2", ">=3.5,<3.9"),
    ("2.4", ">=3.6,<3.9"),
    ("2.5", ">=3.6,<3.10"),
    ("2.7", ">=3.7,<3.10"),
    ("2.8", ">=3.7,<3.11"),
    ("2.12", ">=3.8,<3.12"),
    ("2.14", ">=3.9,<3.12"),
    ("2.16", ">=3.9,<3.13"),
]

TF_TARGETS = [
    ("1.13", ["linux-x86_64", "macos-x86_64", "windows-x86_64"]),
    ("2.10", ["linux-x86_64", "linux-aarch64", "macos-x86_64", "windows-x86_64"]),
    ("2.13", ["linux-x86_64", "linux-aarch64", "macos-x86_64", "macos-aarch64", "windows-x86_64"]),
    ("2.17", ["linux-x86_64", "linux-aarch64", "macos-aarch64", "windows-x86_64"]),
]


def _pip(package: str, version: str, targets: list[str]) -> dict[str, Any]:
    return {"targets": list(targets), "steps": [{"kind": "pip", "requirements": [f"{package}=={version}"]}]}


def tensorflow() -> list[dict[str, Any]]:
    out = []
    for v, date in TENSORFLOW:
        targets = pick(v, TF_TARGETS)
        tag = "v" + v.replace(".post1", "")
        out.append(entry(
            "lib-tensorflow", v, kind="lib",
            tags=["lib", "python", "tensorflow", "ml"],
            description="TensorFlow: an end-to-end platform for machine learning (Python package)",
            targets=targets,
            deps=[dep("lib-numpy", pick(v, TF_NUMPY)), dep("__python", pick(v, TF_PYTHON))],
            source=urls(f"https://github.com/tensorflow/tensorflow/archive/refs/tags/{tag}.tar.gz"),
            detect=[{"python_package": "tensorflow"}],
            install=[_pip("tensorflow", v, targets)],
            pubtime=date,
        ))
    return out


# --------------------------------------------------------------------------- NumPy
NUMPY = versions(
    """
    1.13.0 2017-06-07
    1.13.1 1.13.2 1.13.3
    1.14.0 2018-01-06
    1.14.1 1.14.2 1.14.3 1.14.4 1.14.5 1.14.6
    1.15.0 2018-07-23
    1.15.1 1.15.2 1.15.3 1.15.4
    1.16.0 2019-01-14
    1.16.1 1.16.2 1.16.3 1.16.4 1.16.5 1.16.6
    1.17.0 2019-07-26
    1.17.1 1.17.2 1.17.3 1.17.4 1.17.5
    1.18.0 2019-12-22
    1.18.1 1.18.2 1.18.3 1.18.4 1.18.5
    1.19.0 2020-06-20
    1.19.1 1.19.2 1.19.3 1.19.4 1.19.5
    1.20.0 2021-01-30
    1.20.1 1.20.2 1.20.3
    1.21.0 2021-06-22
    1.21.1 1.21.2 1.21.3 1.21.4 1.21.5 1.21.6
    1.22.0 2021-12-31
    1.22.1 1.22.2 1.22.3 1.22.4
    1.23.0 2022-06-22
    1.23.1 1.23.2 1.23.3 1.23.4 1.23.5
    1.24.0 2022-12-18
    1.24.1 1.24.2 1.24.3 1.24.4
    1.25.0 2023-06-17
    1.25.1 1.25.2
    1.26.0 2023-09-16
    1.26.1 1.26.2 1.26.3
    1.26.4 2024-02-05
    2.0.0 2024-06-16
    2.0.1 2.0.2
    2.1.0 2024-08-18
    2.1.1 2.1.2 2.1.3
    2.2.0 2024-12-08
    2.2.1 2.2.2 2.2.3 2.2.4 2.2.5 2.2.6
    2.3.0 2025-06-07
    2.3.1 2.3.2 2.3.3
    """
)

NUMPY_PYTHON = [
    ("1.13", ">=3.4"),
    ("1.16", ">=3.5"),
    ("1.19", ">=3.6"),
    ("1.20", ">=3.7"),
    ("1.21", ">=3.7,<3.11"),
    ("1.22", ">=3.8"),
    ("1.25", ">=3.9"),
    ("1.26", ">=3.9,<3.13"),
    ("2.0", ">=3.9"),
    ("2.1", ">=3.10"),
    ("2.3", ">=3.11"),
]


def numpy() -> list[dict[str, Any]]:
    targets = ["linux-*", "macos-*", "windows-*"]
    return [
        entry(
            "lib-numpy", v, kind="lib",
            tags=["lib", "python", "numpy", "array"],
            description="NumPy: the fundamental package for array computing with Python",
            targets=targets,
            deps=[dep("__python", pick(v, NUMPY_PYTHON))],
            source=urls(f"https://github.com/numpy/numpy/archive/refs/tags/v{v}.tar.gz"),
            detect=[{"python_package": "numpy"}],
            install=[_pip("numpy", v, targets)],
            pubtime=date,
        )
        for v, date in NUMPY
    ]


# --------------------------------------------------------------------------- PyTorch
TORCH = versions(
    """
    1.0.0 2018-12-07
    1.0.1
    1.1.0 2019-04-30
    1.2.0 2019-08-08
    1.3.0 2019-10-10
    1.3.1
    1.4.0 2020-01-15
    1.5.0 2020-04-21
    1.5.1
    1.6.0 2020-07-28
    1.7.0 2020-10-27
    1.7.1
    1.8.0 2021-03-04
    1.8.1
    1.9.0 2021-06-15
    1.9.1
    1.10.0 2021-10-21
    1.10.1 1.10.2
    1.11.0 2022-03-10
    1.12.0 2022-06-28
    1.12.1
    1.13.0 2022-10-28
    1.13.1
    2.0.0 2023-03-15
    2.0.1
    2.1.0 2023-10-04
    2.1.1 2.1.2
    2.2.0 2024-01-30
    2.2.1 2.2.2
    2.3.0 2024-04-24
    2.3.1
    2.4.0 2024-07-24
    2.4.1
    2.5.0 2024-10-17
    2.5.1
    2.6.0 2025-01-29
    2.7.0 2025-04-23
    2.7.1
    2.8.0
    """
)

TORCH_PYTHON = [
    ("1.0", ">=3.5"),
    ("1.6", ">=3.6.2"),
    ("1.11", ">=3.7"),
    ("2.0", ">=3.8"),
    ("2.6", ">=3.9"),
]

TORCH_TARGETS = [
    ("1.0", ["linux-x86_64", "macos-x86_64", "windows-x86_64"]),
    ("1.13", ["linux-x86_64", "linux-aarch64", "macos-x86_64", "macos-aarch64", "windows-x86_64"]),
    ("2.3", ["linux-x86_64", "linux-aarch64", "macos-aarch64", "windows-x86_64"]),
]


def torch() -> list[dict[str, Any]]:
    out = []
    for v, date in TORCH:
        targets = pick(v, TORCH_TARGETS)
        numpy_req = pick(v, [("1.0", "<2"), ("2.3", "*")])
        out.append(entry(
            "lib-torch", v, kind="lib",
            tags=["lib", "python", "torch", "pytorch", "ml"],
            description="PyTorch: tensors and dynamic neural networks in Python with strong GPU acceleration",
            targets=targets,
            deps=[dep("lib-numpy", numpy_req, optional=True), dep("__python", pick(v, TORCH_PYTHON))],
            source=urls(f"https://github.com/pytorch/pytorch/archive/refs/tags/v{v}.tar.gz"),
            detect=[{"python_package": "torch"}],
            install=[_pip("torch", v, targets)],
            pubtime=date,
        ))
    return out


# --------------------------------------------------------------------------- ONNX Runtime
# 1.13.0 and 1.17.2 were not published on PyPI (1.13.1 / 1.17.3 were); 1.19.1 neither.
ONNXRUNTIME = versions(
    """
    1.8.0 1.8.1 1.8.2
    1.9.0
    1.10.0
    1.11.0 1.11.1
    1.12.0 1.12.1
    1.13.1
    1.14.0 1.14.1
    1.15.0 2023-05-24
    1.15.1 2023-06-16
    1.16.0 2023-09-19
    1.16.1 2023-10-11
    1.16.2 2023-11-09
    1.16.3 2023-11-20
    1.17.0 2024-01-31
    1.17.1 2024-02-25
    1.17.3 2024-04-12
    1.18.0 2024-05-17
    1.18.1 2024-06-27
    1.19.0 2024-08-15
    1.19.2 2024-09-04
    1.20.0 2024-11-01
    1.20.1 2024-11-21
    1.21.0 2025-03-08
    1.21.1 2025-04-18
    1.22.0 2025-05-09
    1.22.1 2025-07-10
    1.23.0 2025-09-25
    1.23.1 2025-10-08
    1.23.2 2025-10-22
    """
)

ORT_NUMPY = [("1.8", ">=1.16.6,<2"), ("1.15", ">=1.21.6,<2"), ("1.19", ">=1.21.6")]
ORT_PYTHON = [("1.8", ">=3.6"), ("1.10", ">=3.7"), ("1.14", ">=3.8"), ("1.20", ">=3.10")]
ORT_TARGETS = [
    ("1.8", ["linux-x86_64", "linux-aarch64", "macos-x86_64", "windows-x86_64"]),
    ("1.12", ["linux-x86_64", "linux-aarch64", "macos-x86_64", "macos-aarch64", "windows-x86_64"]),
]


def onnxruntime() -> list[dict[str, Any]]:
    out = []
    for v, date in ONNXRUNTIME:
        targets = pick(v, ORT_TARGETS)
        out.append(entry(
            "lib-onnxruntime", v, kind="lib",
            tags=["lib", "python", "onnx", "onnxruntime", "ml"],
            description="ONNX Runtime: a cross-platform inference engine for ONNX models (Python package)",
            targets=targets,
            deps=[dep("lib-numpy", pick(v, ORT_NUMPY)), dep("__python", pick(v, ORT_PYTHON))],
            source=urls(f"https://github.com/microsoft/onnxruntime/archive/refs/tags/v{v}.tar.gz"),
            detect=[{"python_package": "onnxruntime"}],
            install=[_pip("onnxruntime", v, targets)],
            pubtime=date,
        ))
    return out


def components() -> dict[str, list[dict[str, Any]]]:
    return {
        "lib-tensorflow": tensorflow(),
        "lib-numpy": numpy(),
        "lib-torch": torch(),
        "lib-onnxruntime": onnxruntime(),
    }
