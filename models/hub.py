"""Model resolution shared by the engines: local path, Hugging Face cache, download.

Every engine names its model with one string: a local path or a Hub id (or
an engine-specific short name the engine maps to a Hub id). `resolve` turns
it into a local path: an existing path is used as is; otherwise the Hub cache
is tried first (no network), then a download unless offline mode is on. Any
failure becomes one `ModelUnavailable` that names the model and says how to
point to a local copy.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from duplex.errors import ModelUnavailable


def cache_root() -> Path:
    """Where duplex keeps models it builds itself ($DUPLEX_CACHE or ~/.cache/duplex)."""
    return Path(os.environ.get("DUPLEX_CACHE") or Path.home() / ".cache" / "duplex").expanduser()


def hf_offline() -> bool:
    """True when Hugging Face offline mode is on (read at call time, not import time)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def looks_like_path(name: str) -> bool:
    """A name meant as a filesystem path rather than a Hub id ("org/name")."""
    return name.startswith(("/", "./", "../", "~", ".\\")) or name in (".", "..") or (
        os.sep != "/" and os.sep in name
    ) or name.endswith((".onnx", ".json", ".bin", ".safetensors"))


def local_path(kind: str, name: str) -> Path | None:
    """The existing local path `name` points to; None when it is not a path.

    A name that looks like a path but does not exist is an error here, so a
    typo in a path is not sent to the Hub as an id.
    """
    if not name or not name.strip():
        raise ModelUnavailable(kind, name, "no model name was given")
    path = Path(name).expanduser()
    if path.exists():
        return path
    if looks_like_path(name):
        raise ModelUnavailable(kind, name, f"there is no file or directory at {path}")
    return None


def describe(exc: BaseException) -> str:
    """A short, human reason for a failed model lookup or download."""
    try:
        from huggingface_hub import errors as hf
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        hf = None
    if hf is not None:
        if isinstance(exc, hf.GatedRepoError):
            return "the repository is gated: accept its licence on the Hub and log in (`hf auth login`)"
        if isinstance(exc, hf.RepositoryNotFoundError):
            return "no such repository on the Hugging Face Hub (or it is private)"
        if isinstance(exc, hf.RevisionNotFoundError):
            return "the requested revision does not exist on the Hub"
        if isinstance(exc, hf.OfflineModeIsEnabled):
            return "it is not in the local Hugging Face cache and offline mode (HF_HUB_OFFLINE) is on"
        if isinstance(exc, hf.LocalEntryNotFoundError):
            return "it is not in the local Hugging Face cache and the Hub could not be reached"
        if isinstance(exc, hf.EntryNotFoundError):
            return f"a file is missing from the repository ({_first_line(exc)})"
        if isinstance(exc, hf.HfHubHTTPError):
            return f"the Hub refused the download ({_first_line(exc)})"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:300]


def resolve(
    kind: str,
    name: str,
    fetch: Callable[[bool], str | Path],
    *,
    hint: str = "",
) -> Path:
    """Local path for `name`: the path itself when it exists, else `cached_or_download`."""
    path = local_path(kind, name)
    if path is not None:
        return path
    return cached_or_download(kind, name, fetch, hint=hint)


def cached_or_download(
    kind: str, name: str, fetch: Callable[[bool], str | Path], *, hint: str = ""
) -> Path:
    """`fetch(local_files_only=True)` (cache only), then `fetch(False)` unless offline.

    Errors from either become `ModelUnavailable(kind, name, ...)`.
    """
    try:
        return Path(fetch(True))
    except Exception as exc:  # noqa: BLE001 - any cache miss falls through to download
        first = exc
    if hf_offline():
        from huggingface_hub.errors import LocalEntryNotFoundError

        reason = ("it is not in the local Hugging Face cache" if isinstance(first, LocalEntryNotFoundError)
                  else describe(first))
        raise unavailable(kind, name, f"{reason} (HF_HUB_OFFLINE is set, so nothing was downloaded)",
                          hint) from first
    try:
        return Path(fetch(False))
    except Exception as exc:
        raise unavailable(kind, name, exc, hint) from exc


def unavailable(kind: str, name: str, reason: BaseException | str, hint: str = "") -> ModelUnavailable:
    """The `ModelUnavailable` for `name`, with `reason` described for people."""
    text = reason if isinstance(reason, str) else describe(reason)
    return ModelUnavailable(kind, name, text, hint)


def snapshot(kind: str, repo_id: str, allow_patterns: list[str], *, hint: str = "") -> Path:
    """A Hub repository (or local directory) as a local directory."""
    from huggingface_hub import snapshot_download

    return resolve(
        kind,
        repo_id,
        lambda local: snapshot_download(repo_id, allow_patterns=allow_patterns, local_files_only=local),
        hint=hint,
    )


def hub_file(kind: str, name: str, repo_id: str, filename: str, *, hint: str = "") -> Path:
    """One file of a Hub repository, from the cache or downloaded; `name` is what the user asked for.

    Goes through `snapshot_download` (one listing call) rather than
    `hf_hub_download`, which retries for ~25 s when the Hub is unreachable.
    """
    from huggingface_hub import snapshot_download

    def fetch(local: bool) -> Path:
        folder = snapshot_download(repo_id, allow_patterns=[filename], local_files_only=local)
        path = Path(folder) / filename
        if not path.is_file():
            raise FileNotFoundError(f"{repo_id} has no file {filename}")
        return path

    return cached_or_download(kind, name, fetch, hint=hint)


def add_to_cache(repo_id: str, folder: str | Path, *, cache_dir: str | Path | None = None,
                 revision: str = "main") -> Path:
    """Copy a local model folder into the Hugging Face cache as `repo_id` (files under `folder`
    keep their relative paths), so the id resolves offline like a downloaded model. Returns the
    snapshot directory."""
    import hashlib
    import shutil

    from huggingface_hub import constants

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a directory")
    root = Path(cache_dir or constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(f"{repo_id}@{folder.resolve()}".encode()).hexdigest()
    snap = root / "snapshots" / commit
    shutil.copytree(folder, snap, dirs_exist_ok=True)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / revision).write_text(commit)
    return snap
