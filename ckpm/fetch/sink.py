"""Writing a download to disk while hashing it, without slowing the transfer down.

A download does three things per chunk: receive it, write it, hash it. Done one after the
other in one thread, the hash alone (about 1.5 GB/s with SHA instructions) costs as much as
the transfer on a fast link. :class:`HashingSink` moves writing and hashing to a worker
thread, so the next chunk is received while this one is written and hashed (socket reads,
file writes and ``hashlib`` on large buffers all release the GIL). The queue between them
holds at most :data:`QUEUE_CHUNKS` chunks, so memory stays bounded when the disk is slower
than the network.

The file must be durable before it is renamed into the cache (presence there means
verified). One ``fsync`` at the end of a large file waits for all of its bytes to reach the
disk; instead, a third thread calls ``fdatasync`` every :data:`SYNC_EVERY` bytes while the
download goes on, so the final ``fsync`` has little left to do (for 200 MiB on the
benchmark machine: 0.004 s instead of 0.1 s; see bench/README.md, "Downloads").
"""
from __future__ import annotations

import os
import queue
import threading
from typing import IO, Any

#: chunks waiting to be written (each up to ckpm.fetch.download.CHUNK bytes)
QUEUE_CHUNKS = 8
#: start the write-back of the file every this many bytes
SYNC_EVERY = 32 << 20


class SinkError(Exception):
    """Writing the file failed: ``error`` is the OSError."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class HashingSink:
    """Writes chunks to ``out`` and feeds them to ``hasher`` on a worker thread.

    ``out`` should be unbuffered (``open(..., buffering=0)``): the sync thread then sees
    every byte written so far. Use as a context manager: :meth:`write` each chunk (bytes the caller no longer changes),
    then :meth:`finish` to wait for the last write and make the file durable. Leaving the
    block without :meth:`finish` stops the worker and discards nothing already written.
    A write error surfaces as :class:`SinkError` from the next :meth:`write` or :meth:`finish`.
    """

    def __init__(self, out: IO[bytes], hasher: Any) -> None:
        self.out = out
        self.hasher = hasher
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_CHUNKS)
        self._error: OSError | None = None
        self._worker = threading.Thread(target=self._work, name="ckpm-fetch-writer", daemon=True)
        self._sync_wanted = threading.Event()
        self._sync_stop = False
        self._syncer: threading.Thread | None = None
        self._closed = False

    def __enter__(self) -> "HashingSink":
        self._worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def write(self, chunk: bytes) -> None:
        """Queue ``chunk`` (blocks while the queue is full)."""
        if self._error is not None:
            raise SinkError(self._error)
        self._queue.put(chunk)

    def finish(self) -> None:
        """Wait for every chunk to be written and hashed, then fsync the file."""
        self._stop()
        if self._error is not None:
            raise SinkError(self._error)
        try:
            self.out.flush()
            os.fsync(self.out.fileno())
        except OSError as e:
            raise SinkError(e) from None

    def _stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._worker.join()
        if self._syncer is not None:
            self._sync_stop = True
            self._sync_wanted.set()
            self._syncer.join()

    def _work(self) -> None:
        since_sync = 0
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            if self._error is not None:
                continue  # drain, so that a blocked write() returns
            try:
                _write_all(self.out, chunk)
            except OSError as e:
                self._error = e
                continue
            self.hasher.update(chunk)
            since_sync += len(chunk)
            if since_sync >= SYNC_EVERY:
                since_sync = 0
                self._start_sync()

    def _start_sync(self) -> None:
        if self._syncer is None:
            self._syncer = threading.Thread(target=self._sync_loop, name="ckpm-fetch-sync", daemon=True)
            self._syncer.start()
        self._sync_wanted.set()

    def _sync_loop(self) -> None:
        while True:
            self._sync_wanted.wait()
            self._sync_wanted.clear()
            if self._sync_stop:
                return
            try:
                os.fdatasync(self.out.fileno()) if hasattr(os, "fdatasync") else os.fsync(self.out.fileno())
            except (OSError, ValueError):
                return  # the final fsync reports a real problem


def _write_all(out: IO[bytes], data: bytes) -> None:
    """Write all of ``data`` (an unbuffered write may take less than it was given)."""
    view = memoryview(data)
    while view:
        n = out.write(view)
        if n is None:  # a non-blocking file that would block: not a case for a regular file
            raise OSError("the file would block")
        view = view[n:]
