"""Starting the game: prepare the instance in the background, serve HTTP and Socket.IO."""

from __future__ import annotations

import threading

from game.app.instance import Instance
from game.app.prepare import prepare


def serve(inst: Instance, *, host: str = "127.0.0.1", port: int = 5000, progress=None) -> None:
    """Serve the game; the first start builds the demo volume and its puzzles meanwhile.

    ``/healthz`` answers 503 until the puzzles are ready, then 200.
    """
    from .web import create_app, socketio

    app = create_app(instance=inst)
    threading.Thread(target=prepare, args=(inst,), kwargs={"progress": progress, "echo": True},
                     name="prepare", daemon=True).start()
    print(f"ProofQuest: http://{host}:{port}/  (instance folder {inst.home})", flush=True)
    socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True, log_output=False)
