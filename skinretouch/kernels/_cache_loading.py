"""Loading a kernel from numba's on-disk cache without numba's whole typing set-up (issue 17).

Before it loads a cached kernel, numba refreshes its target context: it imports and registers
the implementations of everything numba can compile (numpy's linear algebra, which imports
scipy.linalg, random generators, typed containers, ...). That is most of a second on the
shared machine, paid on every start of ``process`` and every daemon worker, although a cached
kernel is machine code that needs none of it: only the runtime its allocations call into
(``rtsys.initialize``) and the symbols numba installs for it (its helpers when the target
context is made; the hash secret when ``numba.cpython.hashing`` is imported). A kernel that
must really be compiled still gets the full refresh, which numba's compiler does itself first.

The first cached kernel that uses a numpy function also imports ``numba.np.arraymath``, which
asks whether BLAS is there by importing ``scipy.linalg`` (a tenth to a third of a second, most
of it scipy's array-API layer). That import is made with the question answered from scipy being
installed; the kernels call no BLAS or LAPACK routine (``tone`` solves its 6x6 system itself),
and a kernel compiled later that does still finds scipy's routines, which numba resolves when
they are first called.

A cached kernel also carries its whole LLVM module as bitcode, kept for one use only: linking
it into a kernel compiled later that calls it. numba parses that bitcode on load (half of
the 130 ms the removal's batch kernel, 2.9 MB of machine code, took to load) and walks every
function in it through the FFI to learn which symbols the library defines (the other half).
Here the bitcode is parsed only when a later compilation asks for it
(``_get_module_for_linking``), and the defined symbols are read from the machine code's own
ELF symbol table, which names the same functions and globals (checked in the tests against
the module's). Machine code that is not 64-bit little-endian ELF is loaded numba's way.

If numba's internals are not the ones this was written for, nothing is changed.
"""

from __future__ import annotations

import importlib.util
import struct
import sys

from numba.core import caching, codegen

__all__ = ["cached_signatures", "elf_defined_symbols", "load_cached_kernels_lightly"]

_PATCHED = "_skinretouch_light_load"


def _load_overload_lightly(self, sig, target_context):
    """``Cache.load_overload`` minus ``target_context.refresh()``: the runtime, and the one
    module of the refresh that installs symbols compiled code may link against (the hash
    secret), whether or not the kernel's own cached environment imports it."""
    import numba.cpython.hashing  # noqa: F401
    from numba.core.runtime import rtsys

    _import_arraymath_without_blas_probe()
    rtsys.initialize(target_context)
    with self._guard_against_spurious_io_errors():
        return self._load_overload(sig, target_context)
    return None  # reached when the guard swallows a spurious I/O error, as numba's own


def _blas_installed() -> None:
    """numba's ``ensure_blas`` answered without importing scipy.linalg: is scipy there."""
    if importlib.util.find_spec("scipy") is None:
        raise ImportError("scipy 0.16+ is required for linear algebra")


def _import_arraymath_without_blas_probe() -> None:
    """Import ``numba.np.arraymath`` with its import-time BLAS probe answered cheaply."""
    if "numba.np.arraymath" in sys.modules:
        return
    from numba.np import linalg

    probe = getattr(linalg, "ensure_blas", None)
    if probe is None:
        return
    linalg.ensure_blas = _blas_installed
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        linalg.ensure_blas = probe


# ELF: section header fields, symbol table entries, and what a defined symbol is not.
_SHT_SYMTAB = 2
_SHN_UNDEF = 0
_STT_SECTION, _STT_FILE = 3, 4
_SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
_SYMBOL = struct.Struct("<IBBHQQ")


def elf_defined_symbols(object_code: bytes) -> set[str] | None:
    """The names of the functions and globals that 64-bit little-endian ELF ``object_code``
    defines (its symbol table, less undefined, section and file entries); None if it is not
    such an object, or not a whole one."""
    if object_code[:4] != b"\x7fELF" or object_code[4:6] != b"\x02\x01":
        return None
    try:
        return _symbol_table_names(object_code)
    except (struct.error, IndexError, ValueError):  # truncated or damaged: numba's own way says so
        return None


