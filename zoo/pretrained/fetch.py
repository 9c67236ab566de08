"""Verified downloads into the zoo cache ($ZOO_HOME/weights, default ~/.cache/zoo/weights).

What users of other zoos complain about, and what this does instead:
- corrupt caches and hash loops: a file is downloaded to `.<name>.part` beside its target,
  its checksum verified, fsynced, then renamed; a cached file that fails its checksum is removed
  and fetched again, never loaded;
- parallel jobs: an fcntl lock per file, so two processes never write the same file; the second
  one finds it done;
- cut transfers: retries that resume with an HTTP Range request;
- proxies: urllib reads HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment;
- air-gapped machines: ZOO_OFFLINE=1 never touches the network and says which file to put where;
  a file already in the Keras cache ($KERAS_HOME/models or ~/.keras/models) with the right hash
  is used as is;
- https only, except loopback addresses (tests, local mirrors) or ZOO_ALLOW_HTTP=1.
Checksums: sha256, md5 (what keras.applications publishes), or torchvision's sha256 filename
prefix; with `pin` the full sha256 is recorded in `<name>.sha256` on first download and checked
on every later use.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, WeightsError
from zoo.files import publish, write_text

log = logging.getLogger("zoo.pretrained")
CHUNK = 1 << 16
RETRIES = 3
TIMEOUT = 60.0  # seconds one read may wait for bytes
DEADLINE = 3600.0  # seconds a whole download may take (ZOO_DOWNLOAD_DEADLINE)
MAX_BYTES = 2 << 30  # a download with no manifest size stops here (ZOO_MAX_DOWNLOAD_BYTES, --max-bytes)


def zoo_home() -> Path:
    return Path(os.environ.get("ZOO_HOME") or "~/.cache/zoo").expanduser()


def cache_dir() -> Path:
    return zoo_home() / "weights"


def keras_cache_dirs() -> list[Path]:
    """Caches of other tools whose files zoo reuses when their checksum matches: Keras's
    ($KERAS_HOME/models, ~/.keras/models) and torch.hub's ($TORCH_HOME/hub/checkpoints)."""
    home = os.environ.get("KERAS_HOME")
    dirs = [Path(home).expanduser() / "models"] if home else []
    dirs.append(Path("~/.keras/models").expanduser())
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    dirs.append(Path(torch_home).expanduser() / "hub" / "checkpoints")
    return list(dict.fromkeys(dirs))


