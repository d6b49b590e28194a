"""A background loop per app that wakes every ``LEADERBOARD_INTERVAL`` (the broadcaster, the class boards)."""

from __future__ import annotations

import logging
import threading

from flask_socketio import SocketIO

log = logging.getLogger(__name__)


class IntervalLoop:
    """Started once (by the first socket that needs it); calls :meth:`tick` in an app context each interval.

    A later ``init_app`` of the same SocketIO (tests build many apps) gives it
    a new server, which retires the loops of the old one.
    """

    def __init__(self, socketio: SocketIO, app):
        self.socketio, self.app = socketio, app
        self.server = socketio.server
        self.started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if not self.started:
                self.started = True
                self.socketio.start_background_task(self._loop)

    def tick(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        interval = self.app.config["PROOFQUEST"]["LEADERBOARD_INTERVAL"]
        while self.socketio.server is self.server:
            self.socketio.sleep(interval)
            try:
                with self.app.app_context():
                    self.tick()
            except Exception:  # a failed tick (the database busy past its wait, say): the next one tries again
                log.exception("%s: a tick failed", type(self).__name__)
