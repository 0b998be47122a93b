"""Protocols, metrics, the runner, the CLI and the leaderboard."""
