"""Built-in generators; ``SPECS`` is what the built-in plugin registers (nothing is imported here)."""
from fc4dfs.plugins.spec import ComponentSpec

_M = "fc4dfs.zoo.generators"
SPECS: list[ComponentSpec] = [
    ComponentSpec("generator", "mlp", f"{_M}.mlp:MLPGenerator",
                  "MLP baseline: regresses each frame from neutral landmarks, label and position (FC-4DFS)"),
    ComponentSpec("generator", "lstm", f"{_M}.lstm:LSTMGenerator",
                  "Autoregressive LSTM over landmark frames (FC-4DFS baseline)"),
    ComponentSpec("generator", "fc_lstm", f"{_M}.fc_lstm:FCLSTMGenerator",
                  "Frequency-controlled LSTM with framerate-aware positional encoding (FC-4DFS)"),
    ComponentSpec("generator", "lm4dgan", f"{_M}.lm4dgan:LM4DGANGenerator",
                  "Landmark-guided conditional WGAN-GP over whole sequences (LM-4DGAN-style)"),
    ComponentSpec("generator", "ddpm", f"{_M}.ddpm:DDPMGenerator",
                  "4D facial expression diffusion model with classifier guidance (Zou et al.)"),
    ComponentSpec("generator", "motion3dgan", f"{_M}.motion3dgan:Motion3DGANGenerator",
                  "Conditional WGAN-GP on the SRVF hypersphere of landmark motions (Motion3DGAN)"),
    ComponentSpec("generator", "actor", f"{_M}.actor:ActorGenerator",
                  "Transformer conditional VAE with per-label distribution tokens (ACTOR)"),
    ComponentSpec("generator", "action2motion", f"{_M}.action2motion:Action2MotionGenerator",
                  "GRU conditional VAE with per-frame latent and learned prior (Action2Motion)"),
]
