from __future__ import annotations

import optuna
import pytest

from optuna_lcpred.bench.pruners import PrunerSpecError
from optuna_lcpred.bench.pruners import make_pruner
from optuna_lcpred.bench.pruners import parse_pruner_list
from optuna_lcpred.bench.pruners import parse_pruner_spec


def test_list_keeps_options_with_their_pruner() -> None:
    specs = parse_pruner_list("nop,median,percentile:percentile=25,n_warmup_steps=5,sha")
    assert [s.text for s in specs] == [
        "nop",
        "median",
        "percentile:percentile=25,n_warmup_steps=5",
        "sha",
    ]
    assert specs[2].options == {"percentile": "25", "n_warmup_steps": "5"}


def test_oracle_is_always_computed_so_listing_it_is_ignored() -> None:
    assert [s.text for s in parse_pruner_list("nop,oracle")] == ["nop"]


def test_built_in_names_make_optuna_pruners() -> None:
    assert isinstance(make_pruner("nop", 10), optuna.pruners.NopPruner)
    assert isinstance(make_pruner("median", 10), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("sha", 10), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner("hyperband", 10), optuna.pruners.HyperbandPruner)
    percentile = make_pruner("percentile25", 10)
    assert isinstance(percentile, optuna.pruners.PercentilePruner)
    assert percentile._percentile == 25.0  # the alias fixes the percentile


def test_option_values_and_percentages_of_the_table_steps() -> None:
    pruner = make_pruner(parse_pruner_spec("median:n_startup_trials=3,n_warmup_steps=10%"), 52)
    assert pruner._n_startup_trials == 3
    assert pruner._n_warmup_steps == 5  # round(0.10 * 52)
    hyperband = make_pruner("hyperband:max_resource=100%,reduction_factor=2", 52)
    assert hyperband._max_resource == 52


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_percentages_of_sparse_steps_are_of_the_last_step_and_patience_of_the_reports() -> None:
    # 50 reports at steps 10, 20, ..., 500: 10 % of training is step 50, not step 5.
    median = make_pruner("median:n_warmup_steps=10%,interval_steps=4%", 50, last_step=500)
    assert (median._n_warmup_steps, median._interval_steps) == (50, 20)
    spec = "lcpred:fallback.name=sha,fallback.min_resource=4%,n_warmup_steps=2%"
    lcpred = make_pruner(spec, 50, last_step=500)
    assert lcpred._fallback._min_resource == 20  # type: ignore[attr-defined]
    assert lcpred._n_warmup_steps == 10  # type: ignore[attr-defined]
    patient = make_pruner("patient:patience=10%", 50, last_step=500)
    assert patient._patience == 5  # 10 % of the 50 reports


@pytest.mark.parametrize(
    ("spec", "needles"),
    [
        ("bogus", ["unknown pruner 'bogus'", "median"]),
        ("median:bogus=1", ["'median' does not take option(s) bogus", "n_warmup_steps"]),
        ("median:n_warmup_steps=-1", ["median:n_warmup_steps=-1", "-1"]),
        ("percentile25:percentile=30", ["already fixes percentile=25"]),
        ("median:n_warmup_steps", ["must look like key=value"]),
        ("median:n_warmup_steps=x%", ["not a percentage"]),
        ("median:n_warmup_steps=150%", ["n_warmup_steps='150%' must be between 0% and 100%"]),
        ("lcpred:fallback=bogus", ["fallback: unknown pruner 'bogus'", "median"]),
        ("lcpred:fallback.percentile=25", ["must name a pruner", "fallback.name=NAME"]),
        ("lcpred:fallback=lcpred", ["fallback cannot be 'lcpred'"]),
        ("lcpred:fallback.name=sha,fallback.bogus=1", ["'sha' does not take option(s) bogus"]),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, needles: list[str]) -> None:
    with pytest.raises(PrunerSpecError) as info:
        make_pruner(spec, 10)
    for needle in needles:
        assert needle in str(info.value)


def test_duplicates_and_orphan_options_are_rejected() -> None:
    with pytest.raises(PrunerSpecError, match="listed twice"):
        parse_pruner_list("median,median")
    with pytest.raises(PrunerSpecError, match="before any pruner name"):
        parse_pruner_list("n_warmup_steps=3,median")


def _prunes(pruner: optuna.pruners.BasePruner, value: float) -> bool:
    study = optuna.create_study(pruner=pruner)
    trial = study.ask()
    trial.report(value, 0)
    trial.report(value, 1)
    return trial.should_prune()


def test_lcpred_fallback_by_name_or_with_options() -> None:
    # No trial has finished: the model cannot decide, so the fallback does.
    assert not _prunes(make_pruner("lcpred", 10), 5.0)
    assert _prunes(make_pruner("lcpred:fallback.name=threshold,fallback.upper=1.0", 10), 5.0)
    assert not _prunes(make_pruner("lcpred:fallback.name=threshold,fallback.upper=1.0", 10), 0.5)
    [spec] = parse_pruner_list(
        "lcpred:fallback.name=percentile,fallback.percentile=25,fallback.n_warmup_steps=10%,"
        "fallback.n_startup_trials=2"
    )
    fallback = make_pruner(spec, 52)._fallback  # type: ignore[attr-defined]
    assert isinstance(fallback, optuna.pruners.PercentilePruner)
    assert fallback._n_warmup_steps == 5  # round(0.10 * 52), as for a top-level option
    sha = make_pruner("lcpred:fallback=sha", 10)._fallback  # type: ignore[attr-defined]
    assert isinstance(sha, optuna.pruners.SuccessiveHalvingPruner)
