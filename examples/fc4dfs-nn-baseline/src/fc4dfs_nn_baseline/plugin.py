"""The plugin module named by the ``fc4dfs`` entry point: declares its API version and its components."""
from fc4dfs.plugins import ComponentSpec, hookimpl

fc4dfs_api_version = "2.0"


@hookimpl
def fc4dfs_generators() -> list[ComponentSpec]:
    return [ComponentSpec("generator", "nn_retrieval", "fc4dfs_nn_baseline.generator:NNRetrievalGenerator",
                          "Nearest-neighbour motion retrieval: the closest training identity's motion for the label")]
