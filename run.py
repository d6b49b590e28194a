"""ProofQuest's command line: `python run.py` starts the game; `python run.py --help` lists the rest."""

import sys


def serving(argv: list[str]) -> bool:
    """Whether the command line starts the server (no command, or ``serve``)."""
    words = iter(argv)
    for word in words:
        if word in ("--home", "--host", "--port"):
            next(words, None)
        elif not word.startswith("-"):
            return word == "serve"
    return True


if __name__ == "__main__":
    if serving(sys.argv[1:]):
        # the server's concurrency (ASYNC_MODE) is set up before anything else is imported
        from game.app.settings import load_settings
        from game.concurrency import patch
        from game.errors import ProofQuestError
        try:
            patch(load_settings()["ASYNC_MODE"])
        except ProofQuestError:
            pass  # a bad setting: the command line says which, below
    from game.cli import main
    sys.exit(main())
