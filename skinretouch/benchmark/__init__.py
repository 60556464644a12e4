"""The bench: synthetic blemishes planted on real skin photos, scored against the clean originals.

Modules: :mod:`.photos` (bench photos and their skin regions), :mod:`.planting` (spots and their
ground truth), :mod:`.metrics` (removal and detection figures), :mod:`.peers` (other inpainters),
:mod:`.run` (the whole run: ``python -m skinretouch.benchmark``).
"""
