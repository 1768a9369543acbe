"""A real HTTP server on 127.0.0.1 for the scrape tests and benchmark: image files, faulty endpoints,
a small web site, and result pages in the formats of Bing, Baidu, Google and Flickr (the formats
icrawler 0.6.10's parsers read), so the real parsers run against it.

Images are made here with PIL (`make_picture`), never downloaded.
"""

from __future__ import annotations

import html
import io
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageDraw

BAIDU_ENCODE = {v: k for k, v in {
    "w": "a", "k": "b", "v": "c", "1": "d", "j": "e", "u": "f", "2": "g", "i": "h", "t": "i", "3": "j", "h": "k",
    "s": "l", "4": "m", "g": "n", "5": "o", "r": "p", "q": "q", "6": "r", "f": "s", "p": "t", "7": "u", "e": "v",
    "o": "w", "8": "1", "d": "2", "n": "3", "9": "4", "c": "5", "m": "6", "0": "7", "b": "8", "l": "9", "a": "0",
}.items()}


def make_picture(seed: int, size: tuple[int, int] = (320, 240), mode: str = "RGB") -> Image.Image:
    """A distinct picture per seed: a coloured background with random shapes."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    w, h = size
    for _ in range(12):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randrange(20, w // 2 + 20), y0 + rng.randrange(20, h // 2 + 20)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    if mode == "RGBA":
        image = image.convert("RGBA")
        alpha = Image.new("L", size, 0)
        ImageDraw.Draw(alpha).ellipse([w // 8, h // 8, w * 7 // 8, h * 7 // 8], fill=255)
        image.putalpha(alpha)
    return image


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def baidu_obfuscate(url: str) -> str:
    """The inverse of icrawler's BaiduParser._decode_url."""
    text = "".join(BAIDU_ENCODE.get(ch, ch) for ch in url)
    return text.replace(":", "_z2C$q").replace(".", "_z&e3B").replace("/", "AzdH3F")


class _QuietServer(ThreadingHTTPServer):
    # socketserver's default backlog of 5 resets connections when several download threads connect
    # at once on a loaded machine: a flaky 'connection_error' that no real web server would cause.
    request_queue_size = 128

    def handle_error(self, request, client_address):  # clients hang up on purpose (size caps, timeouts)
        pass


