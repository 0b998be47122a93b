"""Built-in protocols; ``SPECS`` is what the built-in plugin registers (nothing is imported here)."""
from fc4dfs.plugins.spec import ComponentSpec

_M = "fc4dfs.benchmark.protocols"
SPECS: list[ComponentSpec] = [
    ComponentSpec("protocol", "e2e", f"{_M}.e2e:EndToEnd",
                  "Generator + decoder on held-out identities (FC-4DFS Table 1)"),
    ComponentSpec("protocol", "decoder-cv", f"{_M}.decoder_cv:DecoderCV",
                  "Decoder on ground-truth landmarks, 4-fold identity cross-validation (FC-4DFS Table 2)"),
    ComponentSpec("protocol", "length-ablation", f"{_M}.length_ablation:LengthAblation",
                  "Generators at several lengths, decoded with one decoder (FC-4DFS Tables 3-4)"),
    ComponentSpec("protocol", "text-control", f"{_M}.text_control:TextControl",
                  "Text-guided generation, raw and enriched text beside label control (Zou et al. Table 2)"),
    ComponentSpec("protocol", "filling", f"{_M}.filling:Filling",
                  "Expression filling of hidden end / middle / beginning frames (Zou et al. Table 3)"),
    ComponentSpec("protocol", "geometry-adaptive", f"{_M}.geometry_adaptive:GeometryAdaptive",
                  "Label-guided generation from held-out faces (Zou et al. Table 4)"),
]
