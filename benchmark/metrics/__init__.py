"""Built-in metrics; ``SPECS`` is what the built-in plugin registers (nothing is imported here)."""
from fc4dfs.plugins.spec import ComponentSpec

_M = "fc4dfs.benchmark.metrics"
SPECS: list[ComponentSpec] = [
    ComponentSpec("metric", "e_lm", f"{_M}.errors:LandmarkError",
                  "Mean per-landmark Euclidean error of generated landmark sequences"),
    ComponentSpec("metric", "e_mesh", f"{_M}.errors:MeshError",
                  "Mean per-vertex Euclidean error of decoded mesh sequences"),
    ComponentSpec("metric", "ca", f"{_M}.classification:LandmarkClassificationAccuracy",
                  "Expression classification accuracy of generated landmark sequences"),
    ComponentSpec("metric", "ca_mesh", f"{_M}.classification:MeshClassificationAccuracy",
                  "Expression classification accuracy of decoded mesh sequences (PCA + sequence model)"),
    ComponentSpec("metric", "fid", f"{_M}.classification:FrechetDistance",
                  "Frechet distance between classifier features of generated and real sequences"),
    ComponentSpec("metric", "diversity", f"{_M}.temporal:Diversity",
                  "Mean pairwise distance between samples for the same condition"),
    ComponentSpec("metric", "smoothness", f"{_M}.temporal:Smoothness",
                  "Mean frame-to-frame acceleration relative to the ground truth's"),
    ComponentSpec("metric", "intensity_r2", f"{_M}.control:IntensityR2",
                  "R^2 of generated apex magnitude against requested intensity (components that control it)"),
    ComponentSpec("metric", "intensity_slope_err", f"{_M}.control:IntensitySlopeError",
                  "|slope - 1| of generated apex magnitude against requested intensity"),
    ComponentSpec("metric", "timing_err", f"{_M}.control:TimingError",
                  "Frames between requested and generated onset/apex/offset (components that control timing)"),
]
