"""LaMa weights in each published container, loaded through the user's config and run by
``skinretouch process``: lama's Lightning ``best.ckpt``, IOPaint's TorchScript ``big-lama.pt``
(traced through a wrapper shaped like lama's ``bin/to_jit.py``), a plain state dict, a
``.safetensors`` file, and an ONNX export shaped like the common ones (inputs ``image`` and
``mask`` at a fixed 512 x 512, output x 255).  Plus the working-resolution rule."""

from __future__ import annotations

import json
import sys
import types
import warnings

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="the neural extra (torch) is not installed")

from engines_tiny import tiny_lama  # noqa: E402

from skinretouch.cli import main  # noqa: E402
from skinretouch.config import EnginesConfig, LamaConfig  # noqa: E402
from skinretouch.engines.formats.lama_formats import generator_spec, read_lama, sniff_lama_form  # noqa: E402
from skinretouch.engines.inpaint_base import InpaintEngine, WeightsError  # noqa: E402
from skinretouch.engines.lama_arch import set_fft_impl  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")

SIDE = 512  # the photo
HOLE = (200, 200, 40)  # top, left, side: past the small-spot route, not a hard case


class _TrainingModule(torch.nn.Module):
    """Shaped like lama's DefaultInpaintingTrainingModule at prediction time: the generator
    is its ``generator`` attribute, and ``forward(batch)`` adds ``inpainted`` to the batch."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        image, mask = batch["image"], batch["mask"]
        predicted = self.generator(image, mask)
        return {"predicted_image": predicted, "inpainted": mask * predicted + (1 - mask) * image}


class _JitWrapper(torch.nn.Module):
    """lama's bin/to_jit.py wrapper: ``model`` is the training module."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image, mask):
        return self.model({"image": image, "mask": mask})["inpainted"]