class LocalSite:
    """Routes: /img/<name> (registered bytes), /fault/<kind>, /site/..., /bing, /baidu, /google, /flickr."""

    def __init__(self):
        self.files: dict[str, tuple[bytes, str, dict]] = {}  # path -> (body, content type, headers)
        self.results: dict[str, list[str]] = {}  # search query -> image URLs
        self.pages: dict[str, str] = {}  # site pages: path -> HTML
        self.hits: Counter = Counter()
        self.image_delay = 0.0  # seconds before answering a file request
        self.requests: list[str] = []
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "LocalSite":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes, content_type: str = "image/jpeg", **headers) -> str:
        self.files[path] = (body, content_type, headers)
        return self.url(path)

    def _handler(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                site.hits[parts.path] += 1
                site.requests.append(self.path)
                try:
                    site._route(self, parts.path, parse_qs(parts.query))
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler

    def _send(self, handler, status: int, body: bytes = b"", content_type: str = "text/html", **headers) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        if handler.close_connection or handler.headers.get("Connection", "").lower() == "close":
            # HTTP/1.1 requires announcing it: otherwise the client pools a socket we are closing.
            handler.send_header("Connection", "close")
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.end_headers()
        handler.wfile.write(body)

    def _route(self, handler, path: str, query: dict) -> None:
        first = lambda key, default="": query.get(key, [default])[0]  # noqa: E731
        if path in self.files:
            time.sleep(self.image_delay)
            body, content_type, headers = self.files[path]
            return self._send(handler, 200, body, content_type, **headers)
        if path.startswith("/fault/"):
            return self._fault(handler, path.removeprefix("/fault/"))
        if path in self.pages:
            return self._send(handler, 200, self.pages[path].encode())
        if path == "/deep" or path.startswith("/deep/"):  # an endless site: page n links to page n + 1
            n = int(path.removeprefix("/deep").strip("/").removesuffix(".html") or 0)
            body = f'<html><body><a href="{self.base}/deep/{n + 1}.html">next</a></body></html>'
            return self._send(handler, 200, body.encode())
        if path == "/bing/async":
            return self._send(handler, 200, self._bing(first("q"), int(first("first", "0"))).encode())
        if path == "/baidu/acjson":
            return self._send(handler, 200, self._baidu(first("word"), int(first("pn", "0"))).encode(),
                              "application/json")
        if path == "/google/search":
            return self._send(handler, 200, self._google(first("q"), int(first("start", "0"))).encode())
        if path == "/flickr/rest/":
            return self._send(handler, 200, self._flickr(query).encode(), "application/json")
        self._send(handler, 404, b"not found")

    # ---- faulty endpoints ----
    def _fault(self, handler, kind: str) -> None:
        if kind == "404":
            return self._send(handler, 404, b"gone")
        if kind == "500":
            return self._send(handler, 500, b"boom")
        if kind == "timeout":
            time.sleep(3)
            return self._send(handler, 200, b"late")
        if kind == "drip":  # a valid header, then one byte every 50 ms for ever (10 s at most)
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.send_header("Content-Length", "100000")
            handler.end_headers()
            for _ in range(200):
                handler.wfile.write(b"\xff")
                handler.wfile.flush()
                time.sleep(0.05)
            return
        if kind == "huge":  # announces 50 MB
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.send_header("Content-Length", str(50_000_000))
            handler.end_headers()
            handler.wfile.write(b"\0" * 65536)
            return
        if kind == "huge-chunked":  # no length announced, then more than the limit
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            chunk = b"\0" * 65536
            for _ in range(40):
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.write(b"0\r\n\r\n")
            return
        if kind == "html-as-image.jpg":
            return self._send(handler, 200, b"<!DOCTYPE html><html><body>not a picture</body></html>", "image/jpeg")
        if kind == "loop-a":
            return self._send(handler, 302, Location="/fault/loop-b")
        if kind == "loop-b":
            return self._send(handler, 302, Location="/fault/loop-a")
        if kind.startswith("redirect-to:"):
            return self._send(handler, 302, Location=kind.removeprefix("redirect-to:"))
        self._send(handler, 404, b"no such fault")

    # ---- engine result pages, in the formats icrawler's parsers read ----
    def _page(self, query: str, start: int, step: int) -> list[str]:
        return self.results.get(query, [])[start:start + step]

    def _bing(self, query: str, start: int) -> str:
        items = "".join(
            f'<div class="imgpt"><a class="iusc" m="{html.escape(json.dumps({"murl": url, "purl": url}, separators=(",", ":")))}" '
            f'href="#">x</a></div>' for url in self._page(query, start, 20))
        return f"<html><body><ul>{items}</ul></body></html>"

    def _baidu(self, query: str, start: int) -> str:
        data = [{"objURL": baidu_obfuscate(url), "fromPageTitle": query} for url in self._page(query, start, 30)]
        return json.dumps({"queryExt": query, "data": data + [{}]})

    def _google(self, query: str, start: int) -> str:
        urls = self._page(query, start, 100)
        data = json.dumps([[1, [None, None, [url, 240, 320]]] for url in urls])
        return f"<html><head><script>var x = 1;</script><script>AF_initDataCallback({{key: 'ds:1', data:{data}}});</script></head></html>"

    def _flickr(self, query: dict) -> str:
        first = lambda key, default="": query.get(key, [default])[0]  # noqa: E731
        if first("method") == "flickr.photos.search":
            per_page, page = int(first("per_page", "100")), int(first("page", "1"))
            urls = self.results.get(first("text"), [])
            photos = [{"id": str(i)} for i in range((page - 1) * per_page, min(page * per_page, len(urls)))]
            self._flickr_ids = getattr(self, "_flickr_ids", {})
            self._flickr_ids.update({str(i): urls[i] for i in range(len(urls))})
            return json.dumps({"stat": "ok", "photos": {"page": page, "photo": photos}})
        if first("method") == "flickr.photos.getSizes":
            url = getattr(self, "_flickr_ids", {}).get(first("photo_id"))
            if url is None:
                return json.dumps({"stat": "fail", "message": "Photo not found"})
            return json.dumps({"stat": "ok", "sizes": {"size": [{"label": "Medium", "source": url}]}})
        return json.dumps({"stat": "fail", "message": "unknown method"})


def fast_limits():
    """Tight limits so faulty endpoints cost well under a second or two each."""
    from curation.scrape.config import FetchLimits

    return FetchLimits(connect_timeout=1.0, read_timeout=0.5, total_timeout=1.0, max_bytes=2_000_000,
                       max_redirects=3, retries=1, retry_backoff=0.05)


def steady_limits():
    """Limits for a healthy server on a busy machine: CI's 2 cores, with Ray and MongoDB left over from
    earlier tests, can stall a loopback answer past `fast_limits`' half second, and a test that is not
    about timeouts must not fail on one."""
    from curation.scrape.config import FetchLimits

    return FetchLimits(connect_timeout=5.0, read_timeout=5.0, total_timeout=10.0, max_bytes=2_000_000,
                       max_redirects=3, retries=2, retry_backoff=0.1)


def read_manifest(path) -> list[dict]:
    from pathlib import Path

    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