def offline() -> bool:
    return os.environ.get("ZOO_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Checksum:
    sha256: str | None = None
    md5: str | None = None
    sha256_prefix: str | None = None
    pin: bool = False  # record the sha256 on first download when no full hash is published

    def describe(self) -> str:
        if self.sha256:
            return f"sha256 {self.sha256}"
        if self.md5:
            return f"md5 {self.md5}"
        if self.sha256_prefix:
            return f"sha256 starting with {self.sha256_prefix}"
        return "no published checksum (sha256 pinned on first download)"

    def check(self, path: Path) -> str | None:
        """None when `path` matches; else a one-line description of the mismatch."""
        sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                sha.update(chunk)
                if self.md5:
                    md5.update(chunk)
        got = sha.hexdigest()
        if self.sha256 and got != self.sha256:
            return f"sha256 is {got}, expected {self.sha256}"
        if self.md5 and md5.hexdigest() != self.md5:
            return f"md5 is {md5.hexdigest()}, expected {self.md5}"
        if self.sha256_prefix and not got.startswith(self.sha256_prefix):
            return f"sha256 is {got}, expected it to start with {self.sha256_prefix}"
        pinned = pin_file(path)
        if pinned.exists() and pinned.read_text().strip() != got:
            return f"sha256 is {got}, but {pinned.read_text().strip()} was pinned on first download"
        return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pin_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


@contextlib.contextmanager
def file_lock(target: Path):
    """An exclusive lock on `<target>.lock` held across processes (fcntl; a no-op where absent)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.with_name(f".{target.name}.lock")
    with open(lock_path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; temp file + rename still keeps files whole
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_http: bool = False) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and (allow_http or _is_loopback(parts.hostname)
                                   or os.environ.get("ZOO_ALLOW_HTTP", "") in ("1", "true", "yes")):
        return
    raise WeightsError(f"Refusing to download {url}: only https URLs are fetched (http is allowed for loopback "
                       f"addresses, or with ZOO_ALLOW_HTTP=1 / --allow-http for a trusted local mirror).")


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise UsageError(f"{name} must be a positive number. Received: {raw[:40]!r}.")
    return value


def default_max_bytes() -> int:
    return int(_env_number("ZOO_MAX_DOWNLOAD_BYTES", MAX_BYTES))


def default_deadline() -> float:
    return _env_number("ZOO_DOWNLOAD_DEADLINE", DEADLINE)


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Every redirect hop is held to the same policy as the first URL: https only (except loopback or
    allow_http), and never a change of scheme (https -> http, -> ftp, -> file)."""

    def __init__(self, allow_http: bool):
        self.allow_http = allow_http

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if new.scheme != old.scheme:
            raise WeightsError(f"Refusing the redirect from {req.full_url} to {newurl}: the scheme changes "
                               f"({old.scheme} -> {new.scheme}).")
        check_url(newurl, allow_http=self.allow_http)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def open_url(url: str, *, allow_http: bool = False, headers: dict[str, str] | None = None,
             timeout: float = TIMEOUT):
    """urlopen with zoo's URL policy on the URL and on every redirect hop; `timeout` bounds each read.
    Proxies come from the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)."""
    check_url(url, allow_http=allow_http)
    opener = urllib.request.build_opener(_CheckedRedirects(allow_http))
    return opener.open(urllib.request.Request(url, headers=headers or {}), timeout=timeout)


def copy_limited(response, write, *, max_bytes: int, deadline: float, url: str, have: int = 0, advance=None) -> int:
    """Copy the body of `response` through `write`, stopping with a WeightsError past `max_bytes` in all
    or at the monotonic time `deadline`. Returns the bytes copied."""
    read = getattr(response, "read1", response.read)  # read1: returns what arrived, so slow bodies hit the deadline
    copied = 0
    while True:
        if time.monotonic() > deadline:
            raise WeightsError(f"Download of {url} took longer than its deadline (ZOO_DOWNLOAD_DEADLINE); "
                               f"stopped after {have + copied} bytes.")
        chunk = read(CHUNK)
        if not chunk:
            return copied
        copied += len(chunk)
        if have + copied > max_bytes:
            raise WeightsError(f"Download of {url} is larger than {max_bytes} bytes (the expected size, or "
                               f"ZOO_MAX_DOWNLOAD_BYTES / --max-bytes); stopped.")
        write(chunk)
        if advance:
            advance(len(chunk))


def _progress(total: int | None, name: str, enabled: bool | None):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    # On stderr: stdout carries results (`zoo weights fetch` prints the path there).
    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn(), transient=True, console=Console(stderr=True))
    bar.start()
    task = bar.add_task(name, total=total)
    return bar, task


