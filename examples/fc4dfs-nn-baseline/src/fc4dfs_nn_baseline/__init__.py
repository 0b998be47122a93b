"""Example fc4dfs-bench plugin (the template of the README's "Write a plugin" section)."""
