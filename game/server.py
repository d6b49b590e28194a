"""Starting the game: prepare the instance in the background, serve HTTP and Socket.IO."""

from __future__ import annotations

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
    native_thread(lambda: prepare(inst, progress=progress, echo=True), name="prepare")
    print(f"ProofQuest: http://{host}:{port}/  (instance folder {inst.home}, {'gevent' if green() else 'threads'})",
          flush=True)
    socketio.run(app, host=host, port=port, log_output=False, **({} if green() else {"allow_unsafe_werkzeug": True}))
