"""Landmark outlines of new bench portraits for bench/photo_regions.json (run from the repo root).

    .venv/bin/python bench/labelling/photo_regions.py NAME [NAME ...] [--overlays DIR]

For each named portrait of bench/photos.toml: the photo as the bench loads it (upright,
cropped), MediaPipe Face Landmarker (478 points) on it, and per face the convex hulls of the
face oval, eyes, brows, lips and nose (the nostril loop up to the bridge, landmark 168) in
(x, y) px, the box of the oval and the cheek-to-cheek width (landmarks 234-454). Entries of
other photos are kept as they are; a named photo's entry is replaced. Each photo's outlines
are also drawn on it (``--overlays``, default /tmp/photo_regions) so they can be checked by
eye before the file is committed; the ITA angle of the skin (median L*, b* over the
planting region) is printed for photos.toml.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage.color import rgb2lab

from skinretouch.benchmark.photos import DEFAULT_CACHE_DIR
from skinretouch.benchmark.photoset import BENCH_DIR, load_catalogue, load_pixels, load_set_photos
from skinretouch.detection import faces as mesh

NOSE = mesh.NOSTRILS + (168,)
GROUPS = {
    "oval": mesh.FACE_OVAL,
    "left_eye": mesh.LEFT_EYE,
    "right_eye": mesh.RIGHT_EYE,
    "left_brow": mesh.LEFT_BROW,
    "right_brow": mesh.RIGHT_BROW,
    "lips": mesh.LIPS,
    "nose": NOSE,
}


def outlines(rgb: np.ndarray) -> list[dict]:
    found = mesh.find_landmark_faces(rgb.astype(np.float32) / 255.0)
    faces = []
    for face in found:
        entry = {kind: np.round(face.hull(indices), 1).tolist() for kind, indices in GROUPS.items()}
        oval = np.asarray(entry["oval"])
        x0, y0 = np.floor(oval.min(axis=0)).astype(int)
        x1, y1 = np.ceil(oval.max(axis=0)).astype(int)
        entry["box"] = [int(x0), int(y0), int(x1), int(y1)]
        entry["width"] = round(face.width, 1)
        faces.append(entry)
    return faces


def draw(rgb: np.ndarray, faces: list[dict], path: Path) -> None:
    image = Image.fromarray(rgb)
    pen = ImageDraw.Draw(image)
    colours = {"oval": "yellow", "nose": "cyan", "lips": "magenta"}
    line = max(1, round(max(rgb.shape[:2]) / 600))
    for face in faces:
        for kind in GROUPS:
            points = [tuple(p) for p in face[kind]]
            pen.line(points + points[:1], fill=colours.get(kind, "lime"), width=line)
    image.thumbnail((1400, 1400))
    image.save(path)


def ita_degrees(name: str) -> float:
    photo = load_set_photos([name])[0]
    lab = rgb2lab(photo.photo.rgb[photo.photo.skin])
    lightness, yellow = np.median(lab[:, 0]), np.median(lab[:, 2])
    return math.degrees(math.atan2(lightness - 50.0, yellow))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+")
    parser.add_argument("--overlays", type=Path, default=Path("/tmp/photo_regions"))
    args = parser.parse_args(argv)
    sources, entries = load_catalogue()
    path = BENCH_DIR / "photo_regions.json"
    data = json.loads(path.read_text())
    args.overlays.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        entry = entries[name]
        rgb = load_pixels(entry, sources[entry.source], DEFAULT_CACHE_DIR)
        faces = outlines(rgb)
        if not faces:
            print(f"{name}: no face found", file=sys.stderr)
            continue
        data["photos"][name] = {"size": [rgb.shape[1], rgb.shape[0]], "faces": faces}
        draw(rgb, faces, args.overlays / f"{name}.png")
        print(f"{name}: {rgb.shape[1]}x{rgb.shape[0]}, faces {[f['width'] for f in faces]}")
    path.write_text(json.dumps(data, separators=(",", ":")))
    for name in args.names:
        if name in data["photos"]:
            print(f"{name}: ITA {ita_degrees(name):.1f} deg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