def _symbol_table_names(object_code: bytes) -> set[str]:
    (section_offset,) = struct.unpack_from("<Q", object_code, 0x28)
    entry_size, count = struct.unpack_from("<HH", object_code, 0x3A)
    sections = [_SECTION_HEADER.unpack_from(object_code, section_offset + i * entry_size) for i in range(count)]
    names: set[str] = set()
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, _entsize in sections:
        if kind != _SHT_SYMTAB:
            continue
        strings = sections[link][4]
        for name, info, _other, section, _value, _size in _SYMBOL.iter_unpack(object_code[offset:offset + size]):
            if section == _SHN_UNDEF or (info & 0xF) in (_STT_SECTION, _STT_FILE) or not name:
                continue
            start = strings + name
            names.add(object_code[start:object_code.index(b"\0", start)].decode())
    return names


_numba_unserialize = getattr(getattr(codegen.CPUCodeLibrary, "_unserialize", None), "__func__", None)
_numba_module_for_linking = getattr(codegen.CPUCodeLibrary, "_get_module_for_linking", None)


def _unserialize_lightly(cls, codegen_, state):
    """``CPUCodeLibrary._unserialize`` for machine code: the linking bitcode kept unparsed, the
    defined symbols read from the ELF symbol table (numba's own way for anything else)."""
    name, kind, data = state
    defined = elf_defined_symbols(data[0]) if kind == "object" else None
    if defined is None:
        return _numba_unserialize(cls, codegen_, state)
    object_code, shared_bitcode = data
    library = codegen_.create_library(name)
    library.enable_object_caching()
    library._set_compiled_object(object_code)
    library._skinretouch_linking_bitcode = shared_bitcode
    library._finalize_final_module()
    codegen_._engine._defined_symbols |= defined
    return library


def _module_for_linking_lightly(self):
    """The library's module for linking into another, its bitcode parsed on this first use."""
    bitcode = self.__dict__.pop("_skinretouch_linking_bitcode", None)
    if bitcode is not None:
        self._shared_module = codegen.ll.parse_bitcode(bitcode)
    return _numba_module_for_linking(self)


def _defer_linking_modules() -> bool:
    """Install the two functions above; whether numba's internals are the expected ones."""
    library = codegen.CPUCodeLibrary
    if getattr(library._get_module_for_linking, _PATCHED, False):
        return True
    engine = getattr(codegen, "JitEngine", None)
    expected = (
        _numba_unserialize is not None
        and _numba_module_for_linking is not None
        and hasattr(codegen, "ll")
        and engine is not None
        and hasattr(engine, "_load_defined_symbols")
        and all(hasattr(library, name) for name in ("enable_object_caching", "_set_compiled_object",
                                                   "_finalize_final_module"))
    )
    if not expected:
        return False
    setattr(_module_for_linking_lightly, _PATCHED, True)
    library._unserialize = classmethod(_unserialize_lightly)
    library._get_module_for_linking = _module_for_linking_lightly
    return True


def load_cached_kernels_lightly() -> bool:
    """Make numba load cached kernels without refreshing its registries or parsing their
    linking bitcode; whether it does."""
    cache = caching.Cache
    if getattr(cache.load_overload, _PATCHED, False):
        return True
    if not (hasattr(cache, "_load_overload") and hasattr(cache, "_guard_against_spurious_io_errors")):
        return False
    _defer_linking_modules()
    setattr(_load_overload_lightly, _PATCHED, True)
    cache.load_overload = _load_overload_lightly
    return True


def cached_signatures(kernel) -> int | None:
    """How many compiled signatures numba's on-disk cache holds for ``kernel`` (a ``cache=True``
    dispatcher) and its current source; None if the cache cannot be read this way."""
    try:
        return len(kernel._cache._cache_file._load_index())
    except AttributeError:
        return None
