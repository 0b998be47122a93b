"""Built-in decoders; ``SPECS`` is what the built-in plugin registers (nothing is imported here)."""
from fc4dfs.plugins.spec import ComponentSpec

_M = "fc4dfs.zoo.decoders"
SPECS: list[ComponentSpec] = [
    ComponentSpec("decoder", "pca", f"{_M}.pca:PCADecoder",
                  "PCA-3DMM: coefficients solved from landmarks by regularised least squares"),
    ComponentSpec("decoder", "neural3dmm", f"{_M}.neural3dmm:Neural3DMMDecoder",
                  "Spiral-convolution autoencoder decoding whole meshes (Bouritsas et al.)"),
    ComponentSpec("decoder", "s2d", f"{_M}.s2d:S2DDecoder",
                  "Sparse2Dense: landmark displacements to per-vertex displacements (Potamias et al.)"),
    ComponentSpec("decoder", "miadnet", f"{_M}.miadnet:MIADNetDecoder",
                  "Multi-level identity-aware displacement network (FC-4DFS)"),
    ComponentSpec("decoder", "s2d+lm-n", f"{_M}.miadnet:MIADNetDecoder",
                  "MIADNet ablation: landmark decomposition embedding only (FC-4DFS Table 2)",
                  options={"landmark_decomposition": True, "identity_mesh": False}),
    ComponentSpec("decoder", "s2d+mesh-n", f"{_M}.miadnet:MIADNetDecoder",
                  "MIADNet ablation: identity-aware mesh path only (FC-4DFS Table 2)",
                  options={"landmark_decomposition": False, "identity_mesh": True}),
    ComponentSpec("decoder", "lgmd", f"{_M}.lgmd:LGMDDecoder",
                  "Landmark-guided mesh decoder: spiral backbone + landmark-queried cross-attention (Zou et al.)"),
    ComponentSpec("decoder", "lgmd-noattn", f"{_M}.lgmd:LGMDDecoder",
                  "LGMD ablation without the cross-attention: mean backbone features (Zou et al. Table 5)",
                  options={"attention": False}),
    ComponentSpec("decoder", "linear", f"{_M}.linear:LinearDecoder",
                  "Linear baseline: closed-form least-squares map from landmark to vertex displacements"),
]
