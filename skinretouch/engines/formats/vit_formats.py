"""DINOv2 / DINOv3 weight files in the forms users download, mapped to one key layout.

Forms (the name is what ``doctor`` and errors print):

``dinov2``
    facebookresearch/dinov2 ``.pth`` (``dinov2_vit{s,b,l,g}14[_reg4]_pretrain.pth``):
    ``patch_embed.proj``, ``cls_token``, learned ``pos_embed``, ``register_tokens`` (``_reg``
    models), ``blocks.N.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp, ls2.gamma}``,
    ``norm``; ViT-g's MLP is SwiGLU (``mlp.w12``, ``mlp.w3``).  Chunked blocks
    (``blocks.C.N.``) are flattened.
``dinov2-hf``
    Hugging Face ``Dinov2Model`` / ``Dinov2WithRegistersModel``: ``model.safetensors`` with its
    ``config.json`` (hub names ``embeddings.…``, ``encoder.layer.N.attention.attention.query``,
    ``…mlp.weights_in`` for SwiGLU; transformers 5's ``q_proj``/``gate_proj`` names too).
``dinov3``
    facebookresearch/dinov3 ``.pth``: no learned position embedding; rotary position
    encoding (RoPE, ``rope_embed.periods``) on the patch tokens; ``storage_tokens``
    (registers); ``attn.qkv`` whose key bias is masked off; SwiGLU MLPs as ``w1, w2, w3``.
``dinov3-hf``
    Hugging Face ``DINOv3ViTModel`` (``embeddings.register_tokens``, ``layer.N.attention.
    {q,k,v,o}_proj``, ``mlp.{up,down}_proj`` or gated ``gate_proj``), safetensors + config.json.

Every form is converted to the facebookresearch DINOv2 names (``qkv`` fused, SwiGLU as
``w1`` gate, ``w2`` up, ``w3`` down) plus a :class:`VitSpec`, which
:func:`skinretouch.engines.backbone.build_vit` turns into one module.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..inpaint_base import EngineUnavailable, WeightsError, missing_packages
from .safe_torch import torch_load_without_code

__all__ = ["VIT_FORMS", "VitSpec", "VitWeights", "read_vit", "sniff_vit_form"]

VIT_FORMS = ("dinov2", "dinov2-hf", "dinov3", "dinov3-hf")
EXPECTED = (
    "DINOv2 or DINOv3 weights (facebookresearch .pth, or a Hugging Face Dinov2Model / DINOv3ViTModel "
    "model.safetensors with its config.json)"
)
HEAD_WIDTH = 64  # channels per attention head of every released DINOv2 / DINOv3 ViT
ROPE_BASE = 100.0  # DINOv3's RoPE period base
WRAPPER_PREFIXES = ("module.", "backbone.", "teacher.backbone.", "student.backbone.", "dinov2.", "model.")


@dataclass(frozen=True)
class VitSpec:
    """The shape of a DINO ViT, read from its tensors (and config.json for HF forms)."""

    family: str  # "dinov2" or "dinov3"
    width: int
    depth: int
    heads: int
    patch: int
    hidden: int
    registers: int = 0
    mlp: str = "gelu"  # "gelu" (fc1, fc2) or "swiglu" (w1, w2, w3)
    position: str = "learned"  # "learned" (pos_embed) or "rope"
    positions: int = 0  # learned grid cells (without the class token)
    eps: float = 1e-6
    rope_base: float = ROPE_BASE
    layer_scale: bool = True
    # the MLP's activation: "gelu" (exact) for fc1/fc2, "silu" for SwiGLU, unless config.json says
    activation: str = ""

    @property
    def act(self) -> str:
        return self.activation or ("silu" if self.mlp == "swiglu" else "gelu")


@dataclass(frozen=True)
class VitWeights:
    form: str
    path: Path
    spec: VitSpec
    state: dict[str, Any] = field(repr=False)


def sniff_vit_form(path: str | Path) -> str:
    """The form of a ViT weights file or folder (reads key names only where it can)."""
    return read_vit(path, keys_only=True).form


def read_vit(path: str | Path, *, heads: int | None = None, keys_only: bool = False) -> VitWeights:
    """Read DINOv2/DINOv3 weights of any supported form into the common layout.

    Parameters
    ----------
    path
        A ``.pth``/``.pt``/``.safetensors`` file, or a Hugging Face folder holding
        ``model.safetensors`` and ``config.json``.
    heads
        Attention heads for facebookresearch files (which do not store it); default
        ``width // 64``.  HF forms read it from config.json.

    Raises
    ------
    WeightsError
        Missing or unreadable, or not one of the forms; the message names them and what was found.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        candidates = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin")) or sorted(path.glob("*.pth"))
        if not candidates:
            raise WeightsError(f"{path}: expected {EXPECTED}; found a folder without weights")
        path = candidates[0]
    if not path.is_file():
        raise WeightsError(f"ViT weights not found: {path}")
    if missing_packages("torch"):
        raise EngineUnavailable("unavailable: torch not installed (pip install '.[neural]')")
    raw = _load(path)
    state = _unwrap(raw, path)
    config = _hf_config(path)
    if any(k.startswith("embeddings.") for k in state):
        family = "dinov3" if any(k.startswith(("layer.", "model.layer.")) for k in state) or (config.get("model_type") == "dinov3_vit") else "dinov2"
        form = f"{family}-hf"
        if not config:
            raise WeightsError(f"{path}: a Hugging Face {family} state dict needs its config.json beside it (none found)")
        if keys_only:
            return VitWeights(form, path, _placeholder_spec(family), {})
        converted, spec = (_from_hf_dinov3 if family == "dinov3" else _from_hf_dinov2)(state, config)
    elif "patch_embed.proj.weight" in state:
        family = "dinov3" if ("storage_tokens" in state or "rope_embed.periods" in state or "pos_embed" not in state) else "dinov2"
        form = family
        if keys_only:
            return VitWeights(form, path, _placeholder_spec(family), {})
        converted, spec = _from_facebookresearch(state, family, heads=heads)
    else:
        shown = ", ".join(sorted(state)[:5])
        raise WeightsError(f"{path}: expected {EXPECTED}; found tensors {shown} ... (no patch embedding)")
    if heads and form.endswith("-hf") and heads != spec.heads:
        raise WeightsError(f"{path}: config.json says {spec.heads} heads, {heads} were asked for")
    return VitWeights(form, path, spec, converted)


