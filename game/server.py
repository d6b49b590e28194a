"""Starting the game: prepare the instance in the background, serve HTTP and Socket.IO."""

from __future__ import annotations

from game.app import store as st
from game.app.instance import Instance
from game.app.prepare import prepare
from game.concurrency import Worker, green, native_thread


def serve(inst: Instance, *, host: str = "127.0.0.1", port: int = 5000, progress=None) -> None:
    """Serve the game; the first start builds the demo volume and its puzzles meanwhile (on a native thread,
    never on the event loop).

    ``/healthz`` answers 503 until the puzzles are ready, then 200.
    """
    from .web import create_app, socketio

    app = create_app(instance=inst)
    inst.worker = Worker("after-decisions")  # rescans and refits run beside the game, not inside a vote's answer
    inst.checker = Worker("voices")  # checks of shared voices (game.crowd.reliability), never behind rescans
    start_preparing(inst, progress=progress)
    print(f"ProofQuest: http://{host}:{port}/  (instance folder {inst.home}, {'gevent' if green() else 'threads'})",
          flush=True)
    if green():
        _serve_green(app, host, port)
    else:
        socketio.run(app, host=host, port=port, log_output=False, allow_unsafe_werkzeug=True)


def start_preparing(inst: Instance, *, progress=None):
    """Prepare the instance on a native thread; the preparation counts as running (``/healthz`` 503) from
    before this returns, not from whenever the thread gets to it: a client that found the game ready (its
    puzzles were there from an earlier start) could otherwise see it not ready a moment later."""
    st.set_job(inst.store, "prepare", "running", message="starting")
    return native_thread(lambda: prepare(inst, progress=progress, echo=True), name="prepare")


def _serve_green(app, host: str, port: int) -> None:
    """gevent's WSGI server with gevent-websocket's handler, as Flask-SocketIO's ``run`` makes it, but with
    TCP_NODELAY on every connection.

    Without it a keep-alive response written in two sends (headers, then a
    file) waits for the client's delayed ACK: 48 ms for every cached puzzle
    picture against 1 ms with it (measured in bench/bench_puzzles.py --served).
    """
    import socket

    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    class Server(pywsgi.WSGIServer):
        def do_read(self):  # each accepted connection
            accepted = super().do_read()
            if accepted is not None:
                accepted[0].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return accepted

    Server((host, port), app, handler_class=WebSocketHandler, log=None).serve_forever()
