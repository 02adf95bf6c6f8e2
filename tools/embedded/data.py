"""Real data sets and models, fetched from their upstream URLs (with a second mirror where
one exists) and installed into the store by a ``copy`` recipe.

No sha256: the embedded index is written without downloading them; the first
``ckpm sync`` pins the hash into the project's lock (trust on first use).
"""
from __future__ import annotations

from typing import Any

from ._helpers import entry, urls

MNIST = ("https://storage.googleapis.com/cvdf-datasets/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/")


def mnist_test() -> list[dict[str, Any]]:
    images = [m + "t10k-images-idx3-ubyte.gz" for m in MNIST]
    labels = [m + "t10k-labels-idx1-ubyte.gz" for m in MNIST]
    return [entry(
        "dataset-mnist-test", "1.0.0", kind="dataset",
        tags=["dataset", "mnist", "images", "digits", "image-classification"],
        description="MNIST test set: 10,000 handwritten digits (28x28, IDX format, gzipped) and their labels",
        targets=["*"],
        source=urls(*images),
        install=[{"targets": ["*"], "sources": [urls(*images), urls(*labels)],
                  "steps": [{"kind": "copy", "from": ".", "to": "share/mnist"}]}],
        pubtime="1998-11-01",
    )]


def mobilenet_tflite() -> list[dict[str, Any]]:
    url = ("https://storage.googleapis.com/download.tensorflow.org/models/mobilenet_v1_2018_08_02/"
           "mobilenet_v1_0.25_128_quant.tgz")
    return [entry(
        "model-mobilenet-v1-tflite", "1.0.0", kind="model",
        tags=["model", "mobilenet", "tflite", "image-classification", "quantized"],
        description="MobileNet v1 0.25/128: an 8-bit quantized TensorFlow Lite image classifier (2018-08-02 release)",
        targets=["*"],
        source=urls(url),
        install=[{"targets": ["*"], "steps": [{"kind": "copy", "from": ".", "to": "share/mobilenet_v1_0.25_128_quant"}]}],
        pubtime="2018-08-02",
    )]


def components() -> dict[str, list[dict[str, Any]]]:
    return {"dataset-mnist-test": mnist_test(), "model-mobilenet-v1-tflite": mobilenet_tflite()}
