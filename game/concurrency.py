"""How the server runs many players at once: OS threads, or gevent's greenlets on one event loop.

``ASYNC_MODE`` (a setting, read from ``PROOFQUEST_ASYNC_MODE`` before
anything else is imported) picks it. Under gevent, Socket.IO events and
requests run as greenlets that switch only when they wait on the network, so a
vote's short transaction runs start to finish without the GIL handing it to
other threads (bench/bench_socket.py measures both). Work that takes long
without waiting on the network — the science: rescanning the pool, rendering
pictures, preparing volumes — must not run on the loop, or every player waits
for it: :func:`offload` runs a call on a native thread and waits for it
(only the calling greenlet waits), :class:`Worker` runs calls one after the
other on a native thread of its own. With OS threads both simply run the call
(:func:`offload`) or use an ordinary thread (:class:`Worker`).

This module imports nothing heavy: :func:`patch` must run before Flask,
numpy or the standard library's networking are imported.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading

log = logging.getLogger(__name__)


def patch(mode: str) -> None:
    """Make the standard library cooperative for ``mode`` (gevent's monkey patching); call it first.

    Sockets, ``select``, ``time.sleep`` and the like become cooperative;
    threads and their locks stay native (``thread=False``). zarr reads
    through an asyncio loop on a native thread of its own, started here
    before patching (its selector must stay the operating system's), and
    waits on it with ``concurrent.futures``, which gevent's patched threads
    could not wake from another thread. The game's own locks guard short
    sections that never wait on the network, so a greenlet never switches
    while it holds one.
    """
    if mode == "gevent":
        from zarr.core.sync import _get_loop
        _get_loop()
        from gevent import monkey
        monkey.patch_all(thread=False, queue=False)


def green() -> bool:
    """Whether this process runs under gevent's patched standard library."""
    if "gevent" not in sys.modules:
        return False
    from gevent import monkey
    return monkey.is_module_patched("socket")


def offload(function, *args, **kwargs):
    """``function(*args, **kwargs)`` off the event loop: on gevent's native thread pool, waiting for it
    without blocking other greenlets; a plain call with OS threads."""
    if not green():
        return function(*args, **kwargs)
    import gevent
    return gevent.get_hub().threadpool.apply(function, args, kwargs)


def native_thread(target, *, name: str) -> threading.Thread:
    """Start ``target()`` on a native OS thread, as a daemon."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


class Worker:
    """Calls run one after another on a native thread of their own (started on first use).

    For work that follows an event but need not delay its answer (a pool
    rescan after a decision): :meth:`submit` returns at once. A call that
    fails is logged; the next one runs.
    """

    def __init__(self, name: str):
        self.name = name
        self._queue: queue.SimpleQueue | None = None

    def submit(self, function, *args) -> None:
        if self._queue is None:
            self._queue = queue.SimpleQueue()
            native_thread(self._run, name=self.name)
        self._queue.put((function, args))

    def join(self) -> None:
        """Wait until every call submitted so far has run (tests, shutdown)."""
        if self._queue is None:
            return
        done = threading.Event()
        self._queue.put((done.set, ()))
        done.wait()

    def _run(self) -> None:
        while True:
            function, args = self._queue.get()
            try:
                function(*args)
            except Exception:
                log.exception("background work %s failed", getattr(function, "__name__", function))
