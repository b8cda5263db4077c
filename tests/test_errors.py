"""The error hierarchy: one root, HTTP status on the class, messages that say the fix."""

from __future__ import annotations

import pytest

from shipyard import errors


def test_every_public_error_derives_from_the_root() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.ShipyardError), name


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (errors.InvalidInputError, 400),
        (errors.UnsupportedMediaTypeError, 415),
        (errors.PayloadTooLargeError, 413),
        (errors.ModelNotFoundError, 404),
        (errors.ServiceNotFoundError, 404),
        (errors.ModelNotReadyError, 503),
        (errors.PredictorError, 500),
    ],
)
def test_status_codes(cls: type[errors.ShipyardError], status: int) -> None:
    assert cls("x").status_code == status


def test_missing_dependency_names_the_extra() -> None:
    err = errors.MissingDependencyError("xgboost", "xgboost", "XGBoost models")
    assert "pip install 'shipyard[xgboost]'" in str(err)
    assert "XGBoost models" in str(err)
