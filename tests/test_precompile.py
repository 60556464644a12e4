"""``skinretouch compile`` compiles, ahead of the first photo, every kernel a photo then needs
(issue 17: a first ``process`` on a fresh install waited ~90 s for numba)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from skinretouch.precompile import cached_kernel_count, synthetic_skin


def _compiled(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*.nbc")}


def test_the_synthetic_photo_has_marks_on_skin_and_a_large_hole_beside_a_cluster():
    rgb, small, large = synthetic_skin()
    assert rgb.dtype == np.float32 and rgb.shape == (320, 320, 3)
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0
    assert 6 * 20 < small.sum() < 0.1 * small.size  # six marks' spots
    assert large.sum() > 4000 and not (small & large).any()
    darkest = rgb.sum(axis=2).min()
    assert darkest < 0.6 * rgb[0, 0].sum()  # the black dot and the mole stand out


def test_after_compile_a_photo_of_each_kind_compiles_nothing(tmp_path):
    """Into an empty cache: ``compile`` fills it; then an 8-bit JPEG with blemishes, a 16-bit
    PNG and a ``--mask`` run with a large hole are processed without one kernel more."""
    from skinretouch.benchmark.speed import planted_jpeg

    cache = tmp_path / "numba"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cli = [sys.executable, "-m", "skinretouch"]
    compiled_yet = [sys.executable, "-c", "from skinretouch.precompile import kernels_compiled; "
                    "print(kernels_compiled())"]
    assert subprocess.run(compiled_yet, env=env, capture_output=True, text=True).stdout.split()[-1] == "False"
    older = cache / "skinretouch" / "skinretouch_kernels_0123456789abcdef0123.cpython-311-x86_64-linux-gnu.so"
    older.parent.mkdir(parents=True)
    older.write_bytes(b"built for other sources")
    run = subprocess.run([*cli, "compile"], env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    assert not older.exists()
    compiled = _compiled(cache)
    assert len(compiled) >= 60
    assert f"{len(compiled)} kernel signatures cached ({len(compiled)} new)" in run.stdout
    assert cached_kernel_count(cache) == len(compiled)
    assert subprocess.run(compiled_yet, env=env, capture_output=True, text=True).stdout.split()[-1] == "True"

    photo = planted_jpeg(900, 900, tmp_path / "portrait.jpg")
    deep = tmp_path / "deep.png"
    rgb8 = np.asarray(Image.open(photo).convert("RGB"))
    cv2.imwrite(str(deep), np.ascontiguousarray(rgb8[..., ::-1]).astype(np.uint16) * 257)
    mask = np.zeros(rgb8.shape[:2], np.uint8)
    mask[500:680, 300:520] = 255
    mask_path = tmp_path / "hole.png"
    Image.fromarray(mask).save(mask_path)
    libraries = sorted((cache / "skinretouch").glob("skinretouch_kernels_*.so"))
    assert len(libraries) == 1 and "kernel signatures it called ahead of time" in run.stdout
    jit_cli = [sys.executable, "-c", "import sys; from skinretouch.kernels.ahead_of_time import jit_only; "
               "jit_only(); from skinretouch.cli import main; sys.exit(main(sys.argv[1:]))"]  # fmt: skip
    for args in ([str(photo)], [str(deep)], [str(photo), "--mask", str(mask_path)]):
        out = tmp_path / f"out{len(args)}_{Path(args[0]).stem}"
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "skinretouch", "process", *args, "--out-dir",
                               str(out), "--force"], env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert _compiled(cache) == compiled, f"{args}: compiled {sorted(_compiled(cache) - compiled)}"
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time")}
        assert "skinretouch.pipeline" in imported and "numba" not in imported, f"{args}: numba imported"
        # The same photo through numba's JIT: the same bytes out.
        jit_out = tmp_path / f"jit{len(args)}_{Path(args[0]).stem}"
        done = subprocess.run([*jit_cli, "process", *args, "--out-dir", str(jit_out), "--force"], env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        for made in sorted(p for p in out.iterdir() if not p.name.endswith(".json")):
            assert made.read_bytes() == (jit_out / made.name).read_bytes(), f"{args}: {made.name} differs"


def test_doctor_says_whether_the_kernels_are_compiled(monkeypatch, tmp_path):
    from skinretouch.config import Config
    from skinretouch.doctor import collect_checks
    from skinretouch.kernels import ahead_of_time, removal_batch

    def numba_row() -> str:
        (row,) = [c for c in collect_checks(Config()) if c.name == "freqsplit-numba"]
        assert row.available
        return row.detail

    monkeypatch.setattr(ahead_of_time, "compiled_library_path", lambda: tmp_path / "absent.so")
    monkeypatch.setattr(removal_batch, "batch_fill_compiled", lambda: False)
    assert "not compiled yet" in numba_row() and "skinretouch compile" in numba_row()
    monkeypatch.setattr(removal_batch, "batch_fill_compiled", lambda: True)
    assert "kernels compiled in numba's cache only" in numba_row() and "skinretouch compile" in numba_row()
    library = tmp_path / "skinretouch_kernels_0123.so"
    library.write_bytes(b"")
    monkeypatch.setattr(ahead_of_time, "compiled_library_path", lambda: library)
    assert "kernels compiled ahead of time (skinretouch_kernels_0123.so" in numba_row()


def test_a_failed_ahead_of_time_build_is_reported_and_leaves_the_kernels_to_the_jit(monkeypatch):
    """No C compiler (or a numba without ``numba.pycc``): ``compile`` says so and still ends."""
    import skinretouch.precompile as precompile

    def no_compiler(say):
        raise RuntimeError("error: command 'gcc' failed: No such file or directory")

    monkeypatch.setattr(precompile, "_run_pipeline", lambda config, say: None)
    monkeypatch.setattr(precompile, "build_ahead_of_time", no_compiler)
    said: list[str] = []
    precompile.compile_kernels(say=said.append)
    assert said == ["ahead-of-time compilation failed, the kernels run through numba's JIT: "
                    "error: command 'gcc' failed: No such file or directory"]  # fmt: skip
