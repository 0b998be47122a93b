"""Default output locations, importable without the runner (the CLI's parser needs only these)."""
from __future__ import annotations

from pathlib import Path

#: where ``run`` writes its run folders
DEFAULT_OUT = Path("runs")
#: the leaderboard CSV that ``run`` appends to and ``leaderboard`` reads
DEFAULT_LEADERBOARD = Path("leaderboard") / "leaderboard.csv"
