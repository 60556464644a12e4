"""The review server refuses what it must: no token, paths outside its folders, cross-site POSTs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from review_helpers import make_processed_photo  # noqa: E402
from skinretouch.config import Config  # noqa: E402
from skinretouch.files.report import REPORT_JSON_SCHEMA  # noqa: E402
from skinretouch.review.security import Secrets, is_loopback  # noqa: E402
from skinretouch.review.server import build_app, open_server  # noqa: E402


def _no_retoucher():
    raise AssertionError("the security tests never re-render")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("review_security")
    photos = base / "photos"
    make_processed_photo(photos)
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes((photos / "portrait.png").read_bytes())
    # A photo whose file is a symlink leading out of the folder, with a report beside it.
    os.symlink(outside / "secret.png", photos / "escape.png")
    report = (photos / "portrait.png.retouch.json").read_text().replace("portrait.png", "escape.png")
    (photos / "escape.png.retouch.json").write_text(report)
    return {"photos": photos, "outside": outside, "base": base}


@pytest.fixture()
def client(folders: dict[str, Path]) -> Iterator[TestClient]:
    keys = Secrets(token="t0ken", csrf="csrf-value")
    app = build_app([folders["photos"]], make_retoucher=_no_retoucher, cache_dir=folders["base"] / "cache", keys=keys)
    with TestClient(app) as client:  # runs the app's lifespan, which closes its preview cache
        yield client


AUTH = {"Authorization": "Bearer t0ken"}


def test_no_token_refused_everywhere(client: TestClient) -> None:
    for path in ("/", "/static/app.js", "/api/photos", "/api/photo?p=0/portrait.png",
                 "/api/preview?p=0/portrait.png&v=before"):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 401, path
    assert client.get("/api/photos", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/photos?token=wrong").status_code == 401


def test_token_in_url_becomes_a_same_site_cookie(client: TestClient) -> None:
    response = client.get("/?token=t0ken", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = client.get("/")  # the cookie alone now opens the page
    assert page.status_code == 200 and 'content="csrf-value"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    listing = client.get("/api/photos").json()["photos"]
    assert [photo["name"] for photo in listing] == ["portrait.png"]  # the symlinked one is not listed


@pytest.mark.parametrize(
    "key",
    ["0/../outside/secret.png", "0/..%2Foutside%2Fsecret.png", "0//etc/passwd", "0/./portrait.png", "1/portrait.png",
     "/etc/passwd", "0/escape.png", "0/sub\\..\\portrait.png"],
)  # fmt: skip
def test_paths_outside_the_folders_refused(client: TestClient, key: str) -> None:
    for path in (f"/api/photo?p={key}", f"/api/preview?p={key}&v=before", f"/api/tile?p={key}&v=before&c=0&r=0"):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 403, (path, response.text)
    response = client.post("/api/approve", json={"p": key}, headers={**AUTH, "X-CSRF-Token": "csrf-value"})
    assert response.status_code == 403


def test_symlinked_report_leading_out_refused(client: TestClient, folders: dict[str, Path]) -> None:
    # A folder symlink leading to a report (and photo) outside: listed by nothing, served to no one.
    report = (folders["photos"] / "portrait.png.retouch.json").read_text()
    (folders["outside"] / "secret.png.retouch.json").write_text(report.replace(str(folders["photos"] / "portrait.png"),
                                                                               str(folders["outside"] / "secret.png")))  # fmt: skip
    os.symlink(folders["outside"], folders["photos"] / "linked")
    try:
        assert client.get("/api/photo?p=0/linked/secret.png", headers=AUTH).status_code == 403
        assert client.get("/api/preview?p=0/linked/secret.png&v=before", headers=AUTH).status_code == 403
        assert [p["name"] for p in client.get("/api/photos", headers=AUTH).json()["photos"]] == ["portrait.png"]
    finally:
        (folders["photos"] / "linked").unlink()


def test_photo_inside_is_served_as_preview_not_original(client: TestClient) -> None:
    response = client.get("/api/preview?p=0/portrait.png&v=after", headers=AUTH)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert client.get("/static/../review/server.py", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"X-CSRF-Token": None},
        {"X-CSRF-Token": "guess"},
        {"Content-Type": "text/plain"},
    ],
)
def test_cross_site_post_refused(client: TestClient, folders: dict[str, Path], headers: dict) -> None:
    report = folders["photos"] / "portrait.png.retouch.json"
    before = report.read_bytes()
    sent = {**AUTH, "X-CSRF-Token": "csrf-value", "Content-Type": "application/json", "Origin": "http://testserver"}
    sent.update(headers)
    sent = {key: value for key, value in sent.items() if value is not None}
    response = client.post("/api/approve", content=b'{"p": "0/portrait.png"}', headers=sent)
    assert response.status_code == 403, response.text
    assert report.read_bytes() == before
    assert client.get("/api/approve", headers=AUTH).status_code == 405


def test_same_origin_post_accepted_and_recorded(client: TestClient, folders: dict[str, Path]) -> None:
    headers = {**AUTH, "X-CSRF-Token": "csrf-value", "Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    response = client.post("/api/approve", json={"p": "0/portrait.png"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["review"] == "approved"
    response = client.post("/api/undo", json={"p": "0/portrait.png"}, headers=headers)
    assert response.json()["review"] is None
    batch = client.post("/api/approve-all", json={"keys": ["0/portrait.png"]}, headers=headers).json()
    assert batch == {"approved": ["0/portrait.png"], "skipped": []}
    report = json.loads((folders["photos"] / "portrait.png.retouch.json").read_text())
    assert report["review"]["status"] == "approved" and report["review"]["rejected"] == []
    assert report["review"]["accepted"] == [region["id"] for region in report["regions"]]
    jsonschema.validate(report, REPORT_JSON_SCHEMA)
    again = client.post("/api/approve-all", json={"keys": ["0/portrait.png"]}, headers=headers).json()
    assert again == {"approved": [], "skipped": ["0/portrait.png"]}
    client.post("/api/undo", json={"p": "0/portrait.png"}, headers=headers)
    assert "review" not in json.loads((folders["photos"] / "portrait.png.retouch.json").read_text())


def test_loopback_names() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("::")


def test_binding_beyond_loopback_warns(tmp_path: Path) -> None:
    warnings = io.StringIO()
    server = open_server([tmp_path], config=Config(), host="0.0.0.0", port=0, cache_dir=tmp_path / "c", warn=warnings)
    server.sock.close()
    assert "WARNING" in warnings.getvalue() and "0.0.0.0" in warnings.getvalue()
    quiet = io.StringIO()
    server = open_server([tmp_path], config=Config(), host="127.0.0.1", port=0, cache_dir=tmp_path / "c", warn=quiet)
    server.sock.close()
    assert quiet.getvalue() == ""


def test_cli_prints_the_url_first_and_serves_with_its_token(folders: dict[str, Path]) -> None:
    command = [sys.executable, "-m", "skinretouch", "review", str(folders["photos"]), "--port", "0",
               "--cache-dir", str(folders["base"] / "cli-cache")]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:") and "/?token=" in url
            base, token = url.split("/?token=")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{base}/api/photos", timeout=10)
            refused.value.close()
            assert refused.value.code == 401
            request = urllib.request.Request(f"{base}/api/photos", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert b"portrait.png" in response.read()
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_failed_photo_listed_flagged_and_not_applied(tmp_path: Path) -> None:
    from skinretouch.files.stage import process_file
    from skinretouch.pipeline import Retoucher

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    with Retoucher(Config()) as retoucher:
        assert process_file(retoucher, folder / "broken.png").status == "failed"
    app = build_app([folder], make_retoucher=_no_retoucher, cache_dir=tmp_path / "cache", keys=Secrets(token="t0ken", csrf="c"))
    with TestClient(app) as client:
        (row,) = client.get("/api/photos", headers=AUTH).json()["photos"]
        assert row["failed"] and row["needs_review"] and row["status"] == "failed" and row["error"]
        detail = client.get("/api/photo?p=0/broken.png", headers=AUTH).json()
        assert detail["status"] == "failed" and detail["regions"] == [] and "after" not in detail["variants"]
        preview = client.get("/api/preview?p=0/broken.png&v=before", headers=AUTH)
        assert preview.status_code == 422 and "cannot show this photo" in preview.json()["error"]
        headers = {**AUTH, "X-CSRF-Token": "c"}
        response = client.post("/api/apply", json={"p": "0/broken.png", "strokes": [{"radius": 3, "points": [[1, 1]]}]}, headers=headers)
        assert response.status_code == 400 and "no automatic result" in response.json()["error"]
        assert client.post("/api/approve", json={"p": "0/broken.png"}, headers=headers).status_code == 400
