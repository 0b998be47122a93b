"""Building blocks of the ``ddpm`` generator (Zou et al.): noise schedule, transformers, samplers."""
from fc4dfs.zoo.generators.diffusion.schedule import NoiseSchedule, ddim_timesteps

__all__ = ["NoiseSchedule", "ddim_timesteps"]
