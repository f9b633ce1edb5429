"""Issue 15's "done when" for uploads, on the real stack (Redis, gunicorn, a Celery worker): a pixel-bomb ZIP
(20,000 blank 2048 × 2048 PNGs, under 4 MiB) and a sniffer-bomb CSV (64 KiB of ``,'``) are uploaded while
another user keeps loading pages, and every one of those page loads stays under a second."""

from __future__ import annotations

import io
import threading
import time
import urllib.request
import zipfile

import pytest
from PIL import Image

pytestmark = pytest.mark.integration


def pixel_bomb() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (2048, 2048)).save(buffer, format="PNG")
    blank = buffer.getvalue()
    archive_bytes = io.BytesIO()
    with zipfile.ZipFile(archive_bytes, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(20_000):
            archive.writestr(f"{'ab'[i % 2]}/{i}.png", blank)
    return archive_bytes.getvalue()


def test_pixel_and_sniffer_bombs_do_not_slow_another_users_pages(app_stack, tmp_path):
    attacker = app_stack.api(app_stack.user_create("bomber", "bomber-pass-2026-x"))
    victim = app_stack.api(app_stack.user_create("bystander", "bystander-pass-2026"))
    (tmp_path / "bomb.zip").write_bytes(pixel_bomb())
    (tmp_path / "bomb.csv").write_bytes(b",'" * 32 * 1024)
    results: dict[str, dict] = {}
    done = threading.Event()

    def upload(name: str, expect: int) -> None:
        started = time.monotonic()
        results[name] = {**attacker.upload("/api/datasets/", tmp_path / name, expect=expect),
                         "seconds": time.monotonic() - started}

    uploads = [threading.Thread(target=upload, args=("bomb.zip", 201)),
               threading.Thread(target=upload, args=("bomb.csv", 400))]
    latencies: list[float] = []
    for _ in range(6):  # every web process has served a page before the bombs arrive
        victim.json("GET", "/api/datasets/")
        urllib.request.urlopen(app_stack.base_url + "/accounts/login/", timeout=30).read()

    def pages() -> None:
        while not done.is_set():
            for path in ("/api/datasets/", "/accounts/login/"):
                started = time.monotonic()
                if path.startswith("/api/"):
                    victim.json("GET", path)
                else:
                    with urllib.request.urlopen(app_stack.base_url + path, timeout=30) as response:
                        assert response.status == 200
                latencies.append(time.monotonic() - started)
            time.sleep(0.05)

    watcher = threading.Thread(target=pages)
    watcher.start()
    for thread in uploads:
        thread.start()
    for thread in uploads:
        thread.join(timeout=120)
    zip_id = results["bomb.zip"]["id"]
    deadline = time.monotonic() + 120
    while (dataset := attacker.json("GET", f"/api/datasets/{zip_id}/"))["status"] == "processing":
        assert time.monotonic() < deadline, "the worker never finished with the pixel bomb"
        time.sleep(0.5)
    time.sleep(1)  # and a little after
    done.set()
    watcher.join(timeout=60)

    print(f"\nzip upload {results['bomb.zip']['seconds']:.2f} s, csv upload {results['bomb.csv']['seconds']:.2f} s, "
          f"{len(latencies)} page loads, slowest {max(latencies):.3f} s")
    assert "32,769 columns" in results["bomb.csv"]["error"] and results["bomb.csv"]["seconds"] < 5
    assert results["bomb.zip"]["status"] == "processing" and results["bomb.zip"]["seconds"] < 5  # not decoded in the web
    assert dataset["status"] == "failed" and "EXPLAINER_IMAGE_MAX_PIXELS" in dataset["error"]
    assert len(latencies) >= 10 and max(latencies) < 1.0, sorted(latencies)[-5:]