def _placeholder_spec(family: str) -> VitSpec:
    return VitSpec(family=family, width=0, depth=0, heads=0, patch=0, hidden=0)


def _load(path: Path) -> Any:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a weights error
            raise WeightsError(f"cannot read ViT weights {path}: {exc}") from exc
    return torch_load_without_code(path)


def _unwrap(raw: Any, path: Path) -> dict[str, Any]:
    import torch

    if isinstance(raw, dict):
        for wrapper in ("model", "state_dict", "teacher"):
            inner = raw.get(wrapper)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                raw = inner
                break
    if not isinstance(raw, dict) or not raw or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise WeightsError(f"{path}: expected {EXPECTED}; found no state dict of tensors")
    state = dict(raw)
    for prefix in WRAPPER_PREFIXES:
        if prefix == "model." and any(k.startswith("model.layer.") for k in state):
            continue  # transformers 5's DINOv3 encoder lives under model.layer
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
        elif prefix in ("backbone.", "teacher.backbone.") and any(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def _hf_config(path: Path) -> dict[str, Any]:
    config_file = path.parent / "config.json"
    if not config_file.is_file():
        return {}
    try:
        return json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{config_file} is not readable JSON: {exc}") from exc


def _depth(state: dict[str, Any], pattern: str) -> int:
    found = {int(m.group(1)) for k in state if (m := re.match(pattern, k))}
    if not found:
        raise WeightsError(f"expected {EXPECTED}; found no transformer blocks")
    return 1 + max(found)


def _from_facebookresearch(state: dict[str, Any], family: str, *, heads: int | None) -> tuple[dict[str, Any], VitSpec]:
    import torch

    # chunked blocks (blocks.C.N.…, N global) -> blocks.N.…
    state = {re.sub(r"^blocks\.\d+\.(\d+)\.", r"blocks.\1.", k): v for k, v in state.items()}
    width, _, patch, _ = state["patch_embed.proj.weight"].shape
    depth = _depth(state, r"blocks\.(\d+)\.")
    out: dict[str, Any] = {}
    swiglu = "blocks.0.mlp.w12.weight" in state or "blocks.0.mlp.w1.weight" in state
    for key, value in state.items():
        if key.endswith("attn.qkv.bias_mask"):
            continue
        if key.endswith("attn.qkv.bias") and family == "dinov3":
            value = value.clone()
            value[width : 2 * width] = 0.0  # DINOv3 trains without a key bias (masked off)
        if key.endswith("mlp.w12.weight") or key.endswith("mlp.w12.bias"):
            gate, up = value.chunk(2, dim=0)
            stem = key.replace("w12", "{}")
            out[stem.format("w1")], out[stem.format("w2")] = gate, up
            continue
        if key == "storage_tokens":
            key = "register_tokens"
        if key.startswith(("rope_embed.", "cls_norm.", "local_cls_norm.", "head.", "mask_token")):
            continue
        out[key] = value
    periods = state.get("rope_embed.periods")
    rope_base = ROPE_BASE
    head_count = heads or max(1, int(width) // HEAD_WIDTH)
    if periods is not None and periods.numel() > 1:
        # periods = base ** (2 i / (head_dim / 2)), i = 0 .. head_dim/4 - 1
        rope_base = float(periods[1] ** ((int(width) // head_count) / 4))
    hidden_key = "blocks.0.mlp.w1.weight" if swiglu else "blocks.0.mlp.fc1.weight"
    spec = VitSpec(
        family=family,
        width=int(width),
        depth=depth,
        heads=head_count,
        patch=int(patch),
        hidden=int(out[hidden_key].shape[0]),
        registers=int(out["register_tokens"].shape[1]) if "register_tokens" in out else 0,
        mlp="swiglu" if swiglu else "gelu",
        position="learned" if "pos_embed" in out else "rope",
        positions=int(out["pos_embed"].shape[1]) - 1 if "pos_embed" in out else 0,
        eps=1e-6 if family == "dinov2" else 1e-5,
        rope_base=rope_base,
        layer_scale="blocks.0.ls1.gamma" in out,
    )
    for i in range(depth):
        bias = f"blocks.{i}.attn.qkv.bias"
        if bias not in out:
            out[bias] = torch.zeros(3 * int(width))
    return out, spec


def _from_hf_dinov2(state: dict[str, Any], config: dict[str, Any]) -> tuple[dict[str, Any], VitSpec]:
    import torch

    renames = {
        "embeddings.cls_token": "cls_token",
        "embeddings.position_embeddings": "pos_embed",
        "embeddings.register_tokens": "register_tokens",
        "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
        "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
        "layernorm.weight": "norm.weight",
        "layernorm.bias": "norm.bias",
    }
    block_renames = {
        "norm1": "norm1", "norm2": "norm2",
        "attention.output.dense": "attn.proj", "attention.o_proj": "attn.proj",
        "layer_scale1.lambda1": "ls1.gamma", "layer_scale2.lambda1": "ls2.gamma",
        "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
        "mlp.weights_out": "mlp.w3", "mlp.down_proj": "mlp.w3",
        "mlp.gate_proj": "mlp.w1", "mlp.up_proj": "mlp.w2",
    }  # fmt: skip
    out: dict[str, Any] = {}
    qkv: dict[tuple[int, str], dict[str, Any]] = {}
    for key, value in state.items():
        if key in renames:
            out[renames[key]] = value
            continue
        m = re.match(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias|lambda1)$", key)
        if not m:
            continue  # mask token, heads
        index, part, kind = int(m.group(1)), m.group(2), m.group(3)
        if kind == "lambda1":
            part, kind = f"{part}.lambda1", ""
        q = re.fullmatch(r"attention\.(?:attention\.)?(query|key|value|q_proj|k_proj|v_proj)", part)
        if q:
            which = {"query": "q", "key": "k", "value": "v"}.get(q.group(1), q.group(1)[0])
            qkv.setdefault((index, kind), {})[which] = value
            continue
        if part == "mlp.weights_in":
            gate, up = value.chunk(2, dim=0)
            out[f"blocks.{index}.mlp.w1.{kind}"], out[f"blocks.{index}.mlp.w2.{kind}"] = gate, up
            continue
        if part not in block_renames:
            raise WeightsError(f"unexpected Hugging Face DINOv2 tensor {key}")
        target = block_renames[part]
        out[f"blocks.{index}.{target}" + (f".{kind}" if kind else "")] = value
    for (index, kind), parts in qkv.items():
        out[f"blocks.{index}.attn.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    width = int(config["hidden_size"])
    depth = int(config.get("num_hidden_layers", _depth(out, r"blocks\.(\d+)\.")))
    swiglu = bool(config.get("use_swiglu_ffn")) or "blocks.0.mlp.w1.weight" in out
    for i in range(depth):
        out.setdefault(f"blocks.{i}.attn.qkv.bias", torch.zeros(3 * width))
    spec = VitSpec(
        family="dinov2",
        width=width,
        depth=depth,
        heads=int(config["num_attention_heads"]),
        patch=int(out["patch_embed.proj.weight"].shape[2]),
        hidden=int(out["blocks.0.mlp.w1.weight" if swiglu else "blocks.0.mlp.fc1.weight"].shape[0]),
        registers=int(out["register_tokens"].shape[1]) if "register_tokens" in out else 0,
        mlp="swiglu" if swiglu else "gelu",
        position="learned",
        positions=int(out["pos_embed"].shape[1]) - 1,
        eps=float(config.get("layer_norm_eps", 1e-6)),
        layer_scale="blocks.0.ls1.gamma" in out,
        # HF's DINOv2 SwiGLU is always SiLU; its plain MLP follows hidden_act
        activation="silu" if swiglu else _activation(config.get("hidden_act", "gelu")),
    )
    return out, spec


def _from_hf_dinov3(state: dict[str, Any], config: dict[str, Any]) -> tuple[dict[str, Any], VitSpec]:
    import torch

    renames = {
        "embeddings.cls_token": "cls_token",
        "embeddings.register_tokens": "register_tokens",
        "embeddings.patch_embeddings.weight": "patch_embed.proj.weight",
        "embeddings.patch_embeddings.bias": "patch_embed.proj.bias",
        "norm.weight": "norm.weight",
        "norm.bias": "norm.bias",
    }
    block_renames = {
        "norm1": "norm1", "norm2": "norm2", "attention.o_proj": "attn.proj",
        "layer_scale1.lambda1": "ls1.gamma", "layer_scale2.lambda1": "ls2.gamma",
        "mlp.gate_proj": "mlp.w1", "mlp.down_proj": "mlp.w3",
    }  # fmt: skip
    gated = bool(config.get("use_gated_mlp"))
    width = int(config["hidden_size"])
    out: dict[str, Any] = {}
    qkv: dict[tuple[int, str], dict[str, Any]] = {}
    for key, value in state.items():
        if key in renames:
            out[renames[key]] = value
            continue
        m = re.match(r"(?:model\.)?layer\.(\d+)\.(.+)\.(weight|bias|lambda1)$", key)
        if not m:
            continue  # mask token, rope buffers (recomputed)
        index, part, kind = int(m.group(1)), m.group(2), m.group(3)
        if kind == "lambda1":
            part, kind = f"{part}.lambda1", ""
        q = re.fullmatch(r"attention\.(q|k|v)_proj", part)
        if q:
            qkv.setdefault((index, kind), {})[q.group(1)] = value
            continue
        if part == "mlp.up_proj":
            target = "mlp.w2" if gated else "mlp.fc1"
        elif part == "mlp.down_proj" and not gated:
            target = "mlp.fc2"
        elif part in block_renames:
            target = block_renames[part]
        else:
            raise WeightsError(f"unexpected Hugging Face DINOv3 tensor {key}")
        out[f"blocks.{index}.{target}" + (f".{kind}" if kind else "")] = value
    for (index, kind), parts in qkv.items():
        if kind == "bias":
            zeros = torch.zeros(width)
            parts = {name: parts.get(name, zeros) for name in "qkv"}
        out[f"blocks.{index}.attn.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    depth = int(config.get("num_hidden_layers", _depth(out, r"blocks\.(\d+)\.")))
    for i in range(depth):
        out.setdefault(f"blocks.{i}.attn.qkv.bias", torch.zeros(3 * width))
        if not config.get("mlp_bias", True):
            for name in (("w1", "w2", "w3") if gated else ("fc1", "fc2")):
                weight = out[f"blocks.{i}.mlp.{name}.weight"]
                out.setdefault(f"blocks.{i}.mlp.{name}.bias", torch.zeros(weight.shape[0]))
        if not config.get("proj_bias", True):
            out.setdefault(f"blocks.{i}.attn.proj.bias", torch.zeros(width))
    spec = VitSpec(
        family="dinov3",
        width=width,
        depth=depth,
        heads=int(config["num_attention_heads"]),
        patch=int(out["patch_embed.proj.weight"].shape[2]),
        hidden=int(out["blocks.0.mlp.w1.weight" if gated else "blocks.0.mlp.fc1.weight"].shape[0]),
        registers=int(out["register_tokens"].shape[1]) if "register_tokens" in out else 0,
        mlp="swiglu" if gated else "gelu",
        position="rope",
        eps=float(config.get("layer_norm_eps", 1e-5)),
        rope_base=float(config.get("rope_theta", ROPE_BASE)),
        layer_scale="blocks.0.ls1.gamma" in out,
        activation=_activation(config.get("hidden_act", "gelu")),
    )
    return out, spec


def _activation(name: str) -> str:
    if name in ("gelu", "silu", "swish"):
        return "silu" if name == "swish" else name
    raise WeightsError(f"unsupported MLP activation {name!r} in config.json (gelu or silu expected)")
