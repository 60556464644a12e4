"""One typed configuration tree, loaded from TOML and validated at start.

Every section is a frozen, keyword-only dataclass whose defaults are the documented
defaults (``config.toml`` at the project root mirrors them; a test keeps the two equal).
Field types carry their constraints (``Annotated[int, Range(1, 100)]``,
``Literal[...]``), so :func:`load_config` can reject an unknown key or a bad value
with the key's dotted name before anything is processed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from .errors import ConfigError

__all__ = [
    "ClusterConfig",
    "Config",
    "DaemonConfig",
    "DetectBackboneConfig",
    "DetectVerifyConfig",
    "DetectOnnxConfig",
    "DetectConfig",
    "EnginesConfig",
    "FluxConfig",
    "LamaConfig",
    "LoggingConfig",
    "MaskConfig",
    "OutputConfig",
    "Range",
    "RemovalConfig",
    "RouteConfig",
    "config_sha256",
    "load_config",
    "parse_config",
    "pipeline_config",
]


@dataclass(frozen=True)
class Range:
    """Inclusive numeric bounds attached to a field type with ``Annotated``."""

    low: float | None = None
    high: float | None = None

    def check(self, value: float) -> str | None:
        if self.low is not None and value < self.low:
            return f"must be >= {self.low}, got {value!r}"
        if self.high is not None and value > self.high:
            return f"must be <= {self.high}, got {value!r}"
        return None


Fraction = Annotated[float, Range(0.0, 1.0)]
NonNegativeInt = Annotated[int, Range(0, None)]
PositiveInt = Annotated[int, Range(1, None)]
Seconds = Annotated[float, Range(0.0, None)]


@dataclass(frozen=True, kw_only=True)
class OutputConfig:
    """How retouched photos are encoded."""

    jpeg_quality: Annotated[int, Range(1, 100)] = 95
    jpeg_subsampling: Literal["4:4:4", "4:2:2", "4:2:0"] = "4:4:4"
    png_compress_level: Annotated[int, Range(0, 9)] = 6
    tiff_compression: Literal["none", "zlib", "lzw"] = "none"


@dataclass(frozen=True, kw_only=True)
class MaskConfig:
    """How a detected spot's mask becomes the area that is replaced."""

    # pixels at the stored resolution added around each detected spot
    dilation_px: Annotated[int, Range(0, 64)] = 3
    # width (px) of the blend ramp, inside the dilated mask, so outside stays bit-identical
    feather_px: Annotated[int, Range(0, 32)] = 2


@dataclass(frozen=True, kw_only=True)
class DetectOnnxConfig:
    """Plug-in YOLO detector in ONNX (``[detect.onnx]``)."""

    # the .onnx file (YOLOv5, YOLOv8/11 detect or segment, YOLOE, YOLOv10 / nms=True; float32
    # or float16; the form is read from its outputs); empty = off
    model: str = ""
    # class score (0..1) a box needs
    score: Fraction = 0.25
    # IoU (0..1) above which the weaker of two same-class boxes is dropped (raw heads only)
    iou: Fraction = 0.45
    # spot kind per class index; empty = the model's own class names, else "spot"
    class_names: tuple[str, ...] = ()
    # input side (px) when the model fixes none; 0 = from the model or its metadata, else 640
    input_size: NonNegativeInt = 0
    # "auto" reads the form from the outputs; name one to insist on it
    layout: Literal["auto", "yolov5", "yolov8", "yolov8-segment", "end2end", "end2end-segment"] = "auto"


@dataclass(frozen=True, kw_only=True)
class DetectBackboneConfig:
    """ViT feature plug-in for reference mode (``[detect.backbone]``)."""

    # DINOv2 / DINOv3 weights (facebookresearch .pth or Hugging Face folder / .safetensors
    # with its config.json; the form is read from the file); empty = numba descriptors
    weights: str = ""
    # how the ViT runs
    backend: Literal["torch", "onnxruntime"] = "torch"
    # face units one ViT patch spans after enlarging (smaller = finer, slower)
    patch_units: Annotated[float, Range(0.25, 16.0)] = 2.0
    # "auto" = cuda when torch sees a GPU, else cpu
    device: Literal["auto", "cpu", "cuda"] = "auto"


