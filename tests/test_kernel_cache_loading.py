"""Cached kernels load without parsing their linking bitcode (issue 17), and nothing a kernel
needs from that bitcode is lost: the symbols it defines, and linking into a kernel compiled
later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")

import llvmlite.binding as ll  # noqa: E402
from numba import njit  # noqa: E402

from skinretouch.kernels import _cache_loading  # noqa: E402


def _module_defined_names(bitcode: bytes) -> set[str]:
    """What numba itself records as defined: every non-declaration function and global."""
    module = ll.parse_bitcode(bitcode)
    return {g.name for group in (module.functions, module.global_variables) for g in group if not g.is_declaration}


def _object_and_bitcode(library) -> tuple[bytes, bytes]:
    _name, kind, (object_code, bitcode) = library.serialize_using_object_code()
    assert kind == "object"
    return object_code, bitcode


def test_the_elf_symbol_table_names_what_the_module_defines():
    """A kernel with a callee, a constant array (a global) and an exception path: the names
    read from its machine code are exactly those numba reads from its module."""

    @njit
    def callee(x):
        return x * 3 + 1

    table = np.arange(7, dtype=np.int64)

    @njit
    def kernel(values):
        if values.size == 0:
            raise ValueError("empty")
        total = 0
        for v in values:
            total += callee(v) + table[v % 7]
        return total

    assert kernel(np.arange(10)) == sum(3 * v + 1 + v % 7 for v in range(10))
    (library,) = [overload.library for overload in kernel.overloads.values()]
    object_code, bitcode = _object_and_bitcode(library)
    names = _cache_loading.elf_defined_symbols(object_code)
    assert names == _module_defined_names(bitcode)
    assert any("callee" in name for name in names)


RECORDED_LOADING = textwrap.dedent(
    """
    import json
    import llvmlite.binding as ll
    from numba.core import codegen
    from skinretouch.kernels import _cache_loading
    from skinretouch.kernels.ahead_of_time import jit_only

    _cache_loading.load_cached_kernels_lightly()
    jit_only()  # through numba's cache, even where a module compiled ahead of time exists

    light = codegen.CPUCodeLibrary._unserialize.__func__
    checked = []

    def recording(cls, codegen_, state):
        name, kind, data = state
        if kind == "object":
            module = ll.parse_bitcode(data[1])
            numbas = {g.name for group in (module.functions, module.global_variables)
                      for g in group if not g.is_declaration}
            checked.append([name.split(".")[-1][:40], _cache_loading.elf_defined_symbols(data[0]) == numbas])
        return light(cls, codegen_, state)

    codegen.CPUCodeLibrary._unserialize = classmethod(recording)
    from skinretouch.config import Config
    from skinretouch.pipeline import Retoucher

    with Retoucher(Config()) as retoucher:
        retoucher.warm_up(detect=True)
    print(json.dumps(checked))
    """
)


def test_every_kernel_a_photo_loads_from_the_cache_defines_what_its_module_says():
    """The kernels a retouch loads from the cache (a fresh process, run twice so that the
    cache is filled first): for each, the names read from its machine code equal those numba
    reads from its bitcode."""
    command = [sys.executable, "-c", RECORDED_LOADING]
    subprocess.run(command, check=True, timeout=900, capture_output=True)
    run = subprocess.run(command, timeout=900, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    checked = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(checked) >= 5, checked
    assert all(same for _name, same in checked), checked


def test_non_elf_or_damaged_machine_code_is_loaded_numbas_way():
    assert _cache_loading.elf_defined_symbols(b"\xcf\xfa\xed\xfe" + bytes(60)) is None  # Mach-O
    assert _cache_loading.elf_defined_symbols(b"\x7fELF\x01\x01" + bytes(58)) is None  # 32-bit

    @njit
    def small(x):
        return x + 1

    small(1)
    (library,) = [overload.library for overload in small.overloads.values()]
    object_code, _bitcode = _object_and_bitcode(library)
    assert _cache_loading.elf_defined_symbols(object_code)
    assert _cache_loading.elf_defined_symbols(object_code[: len(object_code) // 2]) is None  # cut short


CACHED_MODULE = textwrap.dedent(
    """
    from numba import njit

    @njit(cache=True)
    def doubled(x):
        return 2 * x
    """
)

LATER_COMPILATION = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from skinretouch.kernels import _cache_loading
    from numba import njit

    _cache_loading.load_cached_kernels_lightly()
    import cached_kernel

    assert cached_kernel.doubled(21) == 42
    (library,) = [o.library for o in cached_kernel.doubled.overloads.values()]
    print("deferred" if "_skinretouch_linking_bitcode" in library.__dict__ else "parsed")

    @njit
    def calls_it(x):  # compiled now: links the cached kernel's module into its own
        return cached_kernel.doubled(x) + 1

    print(calls_it(20))
    """
)


def test_a_kernel_compiled_later_links_a_cached_kernel_whose_bitcode_was_deferred(tmp_path):
    (tmp_path / "cached_kernel.py").write_text(CACHED_MODULE)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    fill_cache = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
                  "import cached_kernel; cached_kernel.doubled(1)"]
    subprocess.run(fill_cache, check=True, env=env, timeout=300)
    script = tmp_path / "later.py"
    script.write_text(LATER_COMPILATION)
    run = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, timeout=300,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["deferred", "41"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
