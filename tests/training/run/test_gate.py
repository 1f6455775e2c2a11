"""The publish gate on diagnostics: the converged verdict, refusing runs that did not move."""

from __future__ import annotations

import pytest

from training.config import ConfigError
from training.run.gate import (
    PUBLISH_REFUSED_EXIT_CODE,
    PublishRefused,
    Thresholds,
    assess,
    check_publishable,
    stuck_reasons,
)


def diagnostics(**changes):
    d = {
        "mean_acceptance": 0.8,
        "final_step_size": 0.02,
        "moves_per_chain": [150, 160, 155, 149],
        "sampling_transitions": 200,
        "non_finite_draws": 0,
        "log_likelihood": {"rhat": 1.01, "ess_bulk": 450.0},
        "pair_logits": {"rhat_median": 1.005, "rhat_max": 1.04},
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            d[section] = {**d[section], field: value}
        else:
            d[section] = value
    return d


def test_a_run_meeting_every_threshold_is_converged():
    verdict = assess(diagnostics(), Thresholds())
    assert verdict["converged"] is True and verdict["failures"] == []
    assert verdict["thresholds"] == {
        "loglik_rhat": 1.05,
        "pair_rhat_median": 1.02,
        "pair_rhat_max": 1.10,
        "loglik_ess_bulk": 200.0,
    }
    assert verdict["figures"] == {
        "loglik_rhat": 1.01,
        "pair_rhat_median": 1.005,
        "pair_rhat_max": 1.04,
        "loglik_ess_bulk": 450.0,
    }


@pytest.mark.parametrize(
    ("change", "failure"),
    [
        ({"log_likelihood__rhat": 1.06}, "log-likelihood split R-hat 1.06 > 1.05"),
        ({"pair_logits__rhat_median": 1.03}, "median pair-logit split R-hat 1.03 > 1.02"),
        ({"pair_logits__rhat_max": 3.2}, "maximum pair-logit split R-hat 3.2 > 1.1"),
        ({"log_likelihood__ess_bulk": 16.3}, "log-likelihood bulk ESS 16.3 < 200"),
        ({"log_likelihood__rhat": None}, "log-likelihood split R-hat is undefined"),
        ({"pair_logits": {}}, "median pair-logit split R-hat is undefined"),
    ],
)
def test_each_missed_threshold_is_named(change, failure):
    verdict = assess(diagnostics(**change), Thresholds())
    assert verdict["converged"] is False
    assert any(f.startswith(failure) for f in verdict["failures"]), verdict["failures"]


def test_thresholds_are_configurable():
    relaxed = Thresholds(loglik_rhat=1.1, loglik_ess_bulk=10)
    verdict = assess(diagnostics(log_likelihood__rhat=1.08, log_likelihood__ess_bulk=20), relaxed)
    assert verdict["converged"] is True and verdict["thresholds"]["loglik_ess_bulk"] == 10


@pytest.mark.parametrize(
    ("change", "flag"),
    [
        ({"loglik_rhat": float("nan")}, "--gate-loglik-rhat"),
        ({"pair_rhat_max": float("inf")}, "--gate-pair-rhat-max"),
        ({"pair_rhat_median": 0.99}, "--gate-pair-rhat-median"),
        ({"loglik_ess_bulk": -1.0}, "--gate-loglik-ess-bulk"),
    ],
)
def test_bad_thresholds_are_refused(change, flag):
    with pytest.raises(ConfigError, match=flag):
        Thresholds(**change).validate()


def test_a_run_that_moved_is_publishable():
    assert stuck_reasons(diagnostics()) == []
    assert check_publishable(diagnostics(), force=False) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"mean_acceptance": 0.01}, "mean acceptance over sampling is 0.01 < 0.05"),
        ({"mean_acceptance": None}, "mean acceptance over sampling could not be computed"),
        ({"moves_per_chain": [150, 0, 155, 0]}, "chains 1, 3 accepted none of 200 proposals"),
        ({"moves_per_chain": [0, 3, 4, 5]}, "chain 0 accepted none of 200 proposals"),
        ({"non_finite_draws": 12}, "12 drawn values are NaN or infinite"),
    ],
)
def test_a_run_that_did_not_move_is_refused_unless_forced(change, reason):
    d = diagnostics(**change)
    with pytest.raises(PublishRefused) as refused:
        check_publishable(d, force=False)
    message = str(refused.value)
    assert reason in message
    assert "--step-size" in message and "--force-publish" in message  # what to change
    assert any(reason in r for r in check_publishable(d, force=True))


def test_the_refusal_exit_code_is_distinct():
    assert PUBLISH_REFUSED_EXIT_CODE not in (0, 1, 2, 3)


class _Stuck:
    """What `train` returns on process 0 for a run whose chains never moved."""

    diagnostics = diagnostics(mean_acceptance=0.0, moves_per_chain=[0, 0])


@pytest.mark.parametrize("primary", [True, False])
def test_every_process_of_a_refused_multi_process_run_fails(monkeypatch, tmp_path, primary):
    """Process 0 refuses; the others learn it from the broadcast instead of a version id."""
    import training.run.fit
    from training.cli.gate_flags import thresholds_from_args
    from training.cli.main import build_parser
    from training.cli.train import config_from_args, settings_from_args

    sent: list[str | None] = []

    def broadcast_text(text):  # process 0's text reaches every process
        sent.append(text)
        return text if primary else "!refused"

    fit = training.run.fit
    monkeypatch.setattr(fit, "train", lambda *a, **k: _Stuck() if primary else None)
    monkeypatch.setattr(fit, "broadcast_text", broadcast_text)
    monkeypatch.setattr(fit, "is_primary", lambda: primary)
    args = build_parser().parse_args(["train", "--preset", "smoke", "--store", str(tmp_path)])
    with pytest.raises(PublishRefused) as refused:
        fit.fit_and_publish(
            settings_from_args(args),
            config_from_args(args),
            data=None,  # type: ignore[arg-type]
            thresholds=thresholds_from_args(args),
        )
    if primary:
        assert sent == ["!refused"] and "chains 0, 1 accepted none" in str(refused.value)
    else:
        assert sent == [None] and "process 0 refused to publish" in str(refused.value)
    assert not (tmp_path / "versions").exists()