@dataclass(frozen=True, kw_only=True)
class DetectVerifyConfig:
    """The learned precision stage after the classical candidates (``[detect.verify]``)."""

    # drop classical candidates the verifier model rejects (moles, folds, pores, stubble)
    enabled: bool = True
    # the model file (JSON, from `make train-verifier`); empty = the one shipped in the package
    model: str = ""
    # added to the model's own probability threshold (chosen on the dev split): > 0 drops more
    # candidates (fewer false regions, lower recall), < 0 fewer
    threshold_shift: Annotated[float, Range(-1.0, 1.0)] = 0.0


@dataclass(frozen=True, kw_only=True)
class DetectConfig:
    """The blemish detector."""

    # which detector: "classical" (colour and shape rules), "reference" (like 1-3 example
    # photos: references + reference_masks), "onnx" (a box model: [detect.onnx] model), "anomaly"
    # (any skin unlike the rest of the photo's skin)
    mode: Literal["classical", "reference", "onnx", "anomaly"] = "classical"
    # 0 finds only the most obvious spots, 1 finds faint ones too (and more false ones)
    sensitivity: Fraction = 0.5
    papule: bool = True
    pustule: bool = True
    dark_spot: bool = True
    blackhead: bool = True
    protect_moles: bool = True
    protect_freckles: bool = True
    # a collage (photos pasted side by side along straight seams) is searched panel by panel,
    # each with its own faces and skin (classical mode)
    split_collages: bool = True
    # Face Landmarker model file (MediaPipe .task); empty = the one `make` extracts into
    # skinretouch/detection/models/ (without it, faces come from the Haar cascades)
    face_model: str = ""
    # drop classical candidates that look like the photo's ordinary skin (a single-photo
    # nearest-neighbour novelty score: a candidate's colour/texture against its k nearest
    # skin samples of the same photo; not MuSc, which compares many photos)
    anomaly_filter: bool = False
    # anomaly score a candidate needs (dimensionless; 1 = ordinary skin, blemishes 2.5..50)
    anomaly_threshold: Annotated[float, Range(0.0, None)] = 2.0
    # standalone zero-shot mode: mark any skin unlike the rest of the photo's skin, with no
    # rule per kind (high recall, many false regions: hairs and folds are unusual too)
    anomaly_detector: bool = False
    # anomaly score where a standalone region starts (dimensionless; 1 = ordinary skin)
    anomaly_detector_threshold: Annotated[float, Range(1.0, None)] = 5.0
    # reference mode: 1-3 example photos of a defect kind, paired with reference_masks
    references: tuple[str, ...] = ()
    # masks (white = defect) of the reference photos, same order and pixel size
    reference_masks: tuple[str, ...] = ()
    onnx: DetectOnnxConfig = field(default_factory=DetectOnnxConfig)
    backbone: DetectBackboneConfig = field(default_factory=DetectBackboneConfig)
    verify: DetectVerifyConfig = field(default_factory=DetectVerifyConfig)


@dataclass(frozen=True, kw_only=True)
class RouteConfig:
    """Which removal route each region takes, by size."""

    # regions up to this diameter (px at working scale) go to the frequency-split kernel
    small_max_diameter_px: Annotated[float, Range(1.0, None)] = 24.0
    # ... and up to this fraction of the image area
    small_max_area_fraction: Fraction = 0.0015
    # classical route of larger ("medium") regions when LaMa does not serve them; the
    # frequency split measured better than PatchMatch + Poisson on the bench's large spots
    medium_classical_route: Literal["freqsplit", "patchmatch"] = "freqsplit"
    # regions above this fraction of the image area are flagged as hard cases
    hard_area_fraction: Fraction = 0.01
    # a filled region whose texture ratio against its ring leaves this band is a hard case
    texture_ratio_min: Annotated[float, Range(0.0, None)] = 0.7
    texture_ratio_max: Annotated[float, Range(0.0, None)] = 1.3


@dataclass(frozen=True, kw_only=True)
class RemovalConfig:
    """The classical removal kernels."""

    seed: NonNegativeInt = 0
    # 0 = one thread per core
    threads: Annotated[int, Range(0, 256)] = 0
    # patch radius for pypatchmatch (the medium route)
    patchmatch_patch_size: Annotated[int, Range(1, 7)] = 3


@dataclass(frozen=True, kw_only=True)
class LamaConfig:
    """LaMa's working resolution (``[engines.lama]``)."""

    # crops whose short side is under this (px) are upscaled to it before LaMa runs (it was
    # trained on 256-px crops); engines.lama_max_side_px caps the long side; 0 = never upscale
    working_min_side_px: Annotated[int, Range(0, 4096)] = 256


@dataclass(frozen=True, kw_only=True)
class FluxConfig:
    """FLUX.1 Fill's working resolution (``[engines.flux]``)."""

    # crops whose short side is under this (px) are upscaled to it (FLUX Fill works near
    # 1 megapixel); engines.flux_max_side_px caps the long side; 0 = never upscale
    working_min_side_px: Annotated[int, Range(0, 2048)] = 1024


@dataclass(frozen=True, kw_only=True)
class EnginesConfig:
    """Neural engines, which need user-supplied local weights (none by default)."""

    # big-lama weights, form read from the file: lama's best.ckpt, IOPaint's big-lama.pt
    # (TorchScript), a state dict (.pt / .safetensors) or a LaMa .onnx export; empty = off
    lama_weights: str = ""
    # how LaMa runs: "auto" = TensorRT on a GPU when installed, else torch; or force one
    lama_backend: Literal["auto", "torch", "onnxruntime", "tensorrt"] = "auto"
    # longest side (px) of LaMa's working crop; larger crops are downscaled to it
    lama_max_side_px: Annotated[int, Range(64, 4096)] = 512
    # folder of a local FLUX.1 Fill model in diffusers layout (model_index.json); empty = off
    flux_model_dir: str = ""
    # FLUX runs only on regions flagged hard, and only when this is true (never by default)
    flux_enabled: bool = False
    # optional LoRA .safetensors for FLUX (e.g. FLUX.1-Turbo-Alpha); empty = none
    flux_lora: str = ""
    # denoising steps without the LoRA
    flux_steps: Annotated[int, Range(1, 100)] = 20
    # denoising steps with the LoRA
    flux_lora_steps: Annotated[int, Range(1, 100)] = 8
    # guidance scale of FLUX Fill (dimensionless; the model's documented default is 30)
    flux_guidance: Annotated[float, Range(0.0, 100.0)] = 30.0
    # longest side (px) of FLUX's working crop (padded to a multiple of 16)
    flux_max_side_px: Annotated[int, Range(64, 2048)] = 1024
    # text prompt for FLUX Fill
    flux_prompt: str = "natural skin with realistic pores and fine texture"
    # keep FLUX's parts in CPU memory and move each to the GPU while it runs: for GPUs with
    # less than ~40 GB (slower; needs accelerate)
    flux_cpu_offload: bool = False
    # "auto" = cuda when torch sees a GPU, else cpu
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # ONNX exports and TensorRT engines; empty = $XDG_CACHE_HOME/skinretouch/engines
    cache_dir: str = ""
    lama: LamaConfig = field(default_factory=LamaConfig)
    flux: FluxConfig = field(default_factory=FluxConfig)


@dataclass(frozen=True, kw_only=True)
class DaemonConfig:
    """The hot-folder daemon (``skinretouch watch``)."""

    folders: tuple[str, ...] = ()
    recursive: bool = True
    include: tuple[str, ...] = ("*.jpg", "*.jpeg", "*.png", "*.tif", "*.tiff")
    exclude: tuple[str, ...] = ()
    # empty: outputs go next to each input
    output_dir: str = ""
    # worker processes, each holding its own copy of the pipeline
    workers: Annotated[int, Range(1, 64)] = 1
    # photos waiting in memory; more are picked up by the next catch-up scan
    queue_size: Annotated[int, Range(1, 100_000)] = 256
    observer: Literal["auto", "inotify", "polling"] = "auto"
    poll_interval_s: Annotated[float, Range(0.05, None)] = 1.0
    # a file must keep its size and mtime this long before it is taken (polling fallback)
    settle_s: Seconds = 2.0
    # on SIGTERM the current photo gets this long to finish
    grace_s: Seconds = 30.0
    # empty: failed originals stay where they are
    failed_dir: str = ""
    force: bool = False
    # status file and single-instance lock; empty: $STATE_DIRECTORY (systemd), else
    # $XDG_STATE_HOME/skinretouch, else ~/.local/state/skinretouch
    state_dir: str = ""


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """Where the daemon's photos are processed: its own worker processes, or a Celery cluster."""

    # "local": the daemon's own worker processes; "celery": workers on any machine, via the broker
    backend: Literal["local", "celery"] = "local"
    # Redis URL of the broker (and of the workers' outcomes and heartbeats)
    broker: str = "redis://localhost:6379/0"
    # queue of ordinary photos (every `skinretouch worker` consumes it unless told otherwise)
    queue: str = "cpu"
    # queue of hard cases that want a neural engine; used only while a worker consumes it
    gpu_queue: str = "gpu"
    # the hot folder as the daemon sees it = as this machine sees it, e.g. "/srv/photos=/mnt/photos"
    path_map: tuple[str, ...] = ()
    # a photo running longer than this (seconds) is killed and gets a failed report
    time_limit_s: Annotated[float, Range(1.0, None)] = 600.0
    # seconds before the broker hands an unacknowledged photo to another worker; above time_limit_s
    visibility_timeout_s: Annotated[float, Range(1.0, None)] = 3600.0
    # retries of a transient error (shared folder not visible, I/O error) before a failed report
    max_retries: NonNegativeInt = 3
    # wait before the first retry (seconds), doubled for each further one
    retry_backoff_s: Seconds = 5.0
    # a photo whose worker process died this many times (crash, OOM kill) gets a failed report
    max_deliveries: PositiveInt = 3
    # most photos sent to the cluster and not yet finished (the daemon waits beyond that)
    max_in_flight: PositiveInt = 1000
    # seconds between the daemon's looks in Redis for photos it sent (after a broker restart,
    # and for those whose outcome is overdue: visibility_timeout_s + time_limit_s); a photo
    # in no queue, with no worker and without an outcome at two looks is sent again
    lost_check_s: Annotated[float, Range(0.1, None)] = 5.0


@dataclass(frozen=True, kw_only=True)
class LoggingConfig:
    """Structured logs: JSON for the service, readable on a terminal."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole configuration tree."""

    output: OutputConfig = field(default_factory=OutputConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    route: RouteConfig = field(default_factory=RouteConfig)
    removal: RemovalConfig = field(default_factory=RemovalConfig)
    engines: EnginesConfig = field(default_factory=EnginesConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def replace(self, section: str, **changes: Any) -> Config:
        """Return a copy with some fields of one section changed (validated)."""
        current = dataclasses.asdict(getattr(self, section))
        current.update(changes)
        tree = dataclasses.asdict(self)
        tree[section] = current
        return parse_config(_as_toml_tree(tree))


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate a TOML file; ``None`` gives the defaults.

    Raises
    ------
    ConfigError
        The file is missing or unreadable, is not valid TOML, or has an unknown key or a
        bad value; the message names the key.
    """
    if path is None:
        return Config()
    import tomllib  # 5 ms of start-up that a run on the defaults need not pay

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("", f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"{path} is not valid TOML: {exc}") from None
    return parse_config(data)


def parse_config(data: dict[str, Any]) -> Config:
    """Validate a parsed TOML mapping into a :class:`Config`."""
    config = _build(Config, data, prefix="")
    _check_cross_field(config)
    _check_input_files(config)
    return config


def config_sha256(config: Config) -> str:
    """A stable fingerprint of the effective settings (recorded in every report)."""
    canonical = json.dumps(dataclasses.asdict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_input_files(config: Config) -> None:
    """Files the detector loads at start must exist: a missing one is a bad value, named
    by its key, so ``process`` and ``watch`` (at start and on SIGHUP) refuse it alike."""
    detect = config.detect
    named = [("detect.onnx.model", detect.onnx.model), ("detect.verify.model", detect.verify.model)]
    named += [(f"detect.references[{i}]", p) for i, p in enumerate(detect.references)]
    named += [(f"detect.reference_masks[{i}]", p) for i, p in enumerate(detect.reference_masks)]
    for key, value in named:
        if value and not Path(value).expanduser().is_file():
            raise ConfigError(key, f"no such file: {value}")
    # a Hugging Face backbone is a folder, a facebookresearch one a file
    weights = detect.backbone.weights
    if weights and not Path(weights).expanduser().exists():
        raise ConfigError("detect.backbone.weights", f"no such file or folder: {weights}")


def pipeline_config(config: Config) -> Config:
    """``config`` with the sections only the daemon and the cluster read reset to defaults.

    Every machine of a cluster has its own daemon, cluster and logging settings (its own
    path mapping), so their hash of this view is the same when they retouch alike.
    """
    return dataclasses.replace(config, daemon=DaemonConfig(), cluster=ClusterConfig(), logging=LoggingConfig())


# Keys that chose a detector before detect.mode existed, the mode each one means, and how to
# read whether it is set.
_LEGACY_MODE_KEYS = (
    ("references", "reference", lambda detect: detect.references),
    ("onnx.model", "onnx", lambda detect: detect.onnx.model),
    ("anomaly_detector", "anomaly", lambda detect: detect.anomaly_detector),
)


def detect_mode(detect: DetectConfig) -> str:
    """The detector mode a (validated) detect section asks for.

    ``mode`` is the one switch; the older spellings (``references``, ``onnx.model``,
    ``anomaly_detector`` set while ``mode`` is left at "classical") still select their mode.
    """
    if detect.mode != "classical":
        return detect.mode
    legacy = [mode for _, mode, is_set in _LEGACY_MODE_KEYS if is_set(detect)]
    return legacy[0] if legacy else "classical"


def _check_detect_mode(detect: DetectConfig) -> None:
    """Conflicting detector options are an error naming both keys (no silent precedence)."""
    chosen = [(key, mode) for key, mode, is_set in _LEGACY_MODE_KEYS if is_set(detect)]
    if detect.mode == "classical" and len(chosen) > 1:
        (key_a, mode_a), (key_b, mode_b) = chosen[:2]
        raise ConfigError(
            f"detect.{key_a}",
            f"selects mode {mode_a!r} but detect.{key_b} selects mode {mode_b!r}; set detect.mode and "
            "keep only that mode's options",
        )
    for key, mode in chosen:
        if detect.mode != "classical" and mode != detect.mode:
            raise ConfigError(
                "detect.mode",
                f"is {detect.mode!r} but detect.{key} is set (an option of mode {mode!r}); remove one of them",
            )
    mode = detect_mode(detect)
    if detect.anomaly_filter and mode != "classical":
        raise ConfigError(
            "detect.anomaly_filter",
            f"filters the classical detector's spots but detect.mode is {mode!r}; remove one of them",
        )
    if mode == "onnx" and not detect.onnx.model:
        raise ConfigError("detect.onnx.model", "must name a model file when detect.mode is 'onnx'")
    if len(detect.references) != len(detect.reference_masks):
        raise ConfigError(
            "detect.reference_masks",
            f"has {len(detect.reference_masks)} paths but detect.references has "
            f"{len(detect.references)}; give one mask per reference",
        )


def _check_cross_field(config: Config) -> None:
    _check_detect_mode(config.detect)
    route = config.route
    if route.texture_ratio_min >= route.texture_ratio_max:
        raise ConfigError("route.texture_ratio_min", "must be below route.texture_ratio_max")
    if config.mask.feather_px > config.mask.dilation_px and config.mask.dilation_px > 0:
        raise ConfigError(
            "mask.feather_px", "must not exceed mask.dilation_px (the blend stays inside the mask)"
        )
    _check_cluster(config.cluster)


def _check_cluster(cluster: ClusterConfig) -> None:
    if cluster.visibility_timeout_s <= cluster.time_limit_s:
        raise ConfigError(
            "cluster.visibility_timeout_s",
            "must exceed cluster.time_limit_s (else a slow photo is handed to a second worker)",
        )
    if not cluster.broker.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("cluster.broker", f"must be a redis://, rediss:// or unix:// URL, got {cluster.broker!r}")
    if cluster.queue == cluster.gpu_queue:
        raise ConfigError("cluster.gpu_queue", "must differ from cluster.queue")
    for index, rule in enumerate(cluster.path_map):
        daemon_side, sep, worker_side = rule.partition("=")
        if not sep or not daemon_side.strip().startswith("/") or not worker_side.strip().startswith("/"):
            raise ConfigError(
                f"cluster.path_map[{index}]",
                f"must be \"DAEMON_PATH=WORKER_PATH\" with two absolute paths, got {rule!r}",
            )


# keys of earlier releases -> where they live now (named in the error instead of "unknown")
MOVED_KEYS = {
    "detect.onnx_model": "[detect.onnx] model",
    "detect.onnx_score_threshold": "[detect.onnx] score",
}


def _build(cls: type, data: Any, *, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(prefix.rstrip("."), f"must be a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls, include_extras=True)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            moved = MOVED_KEYS.get(f"{prefix}{key}")
            raise ConfigError(f"{prefix}{key}", f"moved to {moved}" if moved else "unknown key")
    values = {}
    for name in known:
        if name in data:
            values[name] = _convert(hints[name], data[name], key=f"{prefix}{name}")
    return cls(**values)


def _convert(hint: Any, value: Any, *, key: str) -> Any:
    constraints: tuple[Any, ...] = ()
    if typing.get_origin(hint) is Annotated:
        hint, *extras = typing.get_args(hint)
        constraints = tuple(extras)
    origin = typing.get_origin(hint)

    if dataclasses.is_dataclass(hint):
        return _build(hint, value, prefix=f"{key}.")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(key, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(key, f"must be a list, got {type(value).__name__}")
        return tuple(_convert(item_type, item, key=f"{key}[{i}]") for i, item in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported config type for {key}: {hint}")

    converted = _convert_scalar(hint, value, key=key)
    for constraint in constraints:
        if isinstance(constraint, Range):
            problem = constraint.check(converted)
            if problem:
                raise ConfigError(key, problem)
    return converted


def _convert_scalar(hint: Any, value: Any, *, key: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"must be a number, got {value!r}")
        if not math.isfinite(value):  # TOML allows nan and inf; no setting means them
            raise ConfigError(key, f"must be a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type for {key}: {hint}")


def _as_toml_tree(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _as_toml_tree(v) for k, v in tree.items()}
    if isinstance(tree, tuple):
        return list(tree)
    return tree
