"""Canonical digests: equal for equal physics, different for different physics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hepx.digest import canonical_digest, canonical_number, method_for
from hepx.errors import DigestError

uproot = pytest.importorskip("uproot")


def outputs_with(folder: Path, summary: dict[str, object], files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def root_outputs(folder: Path, counts: list[float], sigma: float, png: bytes = b"png") -> Path:
    folder.mkdir(parents=True)
    with uproot.recreate(folder / "jets.root") as f:
        f["jet_pt"] = (np.asarray(counts), np.linspace(50.0, 450.0, len(counts) + 1))
        f["run"] = {"sigma_mb": np.array([sigma]), "events": np.array([100], dtype=np.int64)}
    (folder / "jet_pt.png").write_bytes(png)
    (folder / "summary.json").write_text(json.dumps({"sigma_mb": sigma, "wall_time_s": 1.0}))
    return folder


SUMMARY = {"seed": 1, "sigma_mb": 0.0233229758, "wall_time_s": 9.2, "versions": {"x": "1"}}


def test_bytes_digest_ignores_timings_but_not_a_changed_byte(tmp_path: Path) -> None:
    a = outputs_with(tmp_path / "a", SUMMARY, {"events.hepmc": b"E 0\nP 1\n"})
    b = outputs_with(
        tmp_path / "b",
        SUMMARY | {"wall_time_s": 3.1, "events_per_s": 7.0, "versions": {"x": "2"}},
        {"events.hepmc": b"E 0\nP 1\n"},
    )
    c = outputs_with(tmp_path / "c", SUMMARY, {"events.hepmc": b"E 0\nP 2\n"})
    assert canonical_digest("hep.generate", a) == canonical_digest("hep.generate", b)
    assert canonical_digest("hep.generate", a) != canonical_digest("hep.generate", c)


def test_summary_numbers_count_to_six_significant_digits(tmp_path: Path) -> None:
    base = outputs_with(tmp_path / "a", SUMMARY, {})
    close = outputs_with(tmp_path / "b", SUMMARY | {"sigma_mb": 0.02332297589}, {})
    far = outputs_with(tmp_path / "c", SUMMARY | {"sigma_mb": 0.0233239}, {})
    assert canonical_digest("echo", base) == canonical_digest("echo", close)
    assert canonical_digest("echo", base) != canonical_digest("echo", far)


def test_root_digest_reads_histograms_not_file_bytes(tmp_path: Path) -> None:
    counts = [40.0, 21.0, 9.0, 3.0]
    a = root_outputs(tmp_path / "a", counts, 0.0233229758)
    b = root_outputs(tmp_path / "b", counts, 0.02332297581, png=b"other pixels")
    assert (a / "jets.root").read_bytes() != (b / "jets.root").read_bytes()
    digest = canonical_digest("hep.analyze", a)
    assert digest.method == "root" and digest.value.startswith("0x") and len(digest.value) == 66
    assert digest == canonical_digest("hep.analyze", b)
    one_more_jet = root_outputs(tmp_path / "c", [40.0, 22.0, 9.0, 3.0], 0.0233229758)
    assert digest != canonical_digest("hep.analyze", one_more_jet)
    other_sigma = root_outputs(tmp_path / "d", counts, 0.0241)
    assert digest != canonical_digest("hep.analyze", other_sigma)


def test_same_folder_digested_as_bytes_and_as_root_differs(tmp_path: Path) -> None:
    a = root_outputs(tmp_path / "a", [1.0], 1.0)
    assert canonical_digest("hep.merge", a) != canonical_digest("echo", a)
    assert method_for("hep.merge") == "root" and method_for("some.new.kind") == "bytes"


def test_canonical_number_spells_each_value_once() -> None:
    assert canonical_number(-0.0) == canonical_number(0.0) == "0"
    assert canonical_number(1234567.0) == canonical_number(1234567.4) == "1.23457e+06"
    assert canonical_number(3) == "3"
    assert canonical_number(float("nan")) == "nan"


def test_unreadable_outputs_raise_digest_error(tmp_path: Path) -> None:
    a = root_outputs(tmp_path / "a", [1.0], 1.0)
    (a / "jets.root").write_bytes(b"not a ROOT file")
    with pytest.raises(DigestError, match="cannot digest ROOT file jets.root"):
        canonical_digest("hep.analyze", a)
    b = tmp_path / "b"
    shutil.copytree(tmp_path / "a", b)
    (b / "jets.root").unlink()
    (b / "summary.json").write_text("{not json")
    with pytest.raises(DigestError, match="summary.json: not valid JSON"):
        canonical_digest("hep.analyze", b)
    with pytest.raises(DigestError, match="not a folder"):
        canonical_digest("echo", tmp_path / "missing")


def test_root_digest_ignores_input_names_and_cids_but_not_input_numbers(tmp_path: Path) -> None:
    counts = [4.0, 2.0]
    a = root_outputs(tmp_path / "a", counts, 1.5)
    b = root_outputs(tmp_path / "b", counts, 1.5)
    c = root_outputs(tmp_path / "c", counts, 1.5)
    runs = {"sigma_mb": 1.5, "inputs": [{"name": "generate", "cid": "bafyA", "events": 40}]}
    (a / "summary.json").write_text(json.dumps(runs))
    renamed = {"sigma_mb": 1.5, "inputs": [{"name": "replica", "cid": "bafyB", "events": 40}]}
    (b / "summary.json").write_text(json.dumps(renamed))
    fewer = {"sigma_mb": 1.5, "inputs": [{"name": "generate", "cid": "bafyA", "events": 39}]}
    (c / "summary.json").write_text(json.dumps(fewer))
    assert canonical_digest("hep.analyze", a) == canonical_digest("hep.analyze", b)
    assert canonical_digest("hep.analyze", a) != canonical_digest("hep.analyze", c)
