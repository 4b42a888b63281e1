"""The fuzz targets of ``fuzz/`` (issue 7): a short atheris run of each in a child process (a
crash, a hang or an allocation beyond 2 GiB fails the test, not the run), every input the
fuzzer ever found a problem with (``fuzz/regressions/``), and the checksum resealing that lets
mutations reach the parsers behind the checksums. ``scripts/fuzz.sh`` runs the long version.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
sys.path.insert(0, str(FUZZ))
import targets  # noqa: E402

REGRESSIONS = sorted(
    (target.name, case) for target in (FUZZ / "regressions").iterdir() for case in target.iterdir()
)
#: Runs per target in the suite: each takes 2-15 s here (scripts/fuzz.sh runs for hours).
RUNS = 4000


@pytest.mark.parametrize(("target", "case"), REGRESSIONS, ids=lambda v: getattr(v, "name", v))
def test_regression_inputs(target: str, case: Path) -> None:
    """Inputs the fuzzer once failed on: each is now refused with a ValueError or loads and
    passes the target's checks (scoring, round trips)."""
    targets.TARGETS[target](case.read_bytes())


def test_every_target_has_seeds_and_regressions(tmp_path: Path) -> None:
    assert {target for target, _ in REGRESSIONS} == set(targets.TARGETS)
    for name in targets.TARGETS:
        assert targets.make_seeds(name, tmp_path / name), name


def _load(name: str, data: bytes, path: Path) -> object:
    import rnnkit.ngram as ngram

    if name == "counts_bytes":
        return ngram.NgramCounts.from_bytes(data)
    path.write_bytes(data)
    return ngram.NgramModel.load(path)


@pytest.mark.parametrize(
    ("name", "reseal"),
    [("binary_model", targets.reseal_model), ("counts_bytes", targets.reseal_counts)],
)
def test_resealing_reproduces_the_writers_checksums(
    name: str, reseal: object, tmp_path: Path
) -> None:
    """Resealing an unchanged file gives its bytes back (so the fuzzer's resealed mutations
    pass the checksum), and a resealed damaged file is refused by the check behind the
    checksum, not by the checksum."""

    for seed in targets.make_seeds(name, tmp_path):
        data = seed.read_bytes()
        assert reseal(data) == data, seed.name  # type: ignore[operator]
        # The first ordinary word's first byte becomes a space: a word no vocabulary holds.
        at = data.index(b"\n<s>\n</s>\n") + 10 if name == "binary_model" else 21
        damaged = data[:at] + b" " + data[at + 1 :]
        with pytest.raises(ValueError, match="checksum"):
            _load(name, damaged, tmp_path / "damaged")
        with pytest.raises(ValueError) as refused:
            _load(name, reseal(damaged), tmp_path / "damaged")  # type: ignore[operator]
        assert "checksum" not in str(refused.value)


@pytest.mark.parametrize("name", sorted(targets.TARGETS))
def test_short_fuzz_run(name: str, tmp_path: Path) -> None:
    """``RUNS`` mutations of the seeds and regressions under atheris (coverage-guided on the
    Python side), in a child process: no uncaught exception, crash, hang (60 s per input) or
    allocation beyond 2 GiB."""
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    targets.make_seeds(name, corpus)
    done = subprocess.run(
        [
            sys.executable,
            str(FUZZ / "run.py"),
            name,
            f"-runs={RUNS}",
            "-seed=1",
            "-timeout=60",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
            str(FUZZ / "regressions" / name),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = done.stdout + done.stderr
    found = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "oom-")))
    assert done.returncode == 0 and not found, (
        f"the fuzzer ended with status {done.returncode} and wrote {found}:\n{log[-4000:]}"
    )
    assert re.search(rf"Done {RUNS} runs", log), log[-2000:]


def test_load_arpa_then_save_binary_round_trip(tmp_path: Path) -> None:
    """The first finding: a model read from ARPA (sized for three special words more than the
    file's unigrams) could not be saved in the binary format."""
    import rnnkit.ngram as ngram

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ngram.estimate(ngram.NgramCounts(3).update(["a b c", "b c d", "a c"]), method="mkn")
    model.write_arpa(tmp_path / "m.arpa")
    read = ngram.load_arpa(tmp_path / "m.arpa")
    read.save(tmp_path / "m.bin")
    again = ngram.load_model(tmp_path / "m.bin")
    for sentence in ("a b c", "d d a", "x"):
        assert again.score(sentence) == read.score(sentence)
    assert np.isclose(again.score("a b c"), model.score("a b c"), atol=1e-5)