class _OnnxExportWrapper(torch.nn.Module):
    """What the common LaMa ONNX exports run: (image, mask) in [0, 1] -> picture x 255."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, image, mask):
        return self.generator(image, mask) * 255.0


class _Evil:
    """Pickles to a call: loading must not run it."""

    def __reduce__(self):
        return (print, ("code from the checkpoint ran",))


def _lightning(model, path):
    fake = types.ModuleType("omegaconf.dictconfig")
    _Evil.__module__, _Evil.__qualname__ = "omegaconf.dictconfig", "DictConfig"
    fake.DictConfig = _Evil
    sys.modules["omegaconf.dictconfig"] = fake
    try:
        state = {f"generator.{k}": v for k, v in model.state_dict().items()}
        state["discriminator.model0.0.weight"] = torch.zeros(2, 3, 4, 4)
        state["loss_resnet_pl.impl.conv1.weight"] = torch.zeros(4, 3, 7, 7)
        torch.save({"epoch": 40, "global_step": 1000, "pytorch-lightning_version": "1.2.9", "callbacks": {},
                    "optimizer_states": [], "lr_schedulers": [], "state_dict": state,
                    "hyper_parameters": {"config": _Evil()}}, path)  # fmt: skip
    finally:
        del sys.modules["omegaconf.dictconfig"]


def _torchscript(model, path):
    wrapper = _JitWrapper(_TrainingModule(model)).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapper, (torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)), strict=False)
    traced.save(str(path))
    assert all(k.startswith("model.generator.model.") for k in traced.state_dict())  # IOPaint's names


def _onnx(model, path):
    set_fft_impl(model, "matmul")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_OnnxExportWrapper(model).eval(), (torch.rand(1, 3, 512, 512), torch.zeros(1, 1, 512, 512)),
                              str(path), input_names=["image", "mask"], output_names=["output"], opset_version=17,
                              dynamo=False)  # fmt: skip
    finally:
        set_fft_impl(model, "torch")


def _write(form, model, folder):
    from safetensors.torch import save_file

    paths = {"lightning-checkpoint": "best.ckpt", "torchscript": "big-lama.pt", "state-dict": "lama.pth",
             "safetensors": "lama.safetensors", "onnx": "lama_fp32.onnx"}  # fmt: skip
    path = folder / paths[form]
    if form == "lightning-checkpoint":
        _lightning(model, path)
    elif form == "torchscript":
        _torchscript(model, path)
    elif form == "state-dict":
        torch.save(model.state_dict(), path)
    elif form == "safetensors":
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    else:
        _onnx(model, path)
    return path


FORMS = ("lightning-checkpoint", "torchscript", "state-dict", "safetensors", "onnx")


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """One tiny generator written in every form."""
    model = tiny_lama(seed=3)
    folder = tmp_path_factory.mktemp("lama-forms")
    return model, {form: _write(form, model, folder) for form in FORMS}


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from skinretouch.benchmark.photos import load_bench_photos

    (bench,) = load_bench_photos(names=["grace_hopper"])
    face = np.ascontiguousarray(bench.rgb[150:406, 200:456])
    tiled = np.concatenate([np.concatenate([face, face[:, ::-1]], 1), np.concatenate([face[::-1], face[::-1, ::-1]], 1)], 0)
    folder = tmp_path_factory.mktemp("photo")
    Image.fromarray(np.ascontiguousarray(tiled[:SIDE, :SIDE])).save(folder / "face.png")
    mask = np.zeros((SIDE, SIDE), bool)
    top, left, side = HOLE
    mask[top : top + side, left : left + side] = True
    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "mask.png")
    return folder, mask


def _process(tmp_path, photo, weights, capsys):
    folder, mask = photo
    source = tmp_path / "face.png"
    source.write_bytes((folder / "face.png").read_bytes())
    config = tmp_path / "config.toml"
    config.write_text(f"[engines]\nlama_weights = '{weights}'\nlama_backend = 'torch'\ndevice = 'cpu'\n")
    assert main(["doctor", "--config", str(config)]) == 0
    doctor = capsys.readouterr().out
    assert main(["process", str(source), "--mask", str(folder / "mask.png"), "--config", str(config)]) == 0
    (region,) = json.loads((tmp_path / "face.png.retouch.json").read_text())["regions"]
    before = np.asarray(Image.open(source)).astype(np.float32) / 255
    after = np.asarray(Image.open(tmp_path / "face.retouched.png")).astype(np.float32) / 255
    return region, doctor, before, after


@pytest.mark.parametrize("form", FORMS)
def test_each_published_form_runs_through_process(tmp_path, photo, tiny_files, capsys, form):
    model, files = tiny_files
    weights = files[form]
    assert sniff_lama_form(weights) == form
    region, doctor, before, after = _process(tmp_path, photo, weights, capsys)
    assert "code from the checkpoint ran" not in doctor
    lama_row = next(line for line in doctor.splitlines() if line.startswith("inpaint/lama"))
    assert " available " in lama_row and f"{form} at {weights}" in lama_row
    assert ("run by onnxruntime" if form == "onnx" else "run by torch") in lama_row
    assert (region["route"], region["engine"], region["fallback_reason"]) == ("lama", "lama", None)
    mask = photo[1]
    assert np.array_equal(after[~mask], before[~mask])
    assert np.abs(after[mask] - before[mask]).mean() > 0.01
    if form != "onnx":
        loaded = read_lama(weights)
        assert generator_spec(loaded.state) == model.spec  # layer sizes read from the tensors
        for name, value in model.state_dict().items():
            assert torch.equal(loaded.state[name], value), name


def test_torch_forms_give_the_same_fill_and_onnx_a_close_one(tiny_files):
    from skinretouch.engines.lama import LamaEngine

    _model, files = tiny_files
    rng = np.random.default_rng(0)
    crop = rng.random((120, 120, 3), dtype=np.float32)
    hole = np.zeros((120, 120), bool)
    hole[40:80, 40:80] = True
    fills = {}
    for form in ("lightning-checkpoint", "torchscript", "safetensors", "onnx"):
        config = EnginesConfig(lama_weights=str(files[form]), lama_backend="torch", device="cpu")
        engine = LamaEngine(config)
        fills[form] = engine(crop, hole)
        assert engine.form == form
    assert np.array_equal(fills["lightning-checkpoint"], fills["torchscript"])
    assert np.array_equal(fills["lightning-checkpoint"], fills["safetensors"])
    # the ONNX graph runs at its fixed 512 px instead of the 256-px working size
    assert np.abs(fills["onnx"][hole] - fills["safetensors"][hole]).mean() < 0.05


def test_other_files_are_refused_naming_expected_and_found(tmp_path):
    junk = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(2, 3, 7, 7)}, junk)
    with pytest.raises(WeightsError, match=r"expected a big-lama generator.*found a state-dict with tensors conv1\.weight"):
        read_lama(junk)
    text = tmp_path / "notes.bin"
    text.write_text("hello")
    with pytest.raises(WeightsError, match=r"expected a big-lama generator.*found a file that is none of these"):
        read_lama(text)
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])  # fmt: skip
    onnx.save(helper.make_model(graph), str(tmp_path / "other.onnx"))
    with pytest.raises(WeightsError, match=r"image input \(N, 3, H, W\) and a mask input.*found x \[1, 3, 8, 8\]"):
        read_lama(tmp_path / "other.onnx")


class _Recording(InpaintEngine):
    """Records the working size and answers a flat grey."""

    name = "recording"
    context_factor = 10.0  # the whole crop is context
    min_context_px = 0

    def __init__(self, config, *, min_side, max_side):
        super().__init__(config)
        self.min_side, self.max_side, self.seen = min_side, max_side, []

    @property
    def working_min_side_px(self):
        return self.min_side

    @property
    def working_max_side_px(self):
        return self.max_side

    @classmethod
    def available(cls, config):
        return True, ""

    def load(self):
        pass

    def forward(self, image, hole, *, seed):
        self.seen.append(image.shape[:2])
        return np.full(image.shape, 0.25, np.float32)


@pytest.mark.parametrize(
    ("crop", "min_side", "max_side", "working"),
    [
        ((40, 60), 256, 512, (256, 384)),  # enlarged: short side to 256
        ((40, 300), 256, 512, (68, 512)),  # enlarging stops where the long side hits the cap
        ((600, 900), 256, 512, (341, 512)),  # reduced to the cap
        ((300, 400), 256, 512, (300, 400)),  # already in range: as is
        ((40, 60), 0, 512, (40, 60)),  # 0: never enlarged
    ],
)
def test_working_resolution_rule(crop, min_side, max_side, working):
    engine = _Recording(EnginesConfig(lama=LamaConfig(working_min_side_px=min_side)), min_side=min_side, max_side=max_side)
    height, width = crop
    image = np.random.default_rng(1).random((height, width, 3), dtype=np.float32)
    hole = np.zeros(crop, bool)
    hole[height // 3 : height // 2, width // 3 : width // 2] = True
    fill = engine(image, hole)
    (seen,) = engine.seen
    pad = engine.padding_multiple()
    assert seen == (-(-working[0] // pad) * pad, -(-working[1] // pad) * pad)
    assert np.array_equal(fill[~hole], image[~hole])  # outside bit for bit
    assert np.allclose(fill[hole], 0.25, atol=1e-6)  # inside only the model's (reduced) picture


def test_a_generator_missing_layers_is_a_weights_error(tmp_path):
    from skinretouch.engines.lama import LamaEngine

    state = {k: v for k, v in tiny_lama().state_dict().items() if not k.startswith("model.4.")}  # last down-sampling
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(WeightsError, match="does not fit the big-lama generator"):
        LamaEngine(EnginesConfig(lama_weights=str(tmp_path / "cut.pth"))).build_model()
