"""The file stage, outside the in-memory pipeline: photos on disk in, outputs and reports out.

- :mod:`.stage`: :func:`~.stage.process_file`, the one entry for a photo file (CLI loop,
  daemon workers, benchmark), and :class:`~.stage.RetouchFiles`, the daemon's processor.
- :mod:`.outcome`: :class:`~.outcome.FileOutcome` and the :class:`~.outcome.FileProcessor`
  protocol, the seam the daemon talks through (light: no pipeline import).
- :mod:`.report`: :class:`~.report.Report`, the one writer of ``NAME.EXT.retouch.json``.

The pipeline (:mod:`skinretouch.pipeline`) imports none of these.
"""
