"""ProofQuest's command line: `python run.py` starts the game; `python run.py --help` lists the rest."""

import sys

from game.cli import main

if __name__ == "__main__":
    sys.exit(main())