def _download_once(url: str, part: Path, *, progress: bool | None, allow_http: bool, max_bytes: int,
                   deadline: float) -> None:
    """One attempt: resume `part` with a Range request when it holds bytes already."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "zoo-weights/0.1"}
    if have:
        headers["Range"] = f"bytes={have}-"
    with open_url(url, allow_http=allow_http, headers=headers,
                  timeout=max(0.1, min(TIMEOUT, deadline - time.monotonic()))) as response:
        status = getattr(response, "status", 200)
        if have and status == 206:
            mode = "ab"
        else:
            mode, have = "wb", 0  # the server ignored the Range: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        if total is not None and total > max_bytes:
            raise WeightsError(f"Download of {url} announces {total} bytes, more than the {max_bytes} allowed "
                               f"(the expected size, or ZOO_MAX_DOWNLOAD_BYTES / --max-bytes).")
        bar = _progress(total, part.name.lstrip(".").removesuffix(".part"), progress)
        try:
            with open(part, mode) as fh:
                if bar:
                    bar[0].update(bar[1], completed=have)
                advance = (lambda n: bar[0].update(bar[1], advance=n)) if bar else None
                copy_limited(response, fh.write, max_bytes=max_bytes, deadline=deadline, url=url, have=have,
                             advance=advance)
                fh.flush()  # synced by zoo.files.publish once verified
        finally:
            if bar:
                bar[0].stop()
    if total is not None and part.stat().st_size < total:
        raise ConnectionError(f"connection closed after {part.stat().st_size} of {total} bytes")


def _download(url: str, part: Path, *, progress: bool | None, allow_http: bool = False,
              max_bytes: int | None = None) -> None:
    max_bytes = max_bytes or default_max_bytes()
    deadline = time.monotonic() + default_deadline()
    last: Exception | None = None
    for attempt in range(RETRIES):
        try:
            _download_once(url, part, progress=progress, allow_http=allow_http, max_bytes=max_bytes,
                           deadline=deadline)
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 416:  # Range not satisfiable: our partial file is stale
                part.unlink(missing_ok=True)
                last = exc
                continue
            if 400 <= exc.code < 500:
                raise  # 403/404 will not get better by retrying
            last = exc
        except (OSError, ConnectionError) as exc:  # URLError, timeouts, IncompleteRead, resets
            last = exc
        if time.monotonic() > deadline:
            break
        log.info("download of %s interrupted (%s); resuming (attempt %d/%d)", url, last, attempt + 2, RETRIES)
        time.sleep(min(0.2 * 2 ** attempt, 2.0))
    assert last is not None
    raise last


def manual_hint(urls: list[str], target: Path) -> str:
    return (f"Download {urls[0]} by hand (browser, curl, another machine) and put it at {target}, "
            f"or run `zoo weights import FILE --arch ARCH --tag TAG`.")


def fetch(urls: list[str], *, filename: str, sha256: str | None = None, md5: str | None = None,
          sha256_prefix: str | None = None, pin: bool = False, allow_http: bool = False,
          progress: bool | None = None, max_bytes: int | None = None) -> Path:
    """A verified local copy of the file at `urls` (mirrors tried in order), from the cache when possible.

    Args:
        urls: download locations of the same file.
        filename: its name in the cache.
        sha256, md5, sha256_prefix: the published checksum (one is enough).
        pin: with no full hash, record the sha256 of the first download and hold later uses to it.
        allow_http: accept plain-http URLs on non-loopback hosts (a trusted local mirror).
        progress: show a progress bar (default: when stderr is a terminal).
        max_bytes: stop a download past this size (default ZOO_MAX_DOWNLOAD_BYTES, else 2 GiB).
    Returns:
        Path of the verified file (in $ZOO_HOME/weights, or the Keras cache when it was there).
    """
    checksum = Checksum(sha256=sha256, md5=md5, sha256_prefix=sha256_prefix, pin=pin)
    if not (sha256 or md5 or sha256_prefix or pin):
        raise WeightsError(f"Refusing to fetch {urls[0]} without a checksum. Pass --sha256/--md5, or pin it.")
    target = cache_dir() / filename
    # A verified file is used as is, even from a read-only cache (files appear only by atomic rename).
    if target.is_file() and checksum.check(target) is None:
        return target
    _writable_cache(target.parent)
    with file_lock(target):
        if target.exists():
            problem = checksum.check(target)
            if problem is None:
                return target
            # Never load a file that fails its checksum, and never delete it before a verified
            # replacement is in hand: it stays until a good download is renamed over it.
            log.warning("cached %s does not match (%s); fetching it again", target, problem)
        if sha256 or md5 or sha256_prefix:
            for folder in keras_cache_dirs():
                candidate = folder / filename
                if candidate.is_file() and checksum.check(candidate) is None:
                    log.info("using %s from the Keras cache", candidate)
                    return candidate
        if offline():
            raise WeightsError(f"ZOO_OFFLINE=1 and {filename} ({checksum.describe()}) is not in the cache "
                               f"{target.parent}. " + manual_hint(urls, target))
        for url in urls:
            check_url(url, allow_http=allow_http)
        part = target.with_name(f".{filename}.part")
        errors = []
        for url in urls:
            try:
                _download(url, part, progress=progress, allow_http=allow_http, max_bytes=max_bytes)
            except Exception as exc:  # one mirror failing must not hide the next
                if isinstance(exc, WeightsError):  # too large, too slow, a refused redirect: nothing to resume
                    part.unlink(missing_ok=True)
                errors.append(f"{url}: {exc}")
                continue
            problem = checksum.check(part)
            if problem is not None:
                part.unlink(missing_ok=True)
                errors.append(f"{url}: downloaded file is wrong ({problem})")
                continue
            if pin and not sha256:
                digest = sha256_of(part)
                write_text(pin_file(target), digest + "\n")
            elif pin_file(target).exists():  # an old pin would hold the verified file to another hash
                write_text(pin_file(target), sha256_of(part) + "\n")
            publish(part, target)
            return target
        raise WeightsError(f"Could not fetch {filename} into {target}: " + "; ".join(errors) + ". "
                           + manual_hint(urls, target))


def _writable_cache(folder: Path) -> None:
    """The cache folder exists and is writable, or one WeightsError line says how to fix ZOO_HOME."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK | os.X_OK)
        reason = "it is not writable"
    except OSError as exc:
        writable, reason = False, exc.strerror or str(exc)
    if not writable:
        raise WeightsError(f"The weights cache {folder} cannot be used ({reason}): ZOO_HOME={zoo_home()} must be "
                           f"a writable folder. Set ZOO_HOME to one (or put the file there by hand).")


