"""``--kind`` takes the plural or singular of a kind; ``--namespace`` and ``--name`` must be Kubernetes names."""

import pytest

from substratus_cli import query, substratus


@pytest.mark.parametrize(
    ("given", "plural"),
    [
        ("models", "models"),
        ("model", "models"),
        ("Model", "models"),
        ("DATASETS", "datasets"),
        ("notebook", "notebooks"),
    ],
)
def test_plural_singular_and_kind_name_all_mean_the_plural(given: str, plural: str) -> None:
    assert query.plural(given) == plural


@pytest.mark.parametrize(
    ("argv", "flag", "message"),
    [
        (["--kind", "jobs"], "--kind", "unknown kind 'jobs'; use one of models, datasets, servers, notebooks"),
        (["-n", "Team_A"], "-n/--namespace", "not a namespace name"),
        (["--namespace", "a.b"], "-n/--namespace", "not a namespace name"),
        (["--name", "My Model"], "--name", "not a resource name"),
        (["--name", "x" * 254], "--name", "at most 253"),
    ],
)
def test_bad_values_are_refused_naming_the_flag(
    argv: list[str], flag: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        substratus.main(["events", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err
    assert message in err


def test_flags_become_the_query() -> None:
    from substratus_cli import events

    args = substratus.parser().parse_args(
        ["events", "--kind", "model", "-n", "team-a", "--name", "opt.125m", "--since", "10m", "-f", "--json"]
    )
    q = events.query_from(args)
    assert (q.plural, q.namespace, q.name, q.follow, q.as_json) == ("models", "team-a", "opt.125m", True, True)
    assert q.since is not None
