"""A DINOv2-style ViT as a feature plug-in for reference mode (local weights only, never a hub).

The default reference features are the numba descriptors (CPU, no weights). A self-supervised
ViT (DINOv2 / DINOv3 family) gives richer patch features, but its patch is 14-16 px: far
too coarse for a 3-px blemish at the working resolution. So the plug-in works on *enlarged*
crops: the working image is upscaled so one patch spans ``patch_units`` face units (default 2,
i.e. a 3-face-unit spot covers a patch or two), cut into fixed tiles with overlap, and the
patch tokens are interpolated back to one feature vector per working pixel.

Weights: any form of :mod:`.formats.vit_formats`: facebookresearch DINOv2 (with or without
registers, S/B/L/g) or DINOv3 ``.pth``, or a Hugging Face ``Dinov2Model`` / ``DINOv3ViTModel``
``model.safetensors`` with its ``config.json``.  DINOv2 adds learned position embeddings
(interpolated to the tile's grid); DINOv3 has none and rotates queries and keys of the patch
tokens instead (RoPE, :func:`rope_angles`).  Read without running code from the file.

Backends: ``torch`` (eager) or ``onnxruntime`` (the tile network exported once to ONNX at the
tile size, through :mod:`.runtime`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import cv2
import numpy as np

from .formats.vit_formats import VitSpec, read_vit
from ..logs import get_logger
from .inpaint_base import WeightsError
from .runtime import OnnxRuntimeBackend, TorchBackend, resolve_device

__all__ = ["VitBackbone", "build_vit", "export_vit_onnx", "load_vit_state", "rope_angles"]

log = get_logger(__name__)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
HEAD_WIDTH = 64  # DINOv2's channels per attention head


def load_vit_state(path: str | Path) -> dict:
    """Read local ViT weights of any form of :mod:`.formats.vit_formats` into the common
    (facebookresearch DINOv2) key layout."""
    return read_vit(path).state


def build_vit(state: dict, *, heads: int | None = None, spec: VitSpec | None = None):
    """Build the torch module for a common-layout state dict and load it (strict).

    ``spec`` comes from :func:`~.formats.vit_formats.read_vit`; without it the layout is read
    from the tensors as a DINOv2 (learned positions, ``heads`` or ``width // 64`` heads).
    """
    import torch
    from torch import nn

    if spec is None:
        spec = _spec_from_state(state, heads=heads)
    width, heads, patch, hidden = spec.width, spec.heads, spec.patch, spec.hidden
    registers = spec.registers
    head_dim = width // heads
    act = nn.functional.silu if spec.act == "silu" else nn.functional.gelu

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(width, 3 * width)
            self.proj = nn.Linear(width, width)

        def forward(self, x, rope):
            b, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
            if rope is not None:
                q, k = _rotate(q, rope), _rotate(k, rope)
            attn = torch.softmax((q @ k.transpose(-2, -1)) * head_dim**-0.5, dim=-1)
            return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))

    class LayerScale(nn.Module):
        def __init__(self):
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(width))

        def forward(self, x):
            return x * self.gamma

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(width, hidden)
            self.fc2 = nn.Linear(hidden, width)

        def forward(self, x):
            return self.fc2(act(self.fc1(x)))

    class SwiGlu(nn.Module):
        def __init__(self):
            super().__init__()
            self.w1 = nn.Linear(width, hidden)  # gate
            self.w2 = nn.Linear(width, hidden)  # up
            self.w3 = nn.Linear(hidden, width)  # down

        def forward(self, x):
            return self.w3(act(self.w1(x)) * self.w2(x))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = nn.LayerNorm(width, eps=spec.eps)
            self.attn = Attention()
            self.ls1 = LayerScale() if spec.layer_scale else nn.Identity()
            self.norm2 = nn.LayerNorm(width, eps=spec.eps)
            self.mlp = SwiGlu() if spec.mlp == "swiglu" else Mlp()
            self.ls2 = LayerScale() if spec.layer_scale else nn.Identity()

        def forward(self, x, rope):
            x = x + self.ls1(self.attn(self.norm1(x), rope))
            return x + self.ls2(self.mlp(self.norm2(x)))

    class PatchEmbed(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Conv2d(3, width, kernel_size=patch, stride=patch)

    class Vit(nn.Module):
        """(B, 3, H, W) ImageNet-normalised RGB -> (B, width, H/patch, W/patch) patch tokens."""

        def __init__(self):
            super().__init__()
            self.patch_size = patch
            self.width = width
            self.spec = spec
            self.patch_embed = PatchEmbed()
            self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
            if spec.position == "learned":
                self.pos_embed = nn.Parameter(torch.zeros(1, spec.positions + 1, width))
            if registers:
                self.register_tokens = nn.Parameter(torch.zeros(1, registers, width))
            if "mask_token" in state:
                self.mask_token = nn.Parameter(torch.zeros_like(state["mask_token"]))
            self.blocks = nn.ModuleList(Block() for _ in range(spec.depth))
            self.norm = nn.LayerNorm(width, eps=spec.eps)

        def forward(self, image):
            tokens = self.patch_embed.proj(image)
            b, c, gh, gw = tokens.shape
            x = tokens.flatten(2).transpose(1, 2)
            cls = self.cls_token
            rope = None
            if spec.position == "learned":
                side = int(math.sqrt(spec.positions))
                pos = self.pos_embed[:, 1:].reshape(1, side, side, c).permute(0, 3, 1, 2)
                if (gh, gw) != (side, side):
                    pos = nn.functional.interpolate(pos, size=(gh, gw), mode="bicubic", align_corners=False)
                x = x + pos.flatten(2).transpose(1, 2)
                cls = cls + self.pos_embed[:, :1]
            else:
                rope = rope_angles(gh, gw, head_dim=head_dim, base=spec.rope_base)
            parts = [cls.expand(b, -1, -1)]
            if registers:
                parts.append(self.register_tokens.expand(b, -1, -1))
            x = torch.cat(parts + [x], dim=1)
            for block in self.blocks:
                x = block(x, rope)
            x = self.norm(x)[:, 1 + registers :]
            return x.transpose(1, 2).reshape(b, c, gh, gw)

    model = Vit()
    try:
        model.load_state_dict({k: v for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"ViT weights do not fit a {spec.family} layout: {exc}") from exc
    return model.eval()


def rope_angles(grid_h: int, grid_w: int, *, head_dim: int, base: float):
    """DINOv3's rotary position encoding for a ``grid_h x grid_w`` patch grid: (cos, sin),
    each ``(grid_h * grid_w, head_dim)``.

    Patch centres are normalised to [-1, 1] per axis; each axis takes a quarter of the head's
    channels at periods ``base ** (4 i / head_dim)``, repeated for the rotated half.
    """
    import torch

    ys = (torch.arange(grid_h, dtype=torch.float32) + 0.5) / grid_h
    xs = (torch.arange(grid_w, dtype=torch.float32) + 0.5) / grid_w
    coords = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).flatten(0, 1) * 2.0 - 1.0
    inverse_periods = base ** -(torch.arange(0, head_dim // 4, dtype=torch.float32) * 4.0 / head_dim)
    angles = (2 * math.pi * coords[:, :, None] * inverse_periods[None, None, :]).flatten(1, 2)
    angles = angles.repeat(1, 2)
    return torch.cos(angles), torch.sin(angles)


def _rotate(x, rope):
    """Apply RoPE to the patch tokens of (B, heads, tokens, head_dim); prefix tokens stay."""
    import torch

    cos, sin = rope
    prefix = x.shape[-2] - cos.shape[0]
    head, patches = x[..., :prefix, :], x[..., prefix:, :]
    half = patches.shape[-1] // 2
    rotated = torch.cat((-patches[..., half:], patches[..., :half]), dim=-1)
    return torch.cat((head, patches * cos + rotated * sin), dim=-2)


def _spec_from_state(state: dict, *, heads: int | None) -> VitSpec:
    width, _, patch, _ = state["patch_embed.proj.weight"].shape
    swiglu = "blocks.0.mlp.w1.weight" in state
    return VitSpec(
        family="dinov2",
        width=int(width),
        depth=1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))),
        heads=heads or max(1, int(width) // HEAD_WIDTH),
        patch=int(patch),
        hidden=int(state["blocks.0.mlp.w1.weight" if swiglu else "blocks.0.mlp.fc1.weight"].shape[0]),
        registers=int(state["register_tokens"].shape[1]) if "register_tokens" in state else 0,
        mlp="swiglu" if swiglu else "gelu",
        position="learned" if "pos_embed" in state else "rope",
        positions=int(state["pos_embed"].shape[1]) - 1 if "pos_embed" in state else 0,
        layer_scale="blocks.0.ls1.gamma" in state,
    )


def export_vit_onnx(model, path: str | Path, *, tile: int) -> Path:
    """Export the tile network to ONNX at a fixed ``tile`` x ``tile`` input named ``image``."""
    import torch

    path = Path(path)
    sample = torch.zeros(1, 3, tile, tile)
    with torch.no_grad():
        torch.onnx.export(model, (sample,), str(path), input_names=["image"], output_names=["tokens"],
                          opset_version=17, dynamo=False)  # fmt: skip
    return path


class VitBackbone:
    """Reference-mode features from a local DINOv2-style ViT on enlarged, tiled crops."""

    name = "vit"

    def __init__(
        self,
        weights: str | Path,
        *,
        backend: str = "torch",
        device: str = "cpu",
        patch_units: float = 2.0,
        tile_patches: int = 16,
        heads: int | None = None,
        onnx_path: str | Path | None = None,
    ) -> None:
        """
        Parameters
        ----------
        weights : path
            Local state dict (see the module docstring). Nothing is ever downloaded.
        backend : "torch" or "onnxruntime"
        device : "cpu" or "cuda"
        patch_units : float
            Face units one ViT patch spans after enlarging (smaller = finer, slower).
        tile_patches : int
            Tile side in patches (tiles overlap by a quarter).
        heads : int, optional
            Attention heads (default width // 64).
        onnx_path : path, optional
            Where the ONNX export goes for ``backend="onnxruntime"`` (default: beside the weights).
        """
        found = read_vit(weights, heads=heads)
        self.form, self.weights_path = found.form, found.path
        self.model = build_vit(found.state, spec=found.spec)
        self.patch = int(self.model.patch_size)
        self.tile = self.patch * int(tile_patches)
        self.patch_units = float(patch_units)
        if backend == "torch":
            self.runner = TorchBackend(self.model, input_names=("image",), device=device)
        elif backend == "onnxruntime":
            target = Path(onnx_path) if onnx_path else Path(weights).with_suffix(f".tile{self.tile}.onnx")
            if not target.exists():
                export_vit_onnx(self.model, target, tile=self.tile)
            self.runner = OnnxRuntimeBackend(target, device=device)
        else:
            raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}")
        self.backend = backend

    @classmethod
    def from_config(cls, config) -> VitBackbone:
        """The backbone ``[detect.backbone]`` asks for (:class:`~skinretouch.config.DetectBackboneConfig`)."""
        return cls(config.weights, backend=config.backend, device=resolve_device(config.device), patch_units=config.patch_units)

    def tokens(self, tile: np.ndarray) -> np.ndarray:
        """(1, 3, tile, tile) normalised float32 -> (1, width, tile/patch, tile/patch)."""
        return self.runner.run({"image": tile})

    def features(self, image: np.ndarray, *, skin: np.ndarray, unit: float) -> np.ndarray:
        """(h, w, 3) float32 RGB working image -> (h, w, width) float32 features."""
        h, w = image.shape[:2]
        factor = self.patch / (self.patch_units * unit)
        big_h, big_w = max(self.tile, round(h * factor)), max(self.tile, round(w * factor))
        big = cv2.resize(np.ascontiguousarray(image, np.float32), (big_w, big_h), interpolation=cv2.INTER_CUBIC)
        big = (np.clip(big, 0.0, 1.0) - IMAGENET_MEAN) / IMAGENET_STD
        grid_h, grid_w = big_h // self.patch, big_w // self.patch
        width = int(self.model.width)
        acc = np.zeros((grid_h, grid_w, width), np.float32)
        count = np.zeros((grid_h, grid_w, 1), np.float32)
        tp = self.tile // self.patch
        stride = max(1, (tp * 3) // 4)
        for gy in _starts(grid_h, tp, stride):
            for gx in _starts(grid_w, tp, stride):
                crop = big[gy * self.patch : gy * self.patch + self.tile, gx * self.patch : gx * self.patch + self.tile]
                tokens = self.tokens(np.ascontiguousarray(crop.transpose(2, 0, 1)[None]))[0]
                acc[gy : gy + tp, gx : gx + tp] += tokens.transpose(1, 2, 0)
                count[gy : gy + tp, gx : gx + tp] += 1.0
        grid = acc / np.maximum(count, 1.0)
        # Token (i, j) covers enlarged pixels [i*patch, (i+1)*patch): resize the token grid
        # over the area it covers, then crop back to the working image.
        covered_h, covered_w = round(grid_h * self.patch / factor), round(grid_w * self.patch / factor)
        out = np.empty((h, w, width), np.float32)
        for start in range(0, width, 512):
            chunk = cv2.resize(grid[..., start : start + 512], (max(1, covered_w), max(1, covered_h)),
                               interpolation=cv2.INTER_LINEAR)  # fmt: skip
            chunk = chunk.reshape(covered_h, covered_w, -1)
            padded = np.zeros((h, w, chunk.shape[2]), np.float32)
            ch, cw = min(h, covered_h), min(w, covered_w)
            padded[:ch, :cw] = chunk[:ch, :cw]
            if ch < h:
                padded[ch:, :] = padded[ch - 1 : ch, :]
            if cw < w:
                padded[:, cw:] = padded[:, cw - 1 : cw]
            out[..., start : start + chunk.shape[2]] = padded
        return out


def _starts(length: int, size: int, stride: int) -> list[int]:
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts
