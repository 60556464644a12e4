"""The review web server: a Starlette app over the catalog, previews and decisions.

Routes (all need the access token, see :mod:`.security`):

- ``GET /``: the page; ``GET /static/NAME``: its script and style sheet.
- ``GET /api/photos``: the list; ``GET /api/photo?p=KEY``: one photo's regions and review.
- ``GET /api/preview?p=KEY&v=before|after`` and ``GET /api/tile?...&c=COLUMN&r=ROW``: JPEGs.
- ``POST /api/apply``, ``/api/undo``, ``/api/approve`` (``{"p": KEY, ...}``) and
  ``/api/approve-all`` (``{"keys": [...]}``): change a photo's outputs and report.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..errors import SkinRetouchError
from ..logs import get_logger
from .catalog import FolderGuard, OutsideFolders, Photo, load_photo, scan_photos
from .decisions import Decision, Reviewer, ReviewError
from .previews import TILE_SIZE, PreviewCache, preview_size
from .security import AccessGuard, Secrets, is_loopback

if TYPE_CHECKING:
    from ..config import Config
    from ..pipeline import Retoucher

__all__ = ["ReviewServer", "build_app", "default_cache_dir", "serve"]

log = get_logger(__name__)

STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
VARIANTS = ("before", "after")
IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable"}  # URLs carry the file's version


@dataclass
class ReviewState:
    guard: FolderGuard
    previews: PreviewCache
    reviewer: Reviewer
    keys: Secrets


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/skinretouch/review`` (``~/.cache/...`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "skinretouch" / "review"


def build_app(
    folders: list[Path],
    *,
    make_retoucher: Callable[[], Retoucher],
    cache_dir: Path,
    keys: Secrets | None = None,
    cookie_name: str = "skinretouch_review",
) -> Starlette:
    """The ASGI app serving the review page over ``folders`` (token-guarded)."""
    state = ReviewState(guard=FolderGuard(folders), previews=PreviewCache(cache_dir),
                        reviewer=Reviewer(make_retoucher), keys=keys or Secrets())  # fmt: skip

    async def index(request: Request) -> Response:
        page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(page.replace("{{CSRF_TOKEN}}", state.keys.csrf),
                            headers={"Cache-Control": "no-store", **_PAGE_HEADERS})  # fmt: skip

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return _error(404, "no such file")
        body = resources.files(__package__).joinpath(f"static/{name}").read_bytes()
        return Response(body, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    async def photos(request: Request) -> Response:
        found = await run_in_threadpool(scan_photos, state.guard)
        return JSONResponse({"photos": [photo.summary() for photo in found], "folders": [str(r) for r in state.guard.roots]})

    async def photo(request: Request) -> Response:
        found = await _photo(request.query_params.get("p", ""))
        return JSONResponse(_detail(found))

    async def preview(request: Request) -> Response:
        found, path = await _variant(request)
        pyramid = await run_in_threadpool(state.previews.preview, path)
        return FileResponse(pyramid.preview, media_type="image/jpeg", headers=IMMUTABLE)

    async def tile(request: Request) -> Response:
        found, path = await _variant(request)
        try:
            column, row = int(request.query_params["c"]), int(request.query_params["r"])
        except (KeyError, ValueError):
            return _error(400, "c and r must be tile numbers")
        pyramid = await run_in_threadpool(state.previews.tiles, path)
        if not (0 <= column < pyramid.columns and 0 <= row < pyramid.rows):
            return _error(404, "no such tile")
        return FileResponse(pyramid.tile(column, row), media_type="image/jpeg", headers=IMMUTABLE)

    async def apply(request: Request) -> Response:
        body = await _json_body(request)
        found = await _photo(str(body.get("p", "")))
        decision = Decision.from_json(body)
        await run_in_threadpool(state.reviewer.apply, found, decision)
        log.info("review_applied", photo=found.key, rejected=decision.rejected, kept=decision.kept,
                 strokes=len(decision.strokes))  # fmt: skip
        return JSONResponse(_detail(await _photo(found.key)))

    async def undo(request: Request) -> Response:
        found = await _photo(str((await _json_body(request)).get("p", "")))
        await run_in_threadpool(state.reviewer.undo, found)
        return JSONResponse(_detail(await _photo(found.key)))

    async def approve(request: Request) -> Response:
        found = await _photo(str((await _json_body(request)).get("p", "")))
        await run_in_threadpool(state.reviewer.approve, found)
        return JSONResponse(_detail(await _photo(found.key)))

    async def approve_all(request: Request) -> Response:
        keys = (await _json_body(request)).get("keys")
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            return _error(400, "keys must be a list of photo keys")
        approved, skipped = [], []
        for key in keys:
            found = await _photo(key)
            if found.review is None and found.report.get("status") == "ok":
                await run_in_threadpool(state.reviewer.approve, found)
                approved.append(key)
            else:
                skipped.append(key)
        return JSONResponse({"approved": approved, "skipped": skipped})

    async def _photo(key: str) -> Photo:
        return await run_in_threadpool(load_photo, state.guard, key)

    async def _variant(request: Request) -> tuple[Photo, Path]:
        found = await _photo(request.query_params.get("p", ""))
        variant = request.query_params.get("v")
        if variant not in VARIANTS:
            raise ReviewError("v must be before or after")
        path = found.input_path if variant == "before" else found.image_path
        if path is None:
            raise OutsideFolders(f"{found.name} has no retouched photo")
        state.guard.check(path)
        return found, path

    async def refused(request: Request, exc: Exception) -> Response:
        return _error(403, str(exc))

    async def bad_request(request: Request, exc: Exception) -> Response:
        return _error(400, str(exc))

    async def no_preview(request: Request, exc: Exception) -> Response:
        return _error(422, f"cannot show this photo: {exc}")

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/photos", photos),
        Route("/api/photo", photo),
        Route("/api/preview", preview),
        Route("/api/tile", tile),
        Route("/api/apply", apply, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/approve", approve, methods=["POST"]),
        Route("/api/approve-all", approve_all, methods=["POST"]),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        state.reviewer.close()
        state.previews.close()

    app = Starlette(routes=routes, exception_handlers={OutsideFolders: refused, ReviewError: bad_request, SkinRetouchError: no_preview},
                    lifespan=lifespan)  # fmt: skip
    app.add_middleware(AccessGuard, keys=state.keys, cookie_name=cookie_name)
    return app


_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _detail(photo: Photo) -> dict[str, Any]:
    """What the photo view needs: geometry, preview and tile URLs, regions and review."""
    info = photo.report.get("input") or {}
    width, height = int(info.get("width") or 0), int(info.get("height") or 0)
    if not (width and height):  # a failed photo's report may not know its size
        width, height = _stored_size(photo.input_path)
    review = photo.review or {}
    strokes = ((review.get("added_mask") or {}).get("strokes")) or []
    variants = {}
    for variant, path in (("before", photo.input_path), ("after", photo.image_path)):
        if path is not None and path.is_file():
            stamp = path.stat().st_mtime_ns
            variants[variant] = f"p={_quote(photo.key)}&v={variant}&s={stamp}"
    preview_w, preview_h = preview_size(width, height) if width and height else (0, 0)
    return {
        **photo.summary(),
        "width": width,
        "height": height,
        "preview_width": preview_w,
        "preview_height": preview_h,
        "tile_size": TILE_SIZE,
        "variants": variants,
        "regions": [
            {key: region.get(key) for key in ("id", "bbox", "kind", "score", "route", "engine", "hard_case",
                                              "hard_reasons", "fallback_reason", "texture_ratio")}  # fmt: skip
            for region in photo.automatic.get("regions") or []
        ],
        "protected": photo.automatic.get("protected") or [],
        "decision": {"rejected": review.get("rejected", []), "kept": review.get("kept", []), "strokes": strokes},
        "reviewed_at": review.get("reviewed_at"),
    }


def _stored_size(path: Path) -> tuple[int, int]:
    """The stored pixel grid's size from the file's header, (0, 0) if it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as picture:
            return picture.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return 0, 0


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ReviewError("the request body must be JSON") from None
    if not isinstance(body, dict):
        raise ReviewError("the request body must be a JSON object")
    return body


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class ReviewServer:
    """The app on a bound socket, served by uvicorn (in this thread or a background one)."""

    def __init__(self, app: Starlette, sock: socket.socket, keys: Secrets, host: str) -> None:
        import uvicorn

        self.sock = sock
        self.keys = keys
        self.port = sock.getsockname()[1]
        self.host = host
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.keys.token}"

    def run(self) -> None:
        self._server.run(sockets=[self.sock])

    def start(self) -> str:
        """Serve in a background thread (tests); returns the URL once it accepts requests."""
        self._thread = threading.Thread(target=self.run, name="skinretouch-review", daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the review server did not start")
            threading.Event().wait(0.02)
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def open_server(
    folders: list[Path],
    *,
    config: Config,
    host: str = "127.0.0.1",
    port: int = 0,
    cache_dir: Path | None = None,
    warn: TextIO = sys.stderr,
) -> ReviewServer:
    """Bind ``host:port`` and build the server over ``folders`` (warning if not loopback)."""
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        raise ReviewError("not a folder: " + ", ".join(missing))
    if not is_loopback(host):
        print(
            f"skinretouch review: WARNING: listening on {host}, not loopback: anyone who can reach this "
            "machine and learns the token can see and change these photos",
            file=warn,
            flush=True,
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    keys = Secrets()

    def make_retoucher() -> Retoucher:
        from ..pipeline import Retoucher

        return Retoucher(config)

    app = build_app(folders, make_retoucher=make_retoucher, cache_dir=cache_dir or default_cache_dir(),
                    keys=keys, cookie_name=f"skinretouch_review_{sock.getsockname()[1]}")  # fmt: skip
    return ReviewServer(app, sock, keys, host)


def serve(folders: list[Path], *, config: Config, host: str, port: int, cache_dir: Path | None,
          out: TextIO = sys.stdout) -> int:  # fmt: skip
    """``skinretouch review``: print the URL (first line of stdout) and serve until Ctrl-C."""
    server = open_server(folders, config=config, host=host, port=port, cache_dir=cache_dir)
    print(server.url, file=out, flush=True)
    server.run()
    return 0
