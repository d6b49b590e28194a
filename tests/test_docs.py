"""Documentation that must follow the code: settings and Socket.IO events."""

from pathlib import Path

from game.app.settings import settings_markdown
from game.web.events import EVENTS

ROOT = Path(__file__).resolve().parents[1]


def test_settings_doc_is_current():
    assert (ROOT / "docs" / "SETTINGS.md").read_text() == settings_markdown(), \
        "run: python run.py settings --markdown > docs/SETTINGS.md"


def test_every_socket_event_handled_or_emitted_is_documented():
    source = "".join(path.read_text() for path in (ROOT / "game" / "web").glob("*.py"))
    import re
    used = set(re.findall(r'socketio\.on\("([a-z_]+)"\)', source)) | set(re.findall(r'emit\(\s*"([a-z_]+)"', source))
    used -= {"connect", "disconnect"}  # the connection itself, not events
    assert used <= set(EVENTS), f"undocumented events: {used - set(EVENTS)}"
