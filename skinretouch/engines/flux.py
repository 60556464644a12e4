"""FLUX.1 Fill for regions flagged hard, through diffusers' ``FluxFillPipeline``.

The model is the user's, in a local folder in diffusers layout (``model_index.json`` and one
sub-folder per component, as ``black-forest-labs/FLUX.1-Fill-dev`` is published); it is
loaded with ``local_files_only=True``, so nothing is ever downloaded.  An optional LoRA
(e.g. FLUX.1-Turbo-Alpha) is fused into the transformer at load time and cuts the steps
from ``engines.flux_steps`` (20) to ``engines.flux_lora_steps`` (8).

The pipeline regenerates the whole crop it is given; :class:`InpaintEngine.__call__` keeps
only the pixels inside the hole, so everything else stays bit-identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..config import EnginesConfig
from ..logs import get_logger
from .inpaint_base import EngineError, EngineUnavailable, InpaintEngine, missing_packages
from .runtime import resolve_device

__all__ = ["FluxFillEngine"]

log = get_logger(__name__)

MODEL_INDEX = "model_index.json"
# Longest prompt, in T5 tokens (FLUX's own limit is 512; a short prompt needs few)
MAX_SEQUENCE_LENGTH = 128


class FluxFillEngine(InpaintEngine):
    """FLUX.1 Fill on a crop around the hole (hard cases only, GPU)."""

    name = "flux-fill"
    # the latent grid packs 2x2 patches of an 8x downscaled image; ``load`` reads the real
    # factor from the model's VAE
    pad_mod = 16
    max_side_px = 1024
    # a diffusion model needs more surrounding skin to match than LaMa does
    context_factor = 1.5
    min_context_px = 64
    hard_cases_only = True
    heavy = True

    def __init__(self, config: EnginesConfig) -> None:
        super().__init__(config)
        self.pipeline: Any = None
        self.device: str | None = None
        self.steps = config.flux_steps
        self.instance_pad_mod = type(self).pad_mod

    @property
    def working_max_side_px(self) -> int:
        return self.config.flux_max_side_px

    @property
    def working_min_side_px(self) -> int:
        return self.config.flux.working_min_side_px

    @classmethod
    def available(cls, config: EnginesConfig) -> tuple[bool, str]:
        folder = config.flux_model_dir
        if not folder:
            return False, "no model configured (engines.flux_model_dir is empty)"
        if not (Path(folder).expanduser() / MODEL_INDEX).is_file():
            return False, f"no FLUX.1 Fill model at {folder} ({MODEL_INDEX} missing; engines.flux_model_dir)"
        if config.flux_lora and not Path(config.flux_lora).expanduser().is_file():
            return False, f"no LoRA at {config.flux_lora} (engines.flux_lora)"
        needed = ["torch", "diffusers", "transformers"]
        needed += (["peft"] if config.flux_lora else []) + (["accelerate"] if config.flux_cpu_offload else [])
        absent = missing_packages(*needed)
        if absent:
            return False, f"package missing: {', '.join(absent)} (pip install '.[neural]')"
        device = resolve_device(config.device)
        if device != "cuda" and config.device != "cpu":
            return False, "no GPU: FLUX.1 Fill needs a CUDA device (engines.device = \"cpu\" forces the CPU: very slow)"
        if device == "cuda":
            from .runtime import cuda_available

            if not cuda_available():
                return False, "no GPU: engines.device is cuda but torch sees no CUDA device"
        steps = config.flux_lora_steps if config.flux_lora else config.flux_steps
        lora = f", LoRA {config.flux_lora}" if config.flux_lora else ""
        working = f"working size: short side >= {config.flux.working_min_side_px} px, long side <= {config.flux_max_side_px} px"
        return True, f"diffusers FluxFillPipeline folder {folder}{lora}, run by torch on {device}, {steps} steps, {working}"

    def load(self) -> None:
        ok, reason = self.available(self.config)
        if not ok:
            raise EngineUnavailable(f"flux-fill: {reason}")
        import torch
        from diffusers import FluxFillPipeline

        device = resolve_device(self.config.device)
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        folder = str(Path(self.config.flux_model_dir).expanduser())
        try:
            pipeline = FluxFillPipeline.from_pretrained(folder, local_files_only=True, **_dtype_argument(dtype))
        except Exception as exc:
            raise EngineError(f"flux-fill: cannot load the model in {folder}: {exc}") from exc
        if self.config.flux_lora:
            lora = Path(self.config.flux_lora).expanduser()
            try:
                pipeline.load_lora_weights(str(lora.parent), weight_name=lora.name, adapter_name="skin")
                # fused weights run at the speed of the plain model
                pipeline.fuse_lora(adapter_names=["skin"])
                pipeline.unload_lora_weights()
            except Exception as exc:
                raise EngineError(f"flux-fill: cannot apply the LoRA {lora}: {exc}") from exc
        if device == "cuda" and self.config.flux_cpu_offload:
            pipeline.enable_model_cpu_offload()
        else:
            pipeline.to(device)
        pipeline.set_progress_bar_config(disable=True)
        self.pipeline = pipeline
        self.device = device
        self.steps = self.config.flux_lora_steps if self.config.flux_lora else self.config.flux_steps
        # height and width must be multiples of twice the VAE's downscaling (2x2 latent patches)
        self.instance_pad_mod = 2 * int(getattr(pipeline, "vae_scale_factor", 8))
        self.loaded = True
        log.info("flux-fill loaded", folder=folder, device=device, steps=self.steps, lora=self.config.flux_lora or None)

    def forward(self, image: np.ndarray, hole: np.ndarray, *, seed: int) -> np.ndarray:
        if self.pipeline is None:
            raise EngineError("flux-fill: forward() before load()")
        import torch
        from PIL import Image

        height, width = hole.shape
        picture = Image.fromarray(np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8))
        mask = Image.fromarray(hole.astype(np.uint8) * 255)
        result = self.pipeline(
            prompt=self.config.flux_prompt,
            image=picture,
            mask_image=mask,
            height=height,
            width=width,
            num_inference_steps=self.steps,
            guidance_scale=self.config.flux_guidance,
            max_sequence_length=MAX_SEQUENCE_LENGTH,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="np",
        )
        return np.asarray(result.images[0], dtype=np.float32)

    def padding_multiple(self) -> int:
        return self.instance_pad_mod

    def unload(self) -> None:
        self.pipeline = None
        super().unload()


def _dtype_argument(dtype: Any) -> dict[str, Any]:
    """diffusers renamed ``torch_dtype`` to ``dtype`` (the old name warns, later fails)."""
    from diffusers.utils import deprecation_utils

    if hasattr(deprecation_utils, "_resolve_dtype"):
        return {"dtype": dtype}
    return {"torch_dtype": dtype}
