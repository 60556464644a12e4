"""Tiny, randomly initialised neural models for tests: no downloads, seconds on a CPU.

Shared by the engine tests and usable by pipeline/process tests (``make_tiny_flux`` writes a
complete FLUX.1 Fill folder in diffusers layout, tokenizers included, built from local files).
Callers skip when torch/diffusers are missing (``pytest.importorskip``).
"""

from __future__ import annotations

import json
from pathlib import Path

# 4 -> 4 -> 8 -> 16 -> 32 channels, 24 of them global in the residual blocks, like big-lama
# at 1/16 of its width and with 2 of its 18 blocks
TINY_LAMA_SPEC_KWARGS = dict(ngf=4, n_downsampling=3, n_blocks=2)


def tiny_lama(seed: int = 0):
    """A tiny big-lama-layout generator with random weights AND random batch-norm statistics
    (fresh batch norms are identities, which would make backend comparisons too easy)."""
    import torch

    from skinretouch.engines.lama_arch import BigLamaGenerator, GeneratorSpec

    torch.manual_seed(seed)
    model = BigLamaGenerator(GeneratorSpec(**TINY_LAMA_SPEC_KWARGS))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
        # a fresh output convolution is too weak to move the sigmoid off 0.5
        model.model[-2].weight.mul_(30.0)
    return model.eval()


def tiny_lama_spec():
    from skinretouch.engines.lama_arch import GeneratorSpec

    return GeneratorSpec(**TINY_LAMA_SPEC_KWARGS)


def save_lightning_style_checkpoint(model, path: Path) -> Path:
    """What the public best.ckpt looks like: generator under ``generator.``, other networks
    beside it, and non-tensor training state."""
    import torch

    state = {f"generator.{k}": v for k, v in model.state_dict().items()}
    state["discriminator.model0.0.weight"] = torch.zeros(2, 3, 1, 1)
    state["loss_resnet_pl.impl.conv1.weight"] = torch.zeros(1)
    torch.save({"state_dict": state, "epoch": 40, "global_step": 1000, "pytorch-lightning_version": "1.2.9"}, path)
    return path


WORDS = "natural skin with realistic pores and fine texture".split()


def _word_level_tokenizer(folder: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, "<|startoftext|>": 3, "<|endoftext|>": 4}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def make_tiny_flux(folder: Path, seed: int = 0) -> Path:
    """Write a tiny FLUX.1 Fill pipeline (same component classes as the real one, a few
    thousand parameters) to ``folder`` in diffusers layout; returns ``folder``."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxFillPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    # latent_channels 1 and one VAE level: packed latents have 4 channels; the Fill input is
    # latents + masked-image latents + the 2x2-packed mask = 12 channels
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=12,
        out_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=3,
            eos_token_id=4,
            pad_token_id=4,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=1,
            vocab_size=64,
            projection_dim=32,
        )
    )
    text_encoder_2 = T5EncoderModel(
        T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=37, num_layers=1, num_heads=4, pad_token_id=0, eos_token_id=1)
    )
    vae = AutoencoderKL(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    tokenizer_file = _word_level_tokenizer(folder.parent / f"{folder.name}-tokenizer-source")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_file),
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        model_max_length=77,
    )
    tokenizer_2 = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_file), eos_token="</s>", pad_token="<pad>", unk_token="<unk>", model_max_length=512
    )
    pipeline = FluxFillPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )
    pipeline.save_pretrained(str(folder))
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "FluxFillPipeline"
    return folder


def make_tiny_flux_lora(model_folder: Path, lora_folder: Path, rank: int = 2, seed: int = 1) -> Path:
    """A LoRA for the tiny transformer in diffusers' FLUX LoRA format (as Turbo-Alpha ships);
    its B matrices are random so it changes the output."""
    import torch
    from diffusers import FluxFillPipeline, FluxTransformer2DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = FluxTransformer2DModel.from_pretrained(str(model_folder), subfolder="transformer", local_files_only=True)
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in transformer.named_parameters():
            if "lora_B" in name:
                parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator))
    FluxFillPipeline.save_lora_weights(
        str(lora_folder), transformer_lora_layers=get_peft_model_state_dict(transformer), weight_name="tiny_lora.safetensors"
    )
    return lora_folder / "tiny_lora.safetensors"
