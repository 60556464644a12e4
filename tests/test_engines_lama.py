"""LaMa: the big-lama layout, strict checkpoint loading, the exportable DFT, ONNX parity, the engine."""

from __future__ import annotations

import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the neural extra (torch) is not installed")

from engines_tiny import save_lightning_style_checkpoint, tiny_lama, tiny_lama_spec  # noqa: E402

from skinretouch.config import EnginesConfig  # noqa: E402
from skinretouch.engines.inpaint_base import WeightsError  # noqa: E402
from skinretouch.engines.lama import LamaEngine, export_onnx, load_generator_weights, read_state_dict  # noqa: E402
from skinretouch.engines.lama_arch import (  # noqa: E402
    BigLamaGenerator,
    _irfft2_matmul,
    _rfft2_matmul,
    set_fft_impl,
)

FIXTURE = Path(__file__).parent / "fixtures" / "engines_big_lama_keys.txt"
# ONNX Runtime against eager torch (torch.fft), tiny generator, several sizes: measured
# ~1e-7 here (float32 rounding of the matrix DFT); the bound leaves room for other CPUs
PARITY_TOLERANCE = 1e-5


def _expected_keys() -> list[str]:
    lines = FIXTURE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_full_big_lama_has_the_public_checkpoint_key_layout():
    with torch.device("meta"):  # no memory: 51 M parameters are only described
        model = BigLamaGenerator()
    state = model.state_dict()
    assert list(state) == _expected_keys()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert shapes["model.1.ffc.convl2l.weight"] == (64, 4, 7, 7)
    assert shapes["model.4.ffc.convl2l.weight"] == (128, 256, 3, 3)
    assert shapes["model.4.ffc.convl2g.weight"] == (384, 256, 3, 3)
    assert shapes["model.5.conv1.ffc.convg2g.conv1.0.weight"] == (192, 384, 1, 1)
    assert shapes["model.22.conv2.ffc.convg2g.fu.conv_layer.weight"] == (384, 384, 1, 1)
    assert shapes["model.24.weight"] == (512, 256, 3, 3)  # ConvTranspose2d: (in, out, k, k)
    assert shapes["model.34.weight"] == (3, 64, 7, 7)
    parameters = sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert 50e6 < parameters < 52e6  # big-lama has ~51 M parameters


