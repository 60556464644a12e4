"""kernels"""

from ._cache_loading import load_cached_kernels_lightly

load_cached_kernels_lightly()
