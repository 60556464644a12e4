"""The ``skinretouch`` command line (see CONTRACT.md).

Exit codes: 0 all succeeded; 1 at least one input failed (the others were still
processed, each failure printed as ``path: reason``); 2 usage or configuration error
(nothing processed).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .config import Config, LoggingConfig, load_config
from .errors import ConfigError, SkinRetouchError
from .logs import configure_logging
from .startup import exit_now, prepare_process

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _UsageError(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in ``argv`` (the program's own arguments when None); its exit code.

    Run as the program (``argv`` None), ``process`` ends the process itself once its outputs
    are written and its output streams flushed: tearing down the interpreter (every module,
    mediapipe's and numba's objects) only frees memory and took 0.1-0.2 s.
    """
    as_program = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["process"]:
        prepare_process(one_shot=True)
        code = _main(argv)
        if as_program:
            exit_now(code)
        return code
    return _main(argv)


def _main(argv: list[str]) -> int:
    if argv[:1] == ["bench"]:
        # The benchmark parses its own options (argparse's REMAINDER drops "--flags").
        return _run_bench(argv[1:])
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(args.config) if getattr(args, "config", None) else Config()
        return args.handler(args, config)
    except ConfigError as exc:
        print(f"skinretouch: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (_UsageError, SkinRetouchError) as exc:  # raised before any photo is processed
        print(f"skinretouch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("skinretouch: interrupted", file=sys.stderr)
        return 130


# Packages only the benchmark uses; they come with the ``bench`` extra.
BENCH_EXTRA_PACKAGES = frozenset({"skimage", "matplotlib"})


def _run_bench(argv: list[str]) -> int:
    try:
        from .benchmark.run import main as bench_main

        return bench_main(argv)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in BENCH_EXTRA_PACKAGES:
            raise
        print(
            f"skinretouch bench: the benchmark needs {exc.name}, which comes with the bench extra; "
            "install it with: pip install 'skinretouch[bench]'",
            file=sys.stderr,
        )
        return EXIT_USAGE


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skinretouch",
        description="Find skin blemishes and remove them while keeping skin texture.",
    )
    parser.add_argument("--version", action="version", version=f"skinretouch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    process = commands.add_parser("process", help="retouch photos (files or folders of them)")
    process.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    process.add_argument("--out-dir", type=Path, help="write outputs here instead of beside each input")
    process.add_argument(
        "--mask", type=Path, metavar="MASK.png", help="remove exactly these non-zero pixels (one image only)"
    )
    process.add_argument("--config", type=Path, metavar="FILE")
    process.add_argument("--force", action="store_true", help="process even if an up-to-date report exists")
    process.add_argument(
        "--debug-overlay", action="store_true", help="also write NAME.EXT.overlay.png showing what was found"
    )
    process.add_argument(
        "--reference",
        type=Path,
        action="append",
        default=[],
        metavar="REF.png",
        help="an example photo of the defect to find (reference mode; up to 3, each with --reference-mask)",
    )
    process.add_argument(
        "--reference-mask",
        type=Path,
        action="append",
        default=[],
        metavar="REFMASK.png",
        help="the defect's pixels in the preceding --reference photo (non-zero = defect)",
    )
    process.add_argument(
        "--backbone",
        type=Path,
        metavar="WEIGHTS",
        help="reference mode's features from a DINOv2/DINOv3 ViT (.pth, .safetensors or a Hugging Face "
        "folder); sets detect.backbone.weights",
    )
    process.set_defaults(handler=_cmd_process)

    watch = commands.add_parser("watch", help="run the hot-folder daemon")
    watch.add_argument("folders", nargs="*", type=Path, metavar="DIR")
    watch.add_argument("--config", type=Path, metavar="FILE")
    watch.add_argument("--once", action="store_true", help="process what is there, then exit")
    watch.set_defaults(handler=_cmd_watch)

    status = commands.add_parser("status", help="what the daemon has queued, running, done and failed")
    status.add_argument("--config", type=Path, metavar="FILE")
    status.set_defaults(handler=_cmd_status)

    worker = commands.add_parser("worker", help="run a cluster worker (cluster.backend = \"celery\")")
    worker.add_argument("--config", type=Path, metavar="FILE")
    worker.add_argument("--queues", metavar="Q1,Q2", help="queues to take photos from (default: cluster.queue; "
                        "add cluster.gpu_queue on a machine with a GPU)")
    worker.add_argument("--concurrency", type=int, default=1, metavar="N",
                        help="photos at once (pool processes; default 1: one photo already uses every core)")
    worker.add_argument("--name", metavar="NODE", help="worker name (default skinretouch-PID@HOST)")
    worker.add_argument("--retoucher-factory", default=None, help=argparse.SUPPRESS)
    worker.set_defaults(handler=_cmd_worker)

    doctor = commands.add_parser("doctor", help="which engines and backends are available, and why not")
    doctor.add_argument("--config", type=Path, metavar="FILE")
    doctor.set_defaults(handler=_cmd_doctor)

    compile_ = commands.add_parser(
        "compile", help="compile the kernels into numba's cache now (once per install, ~1.5 min), "
        "so that the first photo does not wait for it")
    compile_.add_argument("--config", type=Path, metavar="FILE")
    compile_.set_defaults(handler=_cmd_compile)

    review = commands.add_parser("review", help="a local web page to check, correct and approve the retouch")
    review.add_argument("folders", nargs="+", type=Path, metavar="DIR")
    review.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    review.add_argument("--port", type=int, default=8765, help="port (0: any free one; default 8765)")
    review.add_argument("--cache-dir", type=Path, help="where previews are cached (default ~/.cache/skinretouch/review)")
    review.add_argument("--config", type=Path, metavar="FILE")
    review.set_defaults(handler=_cmd_review)

    commands.add_parser("bench", help="run the project's benchmark (skinretouch bench --help)")

    engines = commands.add_parser("engines", help="neural engines")
    engine_commands = engines.add_subparsers(dest="engines_command", metavar="ACTION", required=True)
    build = engine_commands.add_parser("build", help="export to ONNX and build TensorRT engines where available")
    build.add_argument("--config", type=Path, metavar="FILE")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    build.set_defaults(handler=_cmd_engines_build)
    return parser


def _cmd_process(args: argparse.Namespace, config: Config) -> int:
    from .cli_process import collect_inputs, output_collisions, run_batch

    if args.mask is not None and (len(args.paths) != 1 or args.paths[0].is_dir()):
        raise _UsageError("--mask applies to exactly one image file")
    references = _load_references(args.reference, args.reference_mask)
    if args.backbone is not None:
        if not args.backbone.exists():
            raise _UsageError(f"--backbone: no weights at {args.backbone}")
        config = config.replace("detect", backbone={**dataclasses.asdict(config.detect.backbone), "weights": str(args.backbone)})
    inputs, missing = collect_inputs(args.paths)
    if not inputs and not missing:
        raise _UsageError("no images found in " + ", ".join(str(p) for p in args.paths))
    collisions = output_collisions(inputs, args.out_dir)
    if collisions:
        raise _UsageError("outputs would collide, nothing processed:\n  " + "\n  ".join(collisions))
    if args.out_dir is not None:
        try:
            args.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _UsageError(f"--out-dir {args.out_dir} cannot be created: {exc.strerror}") from None
    configure_logging(LoggingConfig(format="console", level="warning"))
    return run_batch(
        config,
        inputs,
        references=references,
        missing=missing,
        out_dir=args.out_dir,
        mask_path=args.mask,
        force=args.force,
        debug_overlay=args.debug_overlay,
    )


def _load_references(images: list[Path], masks: list[Path]):
    """The reference pairs of --reference/--reference-mask (None without them)."""
    if not images and not masks:
        return None
    if len(images) != len(masks):
        raise _UsageError(f"{len(images)} --reference but {len(masks)} --reference-mask: give one mask per photo")
    from .engines.reference import ReferenceError, load_references

    try:
        return load_references(list(zip(images, masks)))
    except ReferenceError as exc:
        raise _UsageError(f"reference: {exc}") from None


def _cmd_watch(args: argparse.Namespace, config: Config) -> int:
    from .daemon.service import run_watch

    configure_logging(config.logging, stream=sys.stdout)
    return run_watch(config, list(args.folders), once=args.once, config_path=args.config)


def _cmd_status(args: argparse.Namespace, config: Config) -> int:
    from .daemon.status import main_status

    return main_status(config)


def _cmd_worker(args: argparse.Namespace, config: Config) -> int:
    from .cluster import MissingExtra, require_cluster_extra

    try:
        require_cluster_extra()
    except MissingExtra as exc:
        raise _UsageError(str(exc)) from None
    if args.concurrency < 1:
        raise _UsageError("--concurrency must be at least 1")
    queues = tuple(q.strip() for q in args.queues.split(",") if q.strip()) if args.queues else None
    from .cluster.worker import DEFAULT_RETOUCHER, run_worker

    return run_worker(config, queues=queues, concurrency=args.concurrency, node=args.name,
                      retoucher_factory=args.retoucher_factory or DEFAULT_RETOUCHER)


def _cmd_doctor(args: argparse.Namespace, config: Config) -> int:
    from .doctor import run_doctor

    return run_doctor(config)


def _cmd_compile(args: argparse.Namespace, config: Config) -> int:
    from .precompile import cache_dir, cached_kernel_count, compile_kernels

    configure_logging(LoggingConfig(format="console", level="warning"))
    folder = cache_dir()
    where = str(folder) if folder else "beside the kernels' sources (NUMBA_CACHE_DIR is not set)"
    before = cached_kernel_count(folder)
    print(f"compiling the kernels into {where} ({before} compiled already)", flush=True)
    count, seconds = compile_kernels(config, say=lambda line: print(f"  {line}", flush=True))
    print(f"{count} kernel signatures cached ({count - before} new) in {seconds:.0f} s")
    return EXIT_OK


def _cmd_review(args: argparse.Namespace, config: Config) -> int:
    try:
        from .review.server import serve
    except ImportError as exc:
        raise _UsageError(f"review needs the review extra (pip install 'skinretouch[review]'): {exc}") from None
    from .review.decisions import ReviewError

    configure_logging(LoggingConfig(format="console", level="warning"))
    try:
        return serve(args.folders, config=config, host=args.host, port=args.port, cache_dir=args.cache_dir)
    except (ReviewError, OSError) as exc:
        raise _UsageError(f"review: {exc}") from None


def _cmd_engines_build(args: argparse.Namespace, config: Config) -> int:
    from .engines.build import run_build

    configure_logging(config.logging)
    return run_build(config.engines, force=args.force)


if __name__ == "__main__":
    sys.exit(main())
