"""Issue 17: what start-up skips, and the lean file stage writes exactly what it wrote before."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from skinretouch.config import Config
from skinretouch.files.stage import process_file
from skinretouch.imageio import encode_image, read_image, to_float
from skinretouch.imageio.masks import encode_mask_png
from skinretouch.pipeline import Retoucher
from skinretouch.sidecars import output_paths


def test_import_deferring_runs_a_deferred_submodule_only_when_read(tmp_path):
    package = tmp_path / "deferprobe"
    package.mkdir()
    (package / "__init__.py").write_text("from . import heavy\nfrom . import light\n")
    (package / "heavy.py").write_text("import sys\nsys.deferprobe_heavy_ran = True\nVALUE = 42\n")
    (package / "light.py").write_text("VALUE = 1\n")
    probe = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from skinretouch.lazy import import_deferring
        package = import_deferring("deferprobe", ["deferprobe.heavy"])
        before = getattr(sys, "deferprobe_heavy_ran", False)
        value = package.heavy.VALUE
        print(before, getattr(sys, "deferprobe_heavy_ran", False), value, package.light.VALUE)
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "True", "42", "1"], done.stderr[-2000:]


def test_a_package_deferred_whole_imports_one_submodule_without_its_init_and_runs_it_when_read(tmp_path):
    """Like mediapipe: the top package rebinds a subpackage's name (``import top.mid.tasks as
    mid``) and ``top.mid.tasks.vision``'s ``__init__`` imports every sibling of the submodule
    we use. Deferred whole, ``vision`` gives its submodule without running its ``__init__``;
    a name only the ``__init__`` defines runs it (its ``import ... as`` still resolving), as
    does a lazily deferred sibling read later (torch's import reads every module), and the
    rebound name is left as the top package made it."""
    vision = tmp_path / "top" / "mid" / "tasks" / "vision"
    vision.mkdir(parents=True)
    (tmp_path / "top" / "__init__.py").write_text("import top.mid.tasks as mid\n")
    (tmp_path / "top" / "mid" / "__init__.py").write_text("")
    (tmp_path / "top" / "mid" / "tasks" / "__init__.py").write_text("from . import vision\n")
    (vision / "__init__.py").write_text(
        "import sys\nsys.vision_init_ran = True\nimport top.mid.tasks.vision.heavy as heavy\nHEAVY = heavy.VALUE\n"
    )
    (vision / "heavy.py").write_text("VALUE = 42\n")
    (vision / "face.py").write_text("VALUE = 7\n")
    # A submodule deferred the other way (run on its first attribute read, long after the
    # import) whose own import walks the rebound name too.
    (tmp_path / "top" / "mid" / "tasks" / "audio.py").write_text("import top.mid.tasks.vision.heavy as heavy\n")
    (tmp_path / "top" / "mid" / "tasks" / "__init__.py").write_text("from . import audio\nfrom . import vision\n")
    probe = textwrap.dedent(f"""
        import importlib, sys
        sys.path.insert(0, {str(tmp_path)!r})
        from skinretouch.lazy import import_deferring
        top = import_deferring("top", ["top.mid.tasks.audio"], ["top.mid.tasks.vision"])
        face = importlib.import_module("top.mid.tasks.vision.face").VALUE
        before = (getattr(sys, "vision_init_ran", False), "top.mid.tasks.vision.heavy" in sys.modules)
        audio = sys.modules["top.mid.tasks.audio"].heavy.VALUE  # as inspect.getmodule reads every module
        heavy = sys.modules["top.mid.tasks.vision"].HEAVY
        print(face, *before, audio, getattr(sys, "vision_init_ran", False), heavy, top.mid is sys.modules["top.mid.tasks"])
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["7", "False", "False", "42", "True", "42", "True"], done.stderr[-2000:]


def _photo(tmp_path, name: str, dtype) -> tuple:
    rng = np.random.default_rng(3)
    skin = np.clip(np.array([0.78, 0.62, 0.55]) + rng.normal(0, 0.015, (192, 224, 3)), 0, 1)
    skin[80:87, 100:107] = (0.6, 0.28, 0.27)  # a red spot
    skin[40:44, 30:34] = (0.45, 0.3, 0.25)  # a dark one
    peak = np.iinfo(dtype).max
    pixels = np.round(skin * peak).astype(dtype)
    path = tmp_path / name
    cv2.imwrite(str(path), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path


@pytest.mark.parametrize(("name", "dtype"), [("portrait.jpg", np.uint8), ("portrait16.png", np.uint16)])
def test_file_stage_writes_the_same_bytes_as_the_two_copy_path(tmp_path, name, dtype):
    """The stage rebuilds the stored pixels from the float photo and retouches them in place;
    the photo and mask must be byte for byte those of keeping both copies."""
    path = _photo(tmp_path, name, dtype)
    spots = np.zeros((192, 224), bool)
    spots[78:89, 98:109] = spots[38:46, 28:36] = True
    mask_path = tmp_path / "spots.png"
    mask_path.write_bytes(encode_mask_png(spots))
    config = Config()
    with Retoucher(config) as retoucher:
        image = read_image(path)
        result = retoucher.retouch(to_float(image.pixels), mask=spots, orientation=image.orientation)
        expected_photo = encode_image(image, result.apply_to(image.pixels), options=config.output)
        expected_mask = encode_mask_png(result.applied_mask)
        assert result.regions  # the photo has something to retouch

        outcome = process_file(retoucher, path, out_dir=tmp_path / "out", mask_path=mask_path)
    assert outcome.status == "ok", outcome.error
    written = output_paths(path, tmp_path / "out")
    assert written.image.read_bytes() == expected_photo
    assert written.mask.read_bytes() == expected_mask
    assert outcome.regions == len(result.regions)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_malloc_tuning_is_accepted_by_glibc():
    from skinretouch.startup import MALLOC_TUNING, _tune_malloc

    assert _tune_malloc(MALLOC_TUNING)


BLAS_THREADS_AFTER_PREPARING = '''
import os, sys
from skinretouch.startup import prepare_process
prepare_process(one_shot=sys.argv[1] == "one-shot")
import numpy as np, cv2
m = np.random.default_rng(0).random((400, 400))
m @ m  # large enough for OpenBLAS to hand work to its threads, if it had any
print(len(os.listdir("/proc/self/task")), os.environ["OPENBLAS_NUM_THREADS"])
'''


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="threads listed in /proc")
@pytest.mark.parametrize("kind", ["one-shot", "worker"])
def test_a_prepared_process_runs_blas_on_its_own_thread_unless_told_otherwise(kind):
    """OpenBLAS's busy-waiting workers took a core from the landmarker and the region threads."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    run = [sys.executable, "-c", BLAS_THREADS_AFTER_PREPARING, kind]
    threads, setting = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert (threads, setting) == ("1", "1")
    told = subprocess.run(run, env=env | {"OPENBLAS_NUM_THREADS": "2"}, capture_output=True, text=True,
                          check=True).stdout.split()
    assert told[1] == "2" and int(told[0]) > 1


HASHING_KERNEL = '''
import sys
import numpy as np
from numba import njit
from skinretouch.kernels._cache_loading import load_cached_kernels_lightly

load_cached_kernels_lightly()  # as the kernels' JIT fallback installs it

@njit(cache=True)
def distinct(a):
    seen = set()
    for v in a:
        seen.add(v)
    return len(seen), hash(3.5), hash("abc") != 0

print(distinct(np.arange(10) % 7), "numba.typed.typedlist" in sys.modules)
'''


def test_a_cached_kernel_loads_without_numbas_registries_even_one_that_hashes(tmp_path):
    """The light cache load skips numba's registry refresh; a kernel that needs a symbol the
    refresh would have installed (the hash secret) must still load and give the same result."""
    probe = tmp_path / "hashing_kernel.py"
    probe.write_text(HASHING_KERNEL)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, env=env, timeout=300)
            for _ in range(2)]  # fmt: skip
    compiled, cached = (run.stdout.strip().rsplit(" ", 1) for run in runs)
    assert all(run.returncode == 0 for run in runs), runs[-1].stderr[-2000:]
    assert compiled[0] == cached[0]
    assert (compiled[1], cached[1]) == ("True", "False")  # compiling refreshed; loading did not


BLAS_KERNELS = '''
import sys
import numpy as np
from numba import njit
from skinretouch.kernels._cache_loading import load_cached_kernels_lightly

load_cached_kernels_lightly()  # as the kernels' JIT fallback installs it

@njit(cache=True)
def middle(a):
    return np.median(a)

@njit(cache=True)
def solved(a, b):
    return np.linalg.solve(a, b), np.dot(a, b)

print(middle(np.arange(9.0)), "scipy.linalg" in sys.modules)
x, y = solved(np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([[9.0], [8.0]]))
print(np.round(x.ravel(), 6).tolist(), np.round(y.ravel(), 6).tolist())
'''


def test_a_cached_kernel_loads_without_scipy_linalg_and_one_that_needs_lapack_still_runs(tmp_path):
    """Loading a cached kernel imports numba's numpy implementations, whose BLAS probe would
    import scipy.linalg (a tenth of a second or more of every start); it is answered without
    it. A kernel that does call BLAS/LAPACK must still load from the cache and compute right."""
    probe = tmp_path / "blas_kernels.py"
    probe.write_text(BLAS_KERNELS)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, env=env, timeout=300)
            for _ in range(2)]  # fmt: skip
    assert all(run.returncode == 0 for run in runs), runs[-1].stderr[-2000:]
    cached = runs[1].stdout.splitlines()
    assert cached[0] == "4.0 False"  # the median kernel loaded; scipy.linalg not imported
    assert cached[1] == "[2.0, 3.0] [35.0, 25.0]"
    assert runs[0].stdout.splitlines()[1] == cached[1]  # as compiled
