"""The committed deploy/crds files are exactly what the API types generate."""

from __future__ import annotations

from pathlib import Path

from substratus_common.api import crd

CRDS = Path(__file__).resolve().parents[3] / "deploy" / "crds"


def test_committed_crds_match_the_types() -> None:
    stale = crd.drift(CRDS)
    assert not stale, f"deploy/crds is out of date ({', '.join(stale)}): run `make crds` and commit the result"


def test_no_stray_crd_files() -> None:
    # The stack applies every YAML file in deploy/crds; one left from a removed kind would linger.
    assert sorted(p.name for p in CRDS.glob("*.yaml")) == sorted(crd.render())


def test_generation_is_deterministic() -> None:
    assert crd.render() == crd.render()


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    assert crd.main(["--check", str(tmp_path)]) == 1
    assert crd.main([str(tmp_path)]) == 0
    assert crd.main(["--check", str(tmp_path)]) == 0
    (tmp_path / "models.yaml").write_text("# edited by hand\n")
    assert crd.drift(tmp_path) == ["models.yaml"]
