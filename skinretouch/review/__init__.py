"""``skinretouch review``: a local web page to check, correct and approve the retouch.

The page lists the processed photos of the given folders (from their reports and sidecars),
shows each one before/after with its regions, and lets the photographer reject a region,
keep a mole or freckle, brush a missed spot and re-render from the original with exactly
that mask (:mod:`.decisions`). The server (:mod:`.server`) serves only files under the given
folders, to requests that carry the access token (:mod:`.security`); big photos reach the
browser as cached previews and tiles (:mod:`.previews`).
"""

from __future__ import annotations

__all__: list[str] = []