@pytest.mark.parametrize(("height", "width"), [(1, 1), (5, 7), (8, 8), (9, 16), (17, 6)])
def test_matrix_dft_matches_torch_fft(height, width):
    generator = torch.Generator().manual_seed(height * 100 + width)
    x = torch.randn(2, 3, height, width, generator=generator)
    real, imag = _rfft2_matmul(x)
    spectrum = torch.fft.rfft2(x, norm="ortho")
    assert torch.allclose(real, spectrum.real, atol=1e-5)
    assert torch.allclose(imag, spectrum.imag, atol=1e-5)
    # the inverse, on spectra that are NOT Hermitian-consistent (as after a convolution)
    a = torch.randn(2, 3, height, width // 2 + 1, generator=generator)
    b = torch.randn(2, 3, height, width // 2 + 1, generator=generator)
    expected = torch.fft.irfft2(torch.complex(a, b), s=(height, width), norm="ortho")
    assert torch.allclose(_irfft2_matmul(a, b, width), expected, atol=1e-5)


def test_lightning_checkpoint_loads_strictly_without_running_its_code(tmp_path, capsys):
    model = tiny_lama(seed=1)
    path = save_lightning_style_checkpoint(model, tmp_path / "best.ckpt")
    # plus a pickled object whose class is not importable at load time and whose unpickling
    # would run code: it must be neither imported nor run
    fake = types.ModuleType("fake_omegaconf")

    class Evil:
        def __reduce__(self):
            return (print, ("code from the checkpoint ran",))

    Evil.__module__ = "fake_omegaconf"
    fake.Evil = Evil
    sys.modules["fake_omegaconf"] = fake
    try:
        checkpoint = torch.load(path, weights_only=True)
        checkpoint["hyper_parameters"] = {"config": Evil()}
        torch.save(checkpoint, path)
    finally:
        del sys.modules["fake_omegaconf"]

    loaded = BigLamaGenerator(tiny_lama_spec())
    load_generator_weights(loaded, path)
    assert "code from the checkpoint ran" not in capsys.readouterr().out
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_plain_and_safetensors_state_dicts_load(tmp_path):
    from safetensors.torch import save_file

    model = tiny_lama(seed=2)
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    save_file(model.state_dict(), str(tmp_path / "lama.safetensors"))
    for name in ("plain.pt", "lama.safetensors"):
        state = read_state_dict(tmp_path / name)
        assert sorted(state) == sorted(model.state_dict())
        loaded = BigLamaGenerator(tiny_lama_spec())
        load_generator_weights(loaded, tmp_path / name)
        assert torch.equal(loaded.state_dict()["model.4.bn_g.running_var"], model.state_dict()["model.4.bn_g.running_var"])


def test_wrong_architecture_names_missing_and_unexpected_keys(tmp_path):
    model = tiny_lama()
    state = model.state_dict()
    state.pop("model.1.ffc.convl2l.weight")
    state["model.99.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(WeightsError) as caught:
        load_generator_weights(BigLamaGenerator(tiny_lama_spec()), tmp_path / "other.pt")
    message = str(caught.value)
    assert "1 missing key(s) (model.1.ffc.convl2l.weight)" in message
    assert "1 unexpected key(s) (model.99.weight)" in message


def test_shape_mismatch_and_missing_file_are_weights_errors(tmp_path):
    torch.save(tiny_lama().state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(WeightsError, match="size mismatch"):
        bigger = BigLamaGenerator(tiny_lama_spec().__class__(ngf=8, n_downsampling=3, n_blocks=2))
        load_generator_weights(bigger, tmp_path / "tiny.pt")
    with pytest.raises(WeightsError, match="no LaMa weights"):
        read_state_dict(tmp_path / "absent.ckpt")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnx", reason="onnx is not installed")
    model = tiny_lama(seed=3)
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    return model, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(("height", "width"), [(32, 32), (48, 80), (120, 64)])
def test_onnx_runtime_matches_torch_at_dynamic_sizes(exported, height, width):
    model, session = exported
    rng = np.random.default_rng(height + width)
    image = rng.random((1, 3, height, width), dtype=np.float32)
    hole = np.zeros((1, 1, height, width), np.float32)
    hole[..., height // 4 : height // 2, width // 3 : 2 * width // 3] = 1.0
    with torch.no_grad():
        reference = model(torch.from_numpy(image), torch.from_numpy(hole)).numpy()  # torch.fft path
    (onnx_out,) = session.run(None, {"image": image, "hole": hole})
    assert onnx_out.shape == (1, 3, height, width)
    # the comparison means something only if the output varies
    assert reference.std() > 0.02
    difference = float(np.abs(onnx_out - reference).max())
    print(f"onnxruntime vs torch max abs diff at {height}x{width}: {difference:.2e}")
    assert difference < PARITY_TOLERANCE


def test_export_leaves_the_model_on_the_eager_fft(exported):
    model, _ = exported
    units = [m for m in model.modules() if hasattr(m, "fft_impl")]
    assert units and all(u.fft_impl == "torch" for u in units)
    set_fft_impl(model, "torch")


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_engine_fills_only_the_hole_through_each_backend(tmp_path, backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    weights = save_lightning_style_checkpoint(tiny_lama(seed=4), tmp_path / "best.ckpt")
    config = EnginesConfig(lama_weights=str(weights), lama_backend=backend, device="cpu", cache_dir=str(tmp_path / "cache"))
    assert LamaEngine.available(config)[0]
    engine = LamaEngine(config, spec=tiny_lama_spec())
    rng = np.random.default_rng(5)
    crop = rng.random((70, 90, 3), dtype=np.float32)
    hole = np.zeros((70, 90), bool)
    hole[30:41, 40:52] = True
    fill = engine(crop, hole)
    assert engine.backend_name == backend
    assert fill.dtype == np.float32 and fill.shape == crop.shape
    assert np.array_equal(fill[~hole], crop[~hole])  # bit-identical outside
    assert np.abs(fill[hole] - crop[hole]).mean() > 0.01  # the model changed the inside
    if backend == "onnxruntime":
        assert list((tmp_path / "cache").glob("lama-*.onnx"))


def test_engine_downscales_big_crops_to_the_working_size(tmp_path):
    weights = tmp_path / "lama.pt"
    torch.save(tiny_lama(seed=6).state_dict(), weights)
    config = EnginesConfig(lama_weights=str(weights), lama_backend="torch", device="cpu", lama_max_side_px=64)
    engine = LamaEngine(config, spec=tiny_lama_spec())
    seen = []
    original = engine.forward

    def spy(image, hole, *, seed):
        seen.append(image.shape)
        return original(image, hole, seed=seed)

    engine.forward = spy
    crop = np.random.default_rng(7).random((200, 300, 3), dtype=np.float32)
    hole = np.zeros((200, 300), bool)
    hole[60:140, 100:200] = True
    fill = engine(crop, hole)
    (shape,) = seen
    assert max(shape[:2]) <= 64 and shape[0] % 8 == 0 and shape[1] % 8 == 0
    assert np.array_equal(fill[~hole], crop[~hole])


def test_torchscript_archive_loads_its_tensors(tmp_path):
    # IOPaint distributes big-lama as a traced TorchScript file
    model = tiny_lama(seed=9)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace is deprecated
        traced = torch.jit.trace(model, (torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)))
    traced.save(str(tmp_path / "big-lama.pt"))
    loaded = BigLamaGenerator(tiny_lama_spec())
    load_generator_weights(loaded, tmp_path / "big-lama.pt")
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
