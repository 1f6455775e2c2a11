"""Serving by convergence: the serve policy, and the warning on every answer about a version
that did not converge (or was published before convergence was recorded)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from storage.convergence import read_convergence, select_version
from storage.errors import StoreError
from storage.posterior import list_versions, open_posterior, publish_posterior
from tests.helpers.app_helpers import app_settings, publish_checked, random_samples, tiny_data

TOKEN = "gate-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DATA = tiny_data(num_users=20, num_movies=16)
USER = int(DATA.user_ids[0])


def client_for(store, **settings) -> TestClient:
    return TestClient(
        create_app(app_settings(store, poll_interval_s=0, api_token=TOKEN, **settings))
    )


def answers(client: TestClient) -> dict[str, dict]:
    """The convergence part of /recommend, /readyz and /model, and the served versions."""
    recommend = client.get(f"/recommend/{USER}", params={"k": 3}).json()
    ready = client.get("/readyz").json()
    model = client.get("/model").json()
    assert recommend["model_version"] == ready["model_version"] == model["model_version"]
    return {
        "version": recommend["model_version"],
        "recommend": recommend["convergence"],
        "readyz": ready["convergence"],
        "model": model["convergence"],
    }


def test_latest_converged_serves_the_older_converged_version(tmp_path):
    converged = publish_checked(tmp_path, DATA, converged=True, seed=1)
    newer = publish_checked(tmp_path, DATA, converged=False, seed=2)
    with client_for(tmp_path) as client:  # the default policy
        a = answers(client)
        assert a["version"] == converged
        assert (
            a["recommend"]
            == a["readyz"]
            == {
                "status": "converged",
                "converged": True,
                "warning": None,
            }
        )
        assert a["model"]["policy"] == "latest-converged" and a["model"]["fallback"] is False
        assert a["model"]["passed_over"] == [newer]
        assert a["model"]["figures"]["loglik_rhat"] == 1.01
        assert a["model"]["thresholds"]["loglik_ess_bulk"] == 200.0


def test_an_unconverged_version_carries_its_warning_everywhere(tmp_path):
    publish_checked(tmp_path, DATA, converged=True, seed=1)
    newer = publish_checked(tmp_path, DATA, converged=False, seed=2)
    with client_for(tmp_path, serve_policy="latest") as client:
        a = answers(client)
        assert a["version"] == newer
        for where in ("recommend", "readyz", "model"):
            note = a[where]
            assert note["status"] == "unconverged" and note["converged"] is False, where
            assert note["warning"].startswith(f"unconverged posterior: version {newer}")
            assert "log-likelihood split R-hat 1.21 > 1.05" in note["warning"]
        assert a["model"]["failures"] == ["log-likelihood split R-hat 1.21 > 1.05"]
        assert a["model"]["fallback"] is False  # policy latest: no fallback involved
        genre = client.get(f"/recommend/{USER}", params={"genre": DATA.first_genre[0]}).json()
        assert genre["convergence"]["status"] == "unconverged"  # the filtered path too


def test_latest_converged_falls_back_to_the_newest_with_a_warning(tmp_path):
    publish_checked(tmp_path, DATA, converged=False, seed=1)
    newest = publish_checked(tmp_path, DATA, converged=False, seed=2)
    with client_for(tmp_path) as client:
        a = answers(client)
        assert a["version"] == newest
        assert a["model"]["fallback"] is True and a["model"]["passed_over"] == []
        for where in ("recommend", "readyz", "model"):
            warning = a[where]["warning"]
            assert warning.startswith("unconverged posterior"), where
            assert "no version in the store passed the convergence check" in warning


def test_a_version_without_a_record_is_served_as_convergence_not_recorded(tmp_path):
    old = publish_checked(tmp_path, DATA, converged=None)  # as before convergence existed
    with open_posterior(tmp_path, old) as posterior:
        assert "convergence" not in posterior.manifest
    with client_for(tmp_path) as client:
        a = answers(client)
        assert a["version"] == old
        for where in ("recommend", "readyz", "model"):
            note = a[where]
            assert note["status"] == "not_recorded" and note["converged"] is None, where
            assert note["warning"].startswith("convergence not recorded")
        assert a["model"]["fallback"] is True  # nothing in the store is known to converge
    assert [v.converged for v in list_versions(tmp_path)] == [None]


def test_hot_swap_honours_the_policy(tmp_path):
    first = publish_checked(tmp_path, DATA, converged=True, seed=1)
    with client_for(tmp_path) as client:
        assert answers(client)["version"] == first
        unconverged = publish_checked(tmp_path, DATA, converged=False, seed=2)
        reload = client.post("/admin/reload", headers=AUTH).json()
        assert reload == {"model_version": first, "changed": False, "error": None}
        assert client.get("/model").json()["convergence"]["passed_over"] == [unconverged]
        second = publish_checked(tmp_path, DATA, converged=True, seed=3)
        reload = client.post("/admin/reload", headers=AUTH).json()
        assert reload == {"model_version": second, "changed": True, "error": None}
        assert answers(client)["recommend"]["warning"] is None


def test_the_poller_honours_the_policy(tmp_path):
    import time

    first = publish_checked(tmp_path, DATA, converged=True, seed=1)
    settings = app_settings(tmp_path, poll_interval_s=0.05, api_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        publish_checked(tmp_path, DATA, converged=False, seed=2)
        time.sleep(0.5)  # many polls: none may swap in the unconverged version
        assert client.get("/readyz").json()["model_version"] == first
        second = publish_checked(tmp_path, DATA, converged=True, seed=3)
        deadline = time.monotonic() + 20
        while client.get("/readyz").json()["model_version"] != second:
            assert time.monotonic() < deadline, "the poller did not swap in the converged one"
            time.sleep(0.02)


def test_select_version(tmp_path):
    assert select_version(tmp_path, "latest-converged").version is None  # empty store
    a = publish_checked(tmp_path, DATA, converged=None, seed=1)
    b = publish_checked(tmp_path, DATA, converged=True, seed=2)
    c = publish_checked(tmp_path, DATA, converged=False, seed=3)
    assert select_version(tmp_path, "latest")[:3] == (c, "latest", False)
    picked = select_version(tmp_path, "latest-converged")
    assert (picked.version, picked.fallback, picked.passed_over) == (b, False, [c])
    assert picked.warning is None and a != b
    other = tmp_path / "other"
    broken = publish_checked(other, DATA, converged=True, seed=4)
    (other / "versions" / broken / "manifest.json").unlink()  # unreadable: skipped
    picked = select_version(other, "latest-converged")
    assert (picked.version, picked.fallback) == (broken, True)  # `latest`, with a warning
    assert picked.warning and "no version in the store passed" in picked.warning
    with pytest.raises(ValueError, match="unknown serve policy"):
        select_version(tmp_path, "newest")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ({"converged": "yes"}, "'converged' is not true or false"),
        ({"converged": True, "failures": "none"}, "'failures' is not a list of strings"),
        ({"converged": True, "figures": [1.0]}, "'figures' is not a JSON object"),
        ([True], "it is not a JSON object"),
    ],
)
def test_publish_refuses_a_malformed_record(tmp_path, record, why):
    with pytest.raises(StoreError, match=why):
        publish_posterior(
            tmp_path,
            samples=random_samples(DATA),
            data=DATA,
            config={},
            convergence=record,
        )
    assert list_versions(tmp_path) == []


def test_a_malformed_record_in_an_old_manifest_reads_as_not_recorded():
    record = read_convergence({"version": "v", "convergence": {"converged": 1}})
    assert record.status == "not_recorded" and record.converged is None
    assert record.failures == ["malformed record: its 'converged' is not true or false"]
    assert record.warning and record.warning.startswith("convergence not recorded")
