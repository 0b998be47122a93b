"""The published numbers the reproduction report puts beside the measured ones (FC-4DFS, Tables 1-4;
Zou et al. 2023, Tables 1-5; Potamias et al. 2020, Table 2).

Values are copied from the paper's tables: errors in mm, accuracy in %. ``None`` marks cells the paper
leaves empty.
"""
from __future__ import annotations

#: Table 1 — end-to-end: (E_lm, E_mesh, CA) per method, per dataset column.
TABLE1 = {
    "CoMA": {
        "gt": (None, None, 86.84), "Motion3D": (11.25, 5.288, 78.28), "LM-4DGAN": (10.02, 4.724, 75.30),
        "FC-LSTM+S2D": (8.308, 4.392, 83.79), "FC-LSTM+MIADNet (ours)": (8.308, 4.131, 84.17),
    },
    "Florence4D": {
        "gt": (None, None, 81.07), "LM-4DGAN": (9.349, 8.414, 69.37),
        "FC-LSTM+S2D": (7.496, 6.642, 76.45), "FC-LSTM+MIADNet (ours)": (7.496, 6.215, 78.93),
    },
}

#: FC-4DFS Table 1 row of a measured Table 1 run (``generator+decoder``), where the paper has one.
#: Motion3D is decoded with S2D, as published.
TABLE1_RUNS = {"motion3dgan+s2d": "Motion3D", "fc_lstm+s2d": "FC-LSTM+S2D", "fc_lstm+miadnet": "FC-LSTM+MIADNet (ours)"}

#: Zou et al. 2023 (the diffusion paper), Table 1 — label control: (accuracy %, FID) of the
#: independent landmark-sequence classifier, per method, per dataset column.
ZOU_TABLE1 = {
    "CoMA": {"Ground truth": (83.78, 2.77), "A2M": (52.36, 29.44), "MoGAN": (80.76, 7.72),
             "ACTOR": (81.40, 7.11), "Ours": (84.97, 6.79)},
    "BU-4DFE": {"Ground truth": (99.51, 6.02), "A2M": (80.83, 19.64), "MoGAN": (99.26, 13.29),
                "ACTOR": (99.13, 14.56), "Ours": (99.89, 12.37)},
}
#: Zou et al.'s Table 1 row of each generator.
ZOU_TABLE1_GENERATORS = {"action2motion": "A2M", "motion3dgan": "MoGAN", "actor": "ACTOR", "ddpm": "Ours"}


#: Table 2 — decoders, 4-fold identity CV: per-vertex error mean ± std (mm).
TABLE2 = {
    "CoMA": {"pca": (1.280, 1.061), "neural3dmm": (3.873, 3.169), "s2d": (0.550, 0.636),
             "s2d+lm-n": (0.547, 0.637), "s2d+mesh-n": (0.548, 0.635), "miadnet": (0.528, 0.634)},
    "Florence4D": {"pca": (2.389, 1.660), "neural3dmm": (5.180, 6.635), "s2d": (1.493, 1.607),
                   "s2d+lm-n": (1.405, 1.541), "s2d+mesh-n": (1.421, 1.461), "miadnet": (1.338, 1.499)},
}

#: Table 3 — generator ablation, per-vertex error (mm) at lengths 20/25/30: mean ± std.
TABLE3 = {
    "Aligned CoMA": {
        "mlp": ((9.631, 4.919), (9.533, 4.837), (9.591, 4.815)),
        "lstm": ((8.663, 3.641), (8.577, 3.510), (8.611, 3.580)),
        "lstm+loss-temp": ((8.341, 3.676), (8.222, 3.495), (8.232, 3.500)),
        "lstm+freq": ((8.291, 3.485), (8.238, 3.485), (8.255, 3.541)),
        "lstm+freq+loss-temp": ((8.152, 3.515), (8.064, 3.446), (8.058, 3.459)),
    },
    "Florence4D": {
        "mlp": ((8.796, 4.820), (8.783, 4.727), (8.790, 4.193)),
        "lstm": ((7.920, 4.244), (7.896, 4.244), (7.894, 4.692)),
        "lstm+loss-temp": ((7.686, 4.175), (7.572, 4.138), (7.529, 4.124)),
        "lstm+freq": ((7.699, 4.167), (7.603, 4.127), (7.569, 4.102)),
        "lstm+freq+loss-temp": ((7.496, 4.082), (7.411, 4.050), (7.381, 4.031)),
    },
}

