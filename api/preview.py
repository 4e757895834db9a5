"""Previews of stored results for the explorer: text, JSON, images and ROOT histograms.

Everything is read from the content store by CID (so it is verified on the way) and kept
small: text is cut at ``TEXT_LIMIT`` bytes, ROOT files above ``ROOT_LIMIT`` are not opened.
ROOT histograms are drawn to PNG on the server (uproot + matplotlib, from the ``hep`` extra);
without them the page says what to install.
"""

from __future__ import annotations

import functools
import io
import json
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from api.errors import NoSuchHistogram
from hepx.store import LocalStore

TEXT_LIMIT = 20_000
ROOT_LIMIT = 64 * 1024 * 1024
MAX_FILES = 60
_TEXT_SUFFIXES = {".txt", ".log", ".yaml", ".yml", ".csv", ".md", ".hepmc", ".lhe", ".py", ".sh"}
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "x"}
_ROOT_LOCK = threading.Lock()  # matplotlib's pyplot state is global


@dataclass
class FilePreview:
    path: str
    cid: str
    size: int
    kind: str  # text, json, image, root, binary
    text: str | None = None
    truncated: bool = False
    histograms: list[str] = field(default_factory=list)
    note: str | None = None


def _kind(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in _IMAGE_TYPES:
        return "image"
    if suffix == ".root":
        return "root"
    if suffix in _TEXT_SUFFIXES:
        return "text"
    return "binary"


def walk(store: LocalStore, cid: str, prefix: str = "") -> list[tuple[str, str, int]]:
    """``(path, cid, size)`` of every file under a directory CID (a file CID: itself)."""
    entry = store.stat(cid)
    if not entry.is_dir:
        return [(prefix, cid, int(entry.size))]
    files: list[tuple[str, str, int]] = []
    for child in store.ls(cid):
        path = f"{prefix}/{child.name}" if prefix else child.name
        if child.is_dir:
            files.extend(walk(store, str(child.cid), path))
        else:
            files.append((path, str(child.cid), int(child.size)))
        if len(files) >= MAX_FILES:
            break
    return files[:MAX_FILES]


def preview(store: LocalStore, path: str, cid: str, size: int) -> FilePreview:
    """What the result page shows for one file."""
    view = FilePreview(path, cid, size, _kind(path or cid))
    if view.kind in ("text", "json"):
        head = b"".join(store.cat(cid, 0, min(size, TEXT_LIMIT)))
        view.truncated = size > TEXT_LIMIT
        text = head.decode("utf-8", errors="replace")
        if view.kind == "json" and not view.truncated:
            try:
                text = json.dumps(json.loads(text), indent=2)
            except ValueError:
                view.note = "not valid JSON; shown as text"
        view.text = text
    elif view.kind == "root":
        if size > ROOT_LIMIT:
            view.note = f"ROOT file over {ROOT_LIMIT // 2**20} MiB: not opened for preview"
        else:
            try:
                view.histograms = root_histograms(store, cid)
            except ImportError:
                view.note = "install hepx[hep] (uproot, matplotlib) to preview ROOT files"
            except (OSError, ValueError) as exc:
                view.note = f"cannot read this ROOT file: {exc}"
    return view


def _open_root(store: LocalStore, cid: str) -> Any:
    import uproot

    with tempfile.NamedTemporaryFile(suffix=".root", delete=False) as tmp:
        for chunk in store.cat(cid):
            tmp.write(chunk)
    try:
        return uproot.open(tmp.name), Path(tmp.name)
    except Exception:
        Path(tmp.name).unlink(missing_ok=True)
        raise


@functools.lru_cache(maxsize=256)
def root_histograms(store: LocalStore, cid: str) -> list[str]:
    """Names of the 1-D histograms in a stored ROOT file."""
    root, tmp = _open_root(store, cid)
    try:
        return [
            name.split(";")[0]
            for name, cls in root.classnames().items()
            if cls.startswith(("TH1", "TProfile"))
        ]
    finally:
        root.close()
        tmp.unlink(missing_ok=True)


def _mathtext(root_label: str) -> str:
    """ROOT's TLatex-ish labels (``p_{T} [GeV]``, ``#eta``) in matplotlib's mathtext."""
    if not any(c in root_label for c in "_^#"):
        return root_label
    words = []
    for word in root_label.split(" "):
        if any(c in word for c in "_^#") and "$" not in word:
            word = "$" + word.replace("#", "\\") + "$"
        words.append(word)
    return " ".join(words)


@functools.lru_cache(maxsize=128)
def histogram_png(store: LocalStore, cid: str, name: str) -> bytes:
    """The histogram ``name`` of a stored ROOT file drawn as a PNG (cached: CIDs never change)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root, tmp = _open_root(store, cid)
    try:
        if name not in [n.split(";")[0] for n in root.keys()]:  # noqa: SIM118 - a ROOT directory
            raise NoSuchHistogram(f"ROOT file {cid} has no histogram {name!r}")
        hist = root[name]
        values, edges = hist.to_numpy()
        # ROOT titles read "title;x label;y label"; axis titles, when set, take precedence.
        parts = [*str(hist.member("fTitle") or name).split(";"), "", ""]
        title = _mathtext(parts[0] or name)
        xlabel = _mathtext(str(hist.member("fXaxis").member("fTitle") or "") or parts[1] or name)
        ylabel = _mathtext(parts[2] or "entries")
    finally:
        root.close()
        tmp.unlink(missing_ok=True)
    with _ROOT_LOCK:
        fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
        try:
            ax.stairs(values, edges, fill=True, alpha=0.35, color="#2b6cb0")
            ax.stairs(values, edges, color="#2b6cb0")
            ax.set_title(title)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if values.max() > 0 and values[values > 0].min() * 100 < values.max():
                ax.set_yscale("log")
            fig.tight_layout()
            out = io.BytesIO()
            fig.savefig(out, format="png")
        finally:
            plt.close(fig)
    return out.getvalue()
