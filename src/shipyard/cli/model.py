"""``shipyard model inspect|predict URI``: look into a model directory, or run it here.

Both work on any model URI (a directory from ``save_model``, a bare model file, an MLflow
directory, an fsspec URL) without a server, so a model can be checked before deploying.
"""

from __future__ import annotations

from typing import Any

import typer

from shipyard.cli._shared import (
    OutputFormat,
    OutputOption,
    print_json,
    print_table,
    read_json_argument,
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
    uri: str = typer.Argument(..., help="Model directory, model file or URL."),
    output: OutputFormat = OutputOption,
) -> None:
    """Show a model's format, files, requirements and signature (nothing is loaded)."""
    info = _describe(uri)
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


def _read_inputs(data: str) -> Any:
    import numpy as np

    payload = read_json_argument(
        data,
        "input data",
        "rows like '[[1, 2, 3]]', named inputs like '{\"a\": [1, 2], \"b\": [3, 4]}'",
    )
    if isinstance(payload, dict):
        return {str(k): np.asarray(v) for k, v in payload.items()}
    return np.asarray(payload)


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
    uri: str = typer.Argument(..., help="Model directory, model file or URL."),
    data: str | None = typer.Option(
        None, "--data", "-d", help="JSON rows, or named inputs as a JSON object, or @FILE."
    ),
    example: bool = typer.Option(False, "--example", help="Use the model's saved input example."),
    method: str | None = typer.Option(
        None, "--method", help="Estimator method or ONNX output to use (e.g. predict_proba)."
    ),
) -> None:
    """Load the model in this process and print its prediction as JSON."""
    from shipyard.models import check_inputs, load_model

    if (data is None) == (not example):
        raise BadRequestError("Give exactly one of --data JSON|@FILE and --example.")
    loaded = load_model(uri, method=method)
    if example:
        if loaded.input_example is None:
            raise BadRequestError(
                f"The model {loaded.name!r} has no saved input example; pass --data instead."
            )
        inputs = loaded.input_example
    else:
        inputs = _read_inputs(data or "")
        sig = loaded.signature
        if sig is not None:
            named = inputs if isinstance(inputs, dict) else {sig.inputs[0].name: inputs}
            if len(sig.inputs) == 1 or isinstance(inputs, dict):
                check_inputs(sig, named)
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
    print_json({"model": loaded.name, "predictions": _jsonable(predictions)})
