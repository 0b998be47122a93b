"""Built-in direct pipelines; ``SPECS`` is what the built-in plugin registers (nothing is imported here)."""
from fc4dfs.plugins.spec import ComponentSpec

_M = "fc4dfs.zoo.pipelines"
SPECS: list[ComponentSpec] = [
    ComponentSpec("pipeline", "potamias", f"{_M}.potamias:PotamiasPipeline",
                  "LSTM over the expression/phase signal + spiral mesh decoder with up-sampling, added to the "
                  "neutral face (Potamias et al. 2020)"),
    ComponentSpec("pipeline", "potamias-pca", f"{_M}.potamias:PotamiasPipeline",
                  "Potamias et al. 2020 baseline: the same LSTM codes driving PCA expression blendshapes of "
                  "neutral-subtracted meshes", options={"decoder": "blendshapes"}),
]
