"""Safe HTTP for the scraper: http/https only, bounded redirects, time, size and retries.

`SafeSession` is an icrawler `Session` (so icrawler's parsers fetch result pages through it) whose
`get` never follows a redirect blindly, never reads more than `max_bytes`, and gives up on a whole
download after `total_timeout` seconds however slowly the server drips bytes.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urljoin, urlsplit

import requests
from icrawler.utils import ProxyPool, Session

from curation.scrape.config import FetchLimits

ALLOWED_SCHEMES = ("http", "https")
_CHUNK = 64 * 1024
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) curation-scrape/0.1"


class FetchError(Exception):
    """A download that did not give a usable body; `reason` is a short code for reports."""

    def __init__(self, reason: str, detail: str, *, retryable: bool = False, status: int | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.retryable, self.status = reason, detail, retryable, status


def check_scheme(url: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise FetchError("bad_scheme", f"refused scheme {scheme or '(none)'!r} in {url[:200]!r}")


class SafeSession(Session):
    """requests session with hard limits; also records result pages that could not be fetched."""

    def __init__(self, limits: FetchLimits):
        super().__init__(ProxyPool())
        self.limits = limits
        # No connection reuse: a download abandoned mid-body (too large, too slow) must never leave its
        # socket in the pool, where the next request would read the rest of that body as its answer.
        self.headers.update({"User-Agent": USER_AGENT, "Connection": "close"})
        self.page_failures: list[tuple[str, str]] = []
        self.requests = 0  # started, for the crawl loop's idle detection
        self._failures_lock = threading.Lock()

    def get(self, url, **kwargs):  # icrawler's parsers call this for result pages
        try:
            return self.fetch(url, headers=kwargs.get("headers"))
        except FetchError as exc:
            with self._failures_lock:
                self.page_failures.append((url, str(exc)))
            raise

    def fetch(self, url: str, *, headers: dict | None = None) -> requests.Response:
        """The response with its whole body read (`.content`), after at most 1 + retries attempts."""
        attempts = 1 + self.limits.retries
        for attempt in range(attempts):
            try:
                return self._fetch_once(url, headers)
            except FetchError as exc:
                if not exc.retryable or attempt == attempts - 1:
                    raise
                time.sleep(self.limits.retry_backoff * 2**attempt)
        raise AssertionError("unreachable")

    def _fetch_once(self, url: str, headers: dict | None) -> requests.Response:
        deadline = time.monotonic() + self.limits.total_timeout
        visited: list[str] = []
        current = url
        for _ in range(self.limits.max_redirects + 1):
            check_scheme(current)
            if current in visited:
                raise FetchError("redirect_loop", f"{url} redirects back to {current}")
            visited.append(current)
            response = self._request(current, headers)
            if response.is_redirect:
                location = response.headers.get("location", "")
                _abort(response)
                current = urljoin(current, location)
                continue
            if response.status_code != 200:
                _abort(response)
                status = response.status_code
                raise FetchError("http_error", f"HTTP {status}", status=status,
                                 retryable=status >= 500 or status == 429)
            response._content = self._read_body(response, deadline)
            return response
        raise FetchError("too_many_redirects", f"more than {self.limits.max_redirects} redirects from {url}")

    def _request(self, url: str, headers: dict | None) -> requests.Response:
        self.requests += 1
        try:
            # requests.Session.get directly: icrawler's Session.get would route through proxies
            return requests.Session.get(self, url, headers=headers, stream=True, allow_redirects=False,
                                        timeout=(self.limits.connect_timeout, self.limits.read_timeout))
        except requests.Timeout as exc:
            raise FetchError("timeout", f"no answer within {self.limits.read_timeout:g} s ({type(exc).__name__})",
                             retryable=True) from exc
        except requests.ConnectionError as exc:
            raise FetchError("connection_error", str(exc)[:200], retryable=True) from exc
        except requests.RequestException as exc:  # invalid URL and the like: retrying cannot help
            raise FetchError("bad_url", f"{type(exc).__name__}: {str(exc)[:200]}") from exc

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        limit = self.limits.max_bytes
        announced = response.headers.get("content-length", "")
        if announced.isdigit() and int(announced) > limit:
            _abort(response)
            raise FetchError("too_large", f"announces {int(announced)} bytes, the limit is {limit}")
        # A watchdog closes the connection at the deadline, so even a read blocked on a drip returns.
        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _abort, (response,))
        watchdog.daemon = True
        watchdog.start()
        chunks, size = [], 0
        try:
            while True:
                chunk = response.raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise FetchError("too_large", f"body exceeds the limit of {limit} bytes")
                if time.monotonic() > deadline:
                    raise FetchError("timeout", f"too slow: {size} bytes in {self.limits.total_timeout:g} s")
                chunks.append(chunk)
        except FetchError:
            _abort(response)
            raise
        except Exception as exc:  # the watchdog's close, a reset connection, a broken gzip stream
            _abort(response)
            if time.monotonic() >= deadline:
                raise FetchError("timeout", f"too slow: {size} bytes in {self.limits.total_timeout:g} s") from exc
            raise FetchError("connection_error", f"body cut off after {size} bytes: {type(exc).__name__}",
                             retryable=True) from exc
        finally:
            watchdog.cancel()
            _abort(response)  # never pooled: a server may close it, and a reuse would then fail
        return b"".join(chunks)


def _abort(response: requests.Response) -> None:
    """Shut the socket of an abandoned body, so that neither a blocked read nor a later request that
    would reuse the pooled connection ever sees the rest of that body."""
    connection = getattr(response.raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            connection.close()
        except Exception:
            pass
    response.close()
