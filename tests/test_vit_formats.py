"""The ViT plug-in reads DINOv2 / DINOv3 in each published layout, checked against transformers.

Tiny random models are built with transformers' own classes (no downloads), saved as
transformers saves them (model.safetensors + config.json) and re-keyed into the
facebookresearch layouts (the names of ``dinov2_vit*14*_pretrain.pth`` and DINOv3's
``.pth``); every form must give transformers' patch tokens.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from skinretouch.config import parse_config  # noqa: E402
from skinretouch.engines.backbone import VitBackbone, build_vit, rope_angles  # noqa: E402
from skinretouch.engines.formats.vit_formats import read_vit, sniff_vit_form  # noqa: E402
from skinretouch.engines.inpaint_base import WeightsError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

# float32 through two blocks: measured ~1e-6 here
PARITY = 1e-5


def _randomise(model, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            scale = 0.5 if ("norm" in name or "lambda" in name) else 0.2
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    return model.eval()


def _hf_dinov2(kind, seed=0):
    from transformers import Dinov2Config, Dinov2Model, Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    common = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=56, patch_size=14)
    if kind == "registers":
        return _randomise(Dinov2WithRegistersModel(Dinov2WithRegistersConfig(**common, num_register_tokens=2)), seed)
    return _randomise(Dinov2Model(Dinov2Config(**common, use_swiglu_ffn=kind == "swiglu")), seed)


def _hf_dinov3(gated, seed=0):
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    config = DINOv3ViTConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=2,
                             image_size=64, patch_size=16, num_register_tokens=4, use_gated_mlp=gated,
                             hidden_act="silu" if gated else "gelu")  # fmt: skip
    return _randomise(DINOv3ViTModel(config), seed)


def _hf_patch_tokens(model, pixels, prefix):
    with torch.no_grad():
        hidden = model(pixel_values=pixels).last_hidden_state
    b, _, h, w = pixels.shape
    patch = model.config.patch_size
    return hidden[:, prefix:].transpose(1, 2).reshape(b, -1, h // patch, w // patch)


def _ours(path, pixels, **kwargs):
    found = read_vit(path, **kwargs)
    with torch.no_grad():
        return found.form, build_vit(found.state, spec=found.spec)(pixels)


def _facebook_dinov2_state(model):
    """A transformers DINOv2 re-keyed as facebookresearch/dinov2 saves it."""
    hf = model.state_dict()
    state = {
        "cls_token": hf["embeddings.cls_token"],
        "pos_embed": hf["embeddings.position_embeddings"],
        "mask_token": hf["embeddings.mask_token"],
        "patch_embed.proj.weight": hf["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": hf["embeddings.patch_embeddings.projection.bias"],
        "norm.weight": hf["layernorm.weight"],
        "norm.bias": hf["layernorm.bias"],
    }
    if "embeddings.register_tokens" in hf:
        state["register_tokens"] = hf["embeddings.register_tokens"]
    for i in range(model.config.num_hidden_layers):
        src, dst = f"encoder.layer.{i}.", f"blocks.{i}."
        attention = model.encoder.layer[i].attention
        for kind in ("weight", "bias"):
            state[dst + f"attn.qkv.{kind}"] = torch.cat([getattr(attention, n).state_dict()[kind] for n in ("q_proj", "k_proj", "v_proj")])
            state[dst + f"attn.proj.{kind}"] = attention.o_proj.state_dict()[kind]
            for norm in ("norm1", "norm2"):
                state[dst + f"{norm}.{kind}"] = hf[src + f"{norm}.{kind}"]
            mlp = model.encoder.layer[i].mlp
            if hasattr(mlp, "gate_proj"):  # ViT-g: SwiGLU, fused w12 = [gate; up]
                state[dst + f"mlp.w12.{kind}"] = torch.cat([mlp.gate_proj.state_dict()[kind], mlp.up_proj.state_dict()[kind]])
                state[dst + f"mlp.w3.{kind}"] = mlp.down_proj.state_dict()[kind]
            else:
                state[dst + f"mlp.fc1.{kind}"] = mlp.fc1.state_dict()[kind]
                state[dst + f"mlp.fc2.{kind}"] = mlp.fc2.state_dict()[kind]
        state[dst + "ls1.gamma"] = hf[src + "layer_scale1.lambda1"]
        state[dst + "ls2.gamma"] = hf[src + "layer_scale2.lambda1"]
    return state


def _facebook_dinov3_state(model):
    """A transformers DINOv3 re-keyed as facebookresearch/dinov3 saves it: storage tokens,
    RoPE periods, a fused qkv whose key bias is masked off."""
    config = model.config
    hf = model.state_dict()
    width, head_dim = config.hidden_size, config.hidden_size // config.num_attention_heads
    state = {
        "cls_token": hf["embeddings.cls_token"],
        "storage_tokens": hf["embeddings.register_tokens"],
        "mask_token": hf["embeddings.mask_token"].reshape(1, width),
        "patch_embed.proj.weight": hf["embeddings.patch_embeddings.weight"],
        "patch_embed.proj.bias": hf["embeddings.patch_embeddings.bias"],
        "rope_embed.periods": config.rope_theta ** (2 * torch.arange(head_dim // 4) / (head_dim // 2)),
        "norm.weight": hf["norm.weight"],
        "norm.bias": hf["norm.bias"],
    }
    for i in range(config.num_hidden_layers):
        src, dst = f"model.layer.{i}.", f"blocks.{i}."  # in memory; saved as layer.{i}.
        junk_key_bias = torch.full((width,), 7.0)  # masked off by bias_mask: must not count
        state[dst + "attn.qkv.weight"] = torch.cat([hf[src + f"attention.{n}_proj.weight"] for n in "qkv"])
        state[dst + "attn.qkv.bias"] = torch.cat([hf[src + "attention.q_proj.bias"], junk_key_bias, hf[src + "attention.v_proj.bias"]])
        state[dst + "attn.qkv.bias_mask"] = torch.cat([torch.ones(width), torch.zeros(width), torch.ones(width)])
        for kind in ("weight", "bias"):
            state[dst + f"attn.proj.{kind}"] = hf[src + f"attention.o_proj.{kind}"]
            state[dst + f"norm1.{kind}"] = hf[src + f"norm1.{kind}"]
            state[dst + f"norm2.{kind}"] = hf[src + f"norm2.{kind}"]
            if config.use_gated_mlp:
                for ours, theirs in (("w1", "gate_proj"), ("w2", "up_proj"), ("w3", "down_proj")):
                    state[dst + f"mlp.{ours}.{kind}"] = hf[src + f"mlp.{theirs}.{kind}"]
            else:
                state[dst + f"mlp.fc1.{kind}"] = hf[src + f"mlp.up_proj.{kind}"]
                state[dst + f"mlp.fc2.{kind}"] = hf[src + f"mlp.down_proj.{kind}"]
        state[dst + "ls1.gamma"] = hf[src + "layer_scale1.lambda1"]
        state[dst + "ls2.gamma"] = hf[src + "layer_scale2.lambda1"]
    return state


@pytest.mark.parametrize("kind", ["plain", "registers", "swiglu"])
def test_dinov2_hf_and_facebook_layouts_match_transformers(tmp_path, kind):
    model = _hf_dinov2(kind)
    model.save_pretrained(tmp_path / "hf")
    torch.save(_facebook_dinov2_state(model), tmp_path / "dinov2.pth")
    pixels = torch.randn(1, 3, 56, 56, generator=torch.Generator().manual_seed(1))
    expected = _hf_patch_tokens(model, pixels, prefix=1 + (2 if kind == "registers" else 0))

    form, hf_form = _ours(tmp_path / "hf", pixels)
    assert form == "dinov2-hf"
    assert float((hf_form - expected).abs().max()) <= PARITY
    form, facebook = _ours(tmp_path / "dinov2.pth", pixels, heads=2)
    assert form == "dinov2"
    assert float((facebook - expected).abs().max()) <= PARITY


def test_dinov2_position_embedding_is_interpolated_like_transformers(tmp_path):
    model = _hf_dinov2("plain")
    model.save_pretrained(tmp_path)
    pixels = torch.randn(1, 3, 70, 84, generator=torch.Generator().manual_seed(2))  # 5x6 grid, trained 4x4
    _, ours = _ours(tmp_path, pixels)
    assert ours.shape == (1, 64, 5, 6)
    assert float((ours - _hf_patch_tokens(model, pixels, prefix=1)).abs().max()) <= PARITY


@pytest.mark.parametrize("gated", [False, True])
def test_dinov3_hf_and_facebook_layouts_match_transformers(tmp_path, gated):
    model = _hf_dinov3(gated)
    model.save_pretrained(tmp_path / "hf")
    torch.save({"model": _facebook_dinov3_state(model)}, tmp_path / "dinov3.pth")
    # not square and not the config's image size: RoPE has no trained grid to match
    pixels = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    expected = _hf_patch_tokens(model, pixels, prefix=1 + 4)
    assert expected.shape == (1, 64, 4, 6)

    form, hf_form = _ours(tmp_path / "hf" / "model.safetensors", pixels)
    assert form == "dinov3-hf"
    assert read_vit(tmp_path / "hf").spec.position == "rope"
    assert float((hf_form - expected).abs().max()) <= PARITY
    form, facebook = _ours(tmp_path / "dinov3.pth", pixels, heads=2)
    assert form == "dinov3"
    assert float((facebook - expected).abs().max()) <= PARITY


def test_dinov3_rope_equals_transformers_position_encoding():
    model = _hf_dinov3(False)
    for height, width in ((64, 64), (48, 112)):
        cos, sin = model.rope_embeddings(torch.zeros(1, 3, height, width))
        ours_cos, ours_sin = rope_angles(height // 16, width // 16, head_dim=32, base=100.0)
        assert ours_cos.shape == cos.shape == ((height // 16) * (width // 16), 32)
        assert float((ours_cos - cos).abs().max()) <= 1e-6
        assert float((ours_sin - sin).abs().max()) <= 1e-6


def test_backbone_is_reachable_from_config_and_gives_per_pixel_features(tmp_path, capsys):
    from skinretouch.cli import main

    model = _hf_dinov3(False)
    model.save_pretrained(tmp_path / "dinov3")
    config_file = tmp_path / "config.toml"
    config_file.write_text(f"[detect.backbone]\nweights = '{tmp_path / 'dinov3'}'\n")
    assert main(["doctor", "--config", str(config_file)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("plug-in/vit-backbone"))
    assert " available " in row and "dinov3-hf (width 64, 2 blocks, patch 16, 4 registers, RoPE)" in row
    assert row.endswith("run by torch (reference mode only)")
    config = parse_config({"detect": {"backbone": {"weights": str(tmp_path / "dinov3"), "device": "cpu"}}})
    backbone = VitBackbone.from_config(config.detect.backbone)
    assert backbone.form == "dinov3-hf"
    image = np.random.default_rng(0).random((40, 48, 3), dtype=np.float32)
    features = backbone.features(image, skin=np.ones((40, 48), bool), unit=2.0)
    assert features.shape == (40, 48, 64) and np.isfinite(features).all()


def test_forms_are_named_and_others_refused_clearly(tmp_path):
    model = _hf_dinov2("plain")
    model.save_pretrained(tmp_path / "hf")
    assert sniff_vit_form(tmp_path / "hf") == "dinov2-hf"
    (tmp_path / "hf" / "config.json").unlink()
    with pytest.raises(WeightsError, match="config.json"):
        read_vit(tmp_path / "hf")
    junk = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(2, 3, 7, 7)}, junk)
    with pytest.raises(WeightsError, match=r"expected DINOv2 or DINOv3.*found tensors conv1\.weight"):
        read_vit(junk)


def test_process_with_backbone_flag_runs_reference_mode_on_the_vit(tmp_path, monkeypatch):
    from PIL import Image

    from skinretouch.cli import main

    model = _hf_dinov2("plain")
    model.save_pretrained(tmp_path / "dinov2")
    runs = []
    original = VitBackbone.tokens
    monkeypatch.setattr(VitBackbone, "tokens", lambda self, tile: runs.append(self.form) or original(self, tile))
    rng = np.random.default_rng(2)
    skin = np.full((96, 96, 3), (0.78, 0.60, 0.50), np.float32) + rng.normal(0, 0.01, (96, 96, 3)).astype(np.float32)
    yy, xx = np.mgrid[:96, :96]
    ref_mask = np.hypot(yy - 30, xx - 30) <= 3
    reference, target = skin.copy(), skin.copy()
    reference[ref_mask] = (0.95, 0.95, 0.92)
    target[np.hypot(yy - 64, xx - 60) <= 3] = (0.95, 0.95, 0.92)
    for name, pixels in (("ref.png", reference), ("face.png", target), ("ref-mask.png", np.dstack([ref_mask] * 3))):
        Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(tmp_path / name)
    config = tmp_path / "config.toml"
    config.write_text("[detect.backbone]\npatch_units = 8.0\n")  # coarse patches: few tiles for a test
    args = ["process", str(tmp_path / "face.png"), "--config", str(config), "--reference", str(tmp_path / "ref.png"),
            "--reference-mask", str(tmp_path / "ref-mask.png"), "--backbone", str(tmp_path / "dinov2")]  # fmt: skip
    assert main(args) == 0
    assert runs and set(runs) == {"dinov2-hf"}  # the ViT gave reference mode its features
    assert (tmp_path / "face.png.retouch.json").is_file()
    assert main([*args[:-1], str(tmp_path / "missing")]) == 2
