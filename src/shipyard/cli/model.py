"""``shipyard model inspect|describe|predict URI``: look into a model directory, or run it.

Both work on any model URI (a directory from ``save_model``, a bare model file, an MLflow
directory, an fsspec URL) without a server, so a model can be checked before deploying.
"""

from __future__ import annotations

from typing import Any

import typer

from shipyard.cli._shared import (
    OutputFormat,
    OutputOption,
    PredictionsOutputOption,
    print_json,
    print_predictions,
    print_table,
    resolve_uri_secrets,
)
from shipyard.errors import BadRequestError, PredictorError, ShipyardError

__all__ = ["model"]

model = typer.Typer(
    name="model",
    help="Inspect model directories and run them locally, without a server.",
    no_args_is_help=True,
)


def _describe(uri: str) -> dict[str, Any]:
    from shipyard.models import resolve_model_uri
    from shipyard.models._detect import detect_model
    from shipyard.models._uri import uri_stem

    model_dir, manifest = detect_model(resolve_model_uri(uri))
    sig = manifest.signature
    return {
        "name": manifest.name or uri_stem(uri),
        "version": manifest.version,
        "format": manifest.format,
        "path": str(model_dir),
        "model_file": manifest.model_file,
        "serialization": manifest.serialization,
        "predictor": manifest.predictor,
        "method": manifest.method,
        "requirements": manifest.requirements,
        "has_manifest": (model_dir / "shipyard.yaml").is_file(),
        "input_example": manifest.input_example,
        "inputs": [s.model_dump(exclude_none=True) for s in sig.inputs] if sig else [],
        "outputs": [s.model_dump(exclude_none=True) for s in sig.outputs] if sig else [],
    }


@model.command("inspect")
def inspect(
    uri: str = typer.Argument(
        ..., help="Model directory, model file or URL ({{secret.NAME}} for one with credentials)."
    ),
    output: OutputFormat = OutputOption,
) -> None:
    """Show a model's format, files, requirements and signature (nothing is loaded)."""
    _show(_describe(resolve_uri_secrets(uri)), output)


#: Model trust (``shipyard.models.load_model``): the same two options on every command
#: that loads a model in this process.
_TRUST = typer.Option(
    False, "--trust", help="Trust the model's code: load a pickle/joblib model from a remote URI."
)
_SHA256 = typer.Option(
    None, "--sha256", help="SHA-256 of the model's content: checked before loading; trusts it."
)


@model.command("describe")
def describe(
    uri: str = typer.Argument(
        ..., help="Model directory, model file or URL ({{secret.NAME}} for one with credentials)."
    ),
    output: OutputFormat = OutputOption,
    trust: bool = _TRUST,
    sha256: str | None = _SHA256,
) -> None:
    """What ``inspect`` shows, plus how the loaded model predicts (loads it).

    For tree ensembles: the compiled evaluator and its cache, or why the framework's own
    predict is used instead.
    """
    from shipyard.models import load_model

    uri = resolve_uri_secrets(uri)
    info = _describe(uri)
    loaded = load_model(uri, trusted=trust, sha256=sha256)
    note = getattr(loaded.predictor, "engine_note", None)
    info["engine"] = note or f"{type(loaded.predictor).__name__}.predict"
    _show(info, output)


def _show(info: dict[str, Any], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json(info)
        return
    from rich.table import Table

    about = Table(show_header=False, title=f"model {info['name']}")
    for key in ("version", "format", "path", "model_file", "serialization", "predictor"):
        if info[key]:
            about.add_row(key, str(info[key]))
    about.add_row("method", info["method"] or "predict")
    about.add_row("requirements", ", ".join(info["requirements"]) or "-")
    if not info["has_manifest"]:
        about.add_row("manifest", "none (format detected from the files)")
    if "engine" in info:
        about.add_row("predicts with", info["engine"])
    print_table(about)
    if info["inputs"] or info["outputs"]:
        sig = Table("", "name", "datatype", "shape", "columns", title="signature")
        for kind in ("inputs", "outputs"):
            for spec in info[kind]:
                cols = spec.get("columns")
                sig.add_row(
                    kind[:-1],
                    spec["name"],
                    spec["datatype"],
                    str(spec["shape"]),
                    ", ".join(cols) if cols else "",
                )
        print_table(sig)


def _read_inputs(data: str, signature: Any) -> Any:
    """``--data`` as what ``LoadedModel.predict`` takes; rows are checked against the
    signature here, so a wrong width is told in the user's words (rows, columns)."""
    import numpy as np

    from shipyard.cli._data import read_data
    from shipyard.errors import BadRequestError
    from shipyard.models import check_inputs

    payload = read_data(data)
    if isinstance(payload, dict) and "inputs" in payload:  # a V2 request
        payload = {
            str(t["name"]): np.asarray(t["data"]).reshape(t.get("shape") or -1)
            for t in payload["inputs"]
        }
    if isinstance(payload, dict):
        if signature is not None and not (len(payload) == 1 and len(signature.inputs) == 1):
            check_inputs(signature, payload)
        return payload
    if not isinstance(payload, list):
        return payload  # a table: matched to the signature by column name
    rows = np.asarray(payload)
    if signature is not None and len(signature.inputs) == 1:
        spec = signature.inputs[0]
        if rows.ndim == 2 and len(spec.shape) == 2 and spec.shape[1] not in (-1, rows.shape[1]):
            columns = f" ({', '.join(spec.columns)})" if spec.columns else ""
            raise BadRequestError(
                f"Each row has {rows.shape[1]} values; the model takes {spec.shape[1]}"
                f"{columns}. Send rows of {spec.shape[1]} values, or records like "
                "'[{\"column\": value, ...}]'."
            )
        check_inputs(signature, {spec.name: rows})
    return rows


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if type(value).__name__ == "DataFrame":
        return value.to_dict(orient="list")
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@model.command("predict")
def predict(
    uri: str = typer.Argument(
        ..., help="Model directory, model file or URL ({{secret.NAME}} for one with credentials)."
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        help="Rows, records, columns, MLflow dataframe_split/records, a V2 request, "
        "@FILE.json or @FILE.csv.",
    ),
    example: bool = typer.Option(False, "--example", help="Use the model's saved input example."),
    method: str | None = typer.Option(
        None, "--method", help="Estimator method or ONNX output to use (e.g. predict_proba)."
    ),
    trust: bool = _TRUST,
    sha256: str | None = _SHA256,
    output: OutputFormat = PredictionsOutputOption,
) -> None:
    """Load the model in this process and print its prediction as JSON."""
    from shipyard.models import load_model

    if (data is None) == (not example):
        raise BadRequestError("Give exactly one of --data JSON|@FILE and --example.")
    loaded = load_model(resolve_uri_secrets(uri), method=method, trusted=trust, sha256=sha256)
    if example:
        if loaded.input_example is None:
            raise BadRequestError(
                f"The model {loaded.name!r} has no saved input example; pass --data instead."
            )
        inputs = loaded.input_example
    else:
        inputs = _read_inputs(data or "", loaded.signature)
    try:
        predictions = loaded.predict(inputs)
    except ShipyardError:
        raise
    except Exception as err:
        # The predictor's own bug or refusal: its message, not our stack frames.
        raise PredictorError(
            f"The predictor of model {loaded.name!r} raised {type(err).__name__}: {err} "
            "(run with --debug for the traceback)"
        ) from err
    print_predictions({"model": loaded.name, "predictions": _jsonable(predictions)}, output)
