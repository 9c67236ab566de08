"""Hostile download servers: an endless body stops at the size cap, a 1 byte/s server at the overall
deadline, and every redirect hop is held to the URL policy (no scheme change, no plain http elsewhere)."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler

import pytest

from helpers import serve
from zoo.errors import ImageError, WeightsError
from zoo.pretrained import fetch as F


class Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        try:
            if self.path.startswith("/endless"):
                self.send_response(200)
                self.end_headers()  # no Content-Length: the body ends when the server says so (never)
                chunk = b"\0" * (1 << 16)
                for _ in range(1 << 16):
                    self.wfile.write(chunk)
            elif self.path.startswith("/slow"):
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif self.path.startswith("/to-ftp"):
                self.send_response(302)
                self.send_header("Location", "ftp://127.0.0.1/w.bin")
                self.end_headers()
            elif self.path.startswith("/to-http-elsewhere"):
                self.send_response(302)
                self.send_header("Location", "http://weights.example.invalid/w.bin")
                self.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def hostile():
    with serve(handler=Hostile) as url:
        yield url


def test_endless_download_without_content_length_stops_at_the_size_cap(hostile, monkeypatch):
    monkeypatch.setenv("ZOO_MAX_DOWNLOAD_BYTES", str(4 << 20))
    with pytest.raises(WeightsError, match="larger than"):
        F.fetch_url(hostile + "/endless/w.bin", sha256="0" * 64, progress=False)
    assert sum(p.stat().st_size for p in F.cache_dir().iterdir() if p.is_file()) < 1 << 20


def test_endless_download_stops_at_max_bytes_argument(hostile):
    with pytest.raises(WeightsError, match="larger than"):
        F.fetch_url(hostile + "/endless/w.bin", sha256="0" * 64, progress=False, max_bytes=1 << 20)


def test_one_byte_per_second_server_is_cut_off_at_the_deadline(hostile, monkeypatch):
    monkeypatch.setenv("ZOO_DOWNLOAD_DEADLINE", "1")
    start = time.monotonic()
    with pytest.raises(WeightsError, match="deadline"):
        F.fetch_url(hostile + "/slow/w.bin", sha256="0" * 64, progress=False)
    assert time.monotonic() - start < 10


def test_one_byte_per_second_image_url_is_cut_off_at_the_deadline(hostile):
    from zoo.data.sources import read_url

    start = time.monotonic()
    with pytest.raises(ImageError, match="deadline"):
        read_url(hostile + "/slow/cat.jpg", deadline=1.0)
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("path, match", [("/to-ftp/w.bin", "scheme changes"),
                                         ("/to-http-elsewhere/w.bin", "only https")])
def test_redirect_is_rechecked_at_every_hop(hostile, path, match):
    with pytest.raises(WeightsError, match=match):
        F.fetch_url(hostile + path, sha256="0" * 64, progress=False)


def test_redirect_of_an_image_url_is_rechecked(hostile):
    from zoo.data.sources import read_url

    with pytest.raises(ImageError, match="scheme changes"):
        read_url(hostile + "/to-ftp/cat.jpg")