def split_url_checksum(url: str) -> tuple[str, dict[str, Any]]:
    """`https://host/w.safetensors#sha256=HEX` -> (the URL without fragment, {"sha256": HEX}).

    As in pip's requirement URLs, the checksum rides in the fragment: `#sha256=HEX`, `#md5=HEX`, or
    `#pin` to record the sha256 of the first download and hold every later use to it (an explicit
    opt-in: zoo never trusts a first download silently).
    """
    parts = urllib.parse.urlsplit(url)
    found: dict[str, Any] = {}
    for item in filter(None, parts.fragment.split("&")):
        key, _, value = item.partition("=")
        key = key.strip().lower()
        if key in ("sha256", "md5") and value and all(c in "0123456789abcdefABCDEF" for c in value):
            found[key] = value.lower()
        elif key == "pin" and not value:
            found["pin"] = True
        else:
            raise UsageError(f"Unknown checksum {item!r} in the URL fragment of {parts._replace(fragment='').geturl()}. "
                             f"Append #sha256=HEX, #md5=HEX or #pin.")
    return parts._replace(fragment="").geturl(), found


def url_filename(url: str, checksum: Checksum) -> str:
    """The cache name of a URL download: a key from the URL and its checksum, then the URL's file name.

    Two URLs ending in the same name (every Hugging Face `.../model.safetensors`) or one URL asked
    with two checksums get two files, so neither can be served for, or evict, the other. The
    name keeps the URL's suffix (the weights format is read from it), bounded and made of safe
    characters; "", "." and ".." become "download".
    """
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    base = "".join(c if c.isalnum() or c in "._-" else "_" for c in path.rsplit("/", 1)[-1]).lstrip(".")
    key = hashlib.sha256(f"{url}\n{checksum.describe()}".encode()).hexdigest()[:16]
    return f"{key}-{base[-80:] or 'download'}"


def fetch_url(url: str, *, sha256: str | None = None, md5: str | None = None, pin: bool = False,
              allow_http: bool = False, progress: bool | None = None, max_bytes: int | None = None) -> Path:
    """fetch() for one URL given by the user: its checksum from the arguments or the URL's fragment
    (see split_url_checksum), required; cached under url_filename."""
    url, found = split_url_checksum(url)
    sha256, md5, pin = sha256 or found.get("sha256"), md5 or found.get("md5"), pin or found.get("pin", False)
    if not (sha256 or md5 or pin):
        raise UsageError(f"Weights from a URL need a checksum so a wrong file is never loaded. Received: {url} "
                         f"without one. Append #sha256=HASH to the URL (or pass --sha256 HASH); "
                         f"#pin records the sha256 of the first download instead.")
    checksum = Checksum(sha256=sha256, md5=md5, pin=pin and not (sha256 or md5))
    path = fetch([url], filename=url_filename(url, checksum), sha256=sha256, md5=md5, pin=checksum.pin,
                 allow_http=allow_http, progress=progress, max_bytes=max_bytes)
    if path.parent == cache_dir() and not pin_file(path).exists():  # so `zoo weights verify` can check it
        write_text(pin_file(path), sha256_of(path) + "\n")
    return path


def fetch_row(row: dict[str, Any], part: dict[str, Any] | None = None, *, progress: bool | None = None) -> Path:
    """fetch() for a manifest row (or its `notop` part)."""
    part = part or row
    urls = list(part["urls"])
    filename = part.get("filename") or urllib.parse.urlsplit(urls[0]).path.rsplit("/", 1)[-1]
    return fetch(urls, filename=filename, sha256=part.get("sha256"), md5=part.get("md5"),
                 sha256_prefix=part.get("sha256_prefix"), pin=bool(part.get("pin")), progress=progress,
                 max_bytes=part.get("size"))


def cached_files() -> list[Path]:
    folder = cache_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and not p.name.endswith(".sha256"))