#: Table 4 — α of the temporal loss (FC-LSTM, Aligned CoMA), per-vertex error at lengths 20/25/30.
TABLE4 = {
    0.0: ((8.291, 3.485), (8.238, 3.485), (8.255, 3.541)),
    0.1: ((8.198, 3.700), (8.125, 3.484), (8.157, 3.547)),
    0.2: ((8.282, 3.545), (8.181, 3.489), (8.173, 3.538)),
    0.3: ((8.152, 3.515), (8.064, 3.446), (8.058, 3.459)),
    0.5: ((8.276, 3.626), (8.126, 3.444), (8.081, 3.411)),
    1.0: ((8.334, 3.596), (8.240, 3.530), (8.234, 3.561)),
}
LENGTHS = (20, 25, 30)

#: Zou et al. 2023 Table 2 — text control on CoMA + BU-4DFE: (accuracy %, FID) for the raw-text task
#: (type-I classifier) and the enriched-text task (type-S classifier: label and N2E/E2N), per row.
ZOU_TABLE2 = {
    "Ground truth": {"raw": (86.02, 3.67), "enriched": (74.40, 4.56)},
    "MotionClip": {"raw": (80.67, 42.19), "enriched": (58.33, 38.83)},
    "Ours": {"raw": (82.01, 9.46), "enriched": (64.38, 11.34)},
}

#: Zou et al. 2023 Table 3 — expression filling on CoMA: (accuracy %, FID) per case and method; the
#: ground truth is Table 1's (83.78 %, 2.77) in every case.
ZOU_TABLE3 = {
    "ffe": {"mean-imputation": (60.15, 25.67), "ddpm": (67.18, 5.51)},
    "ffm": {"mean-imputation": (56.25, 17.68), "ddpm": (85.93, 5.06)},
    "ffb": {"mean-imputation": (53.90, 27.32), "ddpm": (70.31, 5.22)},
}

#: Zou et al. 2023 Table 4 — geometry-adaptive generation on CoMA (type-S classifier): (accuracy %, FID).
ZOU_TABLE4 = {"Ground truth": (71.01, 5.57), "Geometry-adaptive": (70.43, 9.26)}

#: Zou et al. 2023 ("4D Facial Expression Diffusion Model") Table 5 — landmark-guided mesh deformation on
#: CoMA, per-vertex error mean ± std (mm), keyed by the suite's decoder for each row: "Ours" = lgmd,
#: "Ours (w/o attention)" = lgmd-noattn, "Linear [10]" = linear, and "CoMA [73]" (a Chebyshev-convolution
#: autoencoder) = neural3dmm, the suite's spiral autoencoder driven the same way (latent code concatenated
#: with the landmark displacements).
ZOU_TABLE5 = {
    "Expression split": {"lgmd": (0.45, 0.51), "lgmd-noattn": (0.54, 0.59), "s2d": (0.52, 0.59),
                         "neural3dmm": (0.58, 0.63), "linear": (0.67, 0.76)},
    "Identity split": {"lgmd": (0.50, 0.58), "lgmd-noattn": (0.57, 0.64), "s2d": (0.55, 0.62),
                       "neural3dmm": (0.63, 0.67), "linear": (0.73, 0.77)},
}


def column_for(dataset: str) -> tuple[str, str]:
    """Which paper columns to compare a dataset with: (Tables 1-2 column, Table 3 column)."""
    if dataset.startswith("florence"):
        return "Florence4D", "Florence4D"
    return "CoMA", "Aligned CoMA"


def zou_column_for(dataset: str) -> str | None:
    """Zou et al.'s Table 1 column for a dataset: CoMA (and the synthetic stand-in), none for Florence4D."""
    return None if dataset.startswith("florence") else "CoMA"


#: Potamias et al. 2020 Table 2, total per-vertex error (mm) on 4DFAB's 27 test subjects
POTAMIAS_TABLE2 = {"Baseline": 0.44, "Proposed": 0.39}
#: Potamias et al. 2020 Table 3, "Total" row (4DFAB, six expressions): precision, recall, F1 of their
#: classifier (64 PCA coefficients per frame, concatenated, three fully connected layers)
POTAMIAS_TABLE3_TOTAL = {"Baseline": (0.58, 0.57, 0.57), "Proposed": (0.69, 0.69, 0.68),
                         "Ground truth": (0.70, 0.70, 0.68)}
