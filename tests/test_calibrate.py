"""`judgeloop calibrate` and `compare` on the demo data, and the calibration API."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import select

from judgeloop.calibration.calibrate import calibrate_judge
from judgeloop.calibration.compare import compare_judges
from judgeloop.calibration.report import calibration_html
from judgeloop.judges.derive import DeriveOptions, derive_spec
from judgeloop.models import Calibration
from judgeloop.store import db_session
from tests.conftest import auth


def _derive(engine: Engine, criterion: str, **kwargs: object):  # type: ignore[no-untyped-def]
    options = DeriveOptions(criterion=criterion, name=f"{criterion}-v1", **kwargs)  # type: ignore[arg-type]
    return derive_spec(engine, options, actor="test").spec


def test_calibrate_fits_a_threshold_that_holds_on_test(demo_engine: Engine) -> None:
    spec = _derive(demo_engine, "resolved")
    result = calibrate_judge(demo_engine, spec, alpha=0.1, delta=0.1, actor="test", n_resamples=300)
    assert result.n_calibration > 100 and result.n_test > 100
    threshold = result.threshold
    assert threshold.lambda_ is not None and 0 < threshold.lambda_ <= 1
    assert 0 < result.test.coverage < 1
    assert result.test.agreement_auto is not None
    # the auto-decided sessions agree more than the judge does overall
    assert result.test.agreement_auto >= (result.test.agreement_all or 0)
    report = result.agreement
    assert report is not None and report.n == result.n_test
    assert report.agreement.low <= report.agreement.estimate <= report.agreement.high
    assert result.ceiling is not None and result.ceiling.leave_one_out_judge is not None
    html = calibration_html(result)
    assert html.count("<svg") == 3 and "<script" not in html
    with db_session(demo_engine) as db:
        stored = db.exec(select(Calibration)).one()
    assert stored.judge_version_id == spec.version and stored.threshold == threshold.lambda_
    assert stored.metrics["test"]["coverage"] == pytest.approx(result.test.coverage)
    assert stored.calibrator["method"] == "isotonic" or stored.calibrator


def test_compare_sees_a_worse_judge(demo_engine: Engine) -> None:
    good = _derive(demo_engine, "safety")
    from judgeloop.calibration.calibrate import partition_ids
    from judgeloop.judges.runner import score

    weak = good.model_copy(
        update={
            "name": "safety-weak",
            "classifier": good.classifier.model_copy(  # type: ignore[union-attr]
                update={"training": good.classifier.training[:12], "c": 0.01}  # type: ignore[union-attr]
            ),
        }
    )
    for spec in (good, weak):
        score(demo_engine, spec, partition_ids(demo_engine, spec, "test"), actor="t")
    comparison = compare_judges(demo_engine, good, weak)
    assert comparison.n > 100
    same = compare_judges(demo_engine, good, good)
    assert same.agreement_difference.estimate == 0 and same.mcnemar.p_value == 1.0
    assert comparison.first.agreement.estimate >= comparison.second.agreement.estimate
    assert same.verdict.startswith("verdict: no clear difference")


def test_compare_api(demo_engine: Engine, api: httpx.Client, keys: dict[str, str]) -> None:
    from judgeloop.calibration.calibrate import partition_ids
    from judgeloop.judges.runner import score

    good = _derive(demo_engine, "safety")
    weak = good.model_copy(
        update={
            "name": "safety-weak",
            "classifier": good.classifier.model_copy(  # type: ignore[union-attr]
                update={"training": good.classifier.training[:12], "c": 0.01}  # type: ignore[union-attr]
            ),
        }
    )
    engineer = auth(keys["engineer"])
    params = {"first": good.version, "second": weak.version}
    score(demo_engine, good, partition_ids(demo_engine, good, "test"), actor="t")
    # the weak version is not stored yet: 404 naming it
    missing = api.get("/v1/judges/compare", params=params, headers=engineer)
    assert missing.status_code == 404 and weak.version in missing.text
    score(demo_engine, weak, partition_ids(demo_engine, weak, "test"), actor="t")
    response = api.get("/v1/judges/compare", params=params, headers=engineer)
    assert response.status_code == 200, response.text
    body = response.json()
    expected = compare_judges(demo_engine, good, weak)
    assert body["n"] == expected.n and body["verdict"] == expected.verdict
    assert body["mcnemar"]["p_value"] == expected.mcnemar.p_value
    assert body["second"]["judge"] == "safety-weak"
    assert (
        api.get("/v1/judges/compare", params=params, headers=auth(keys["pipeline"])).status_code
        == 403
    )
    nothing = api.get(
        "/v1/judges/compare", params={**params, "partition": "calibration"}, headers=engineer
    )
    assert nothing.status_code == 422 and "judged by both" in nothing.text


def test_calibration_api(
    demo_engine: Engine,
    api: httpx.Client,
    keys: dict[str, str],
) -> None:
    spec = _derive(demo_engine, "tone")
    calibrate_judge(demo_engine, spec, alpha=0.2, delta=0.1, actor="t", n_resamples=200)
    path = f"/v1/judges/{spec.name}/versions/{spec.version}/calibration"
    response = api.get(path, headers=auth(keys["engineer"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["judge_version_id"] == spec.version and body["alpha"] == 0.2
    assert body["metrics"]["agreement"]["kappa_weighting"] == "quadratic"
    assert api.get(path, headers=auth(keys["pipeline"])).status_code == 403
    missing = api.get(
        f"/v1/judges/{spec.name}/versions/nope/calibration", headers=auth(keys["engineer"])
    )
    assert missing.status_code == 404
    listed = api.get("/v1/judges", headers=auth(keys["engineer"])).json()
    assert spec.version in {item["id"] for item in listed["data"]}
