"""save_model called from the script that defines the predictor (the README's example)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

# The README's custom-predictor example as a user writes it in a script: the predictor
# class lives in __main__, so save_model carries the script itself into the model.
SCRIPT_BODY = textwrap.dedent(
    """
    import numpy as np

    import shipyard
    from shipyard.models import Predictor


    class Scaled(Predictor):
        def predict(self, inputs):
            return np.asarray(inputs, dtype=float).sum(axis=1) * 0.5

    """
)
UNGUARDED = SCRIPT_BODY + textwrap.dedent(
    """
    shipyard.save_model(None, "scaled-model", predictor=Scaled,
                        input_example=np.array([[1.0, 2.0], [3.0, 4.0]]))
    print("saved")
    """
)
GUARDED = SCRIPT_BODY + textwrap.dedent(
    """
    if __name__ == "__main__":
        path = shipyard.save_model(None, "scaled-model", predictor=Scaled,
                                   input_example=np.array([[1.0, 2.0], [3.0, 4.0]]))
        print(shipyard.load_model(path).predict(np.array([[2.0, 2.0]])).tolist())
    """
)


def _run_script(source: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = cwd / "scaled.py"
    script.write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_unguarded_save_in_the_predictor_script_fails_once_with_the_fix(tmp_path: Path) -> None:
    proc = _run_script(UNGUARDED, tmp_path)
    assert proc.returncode != 0
    assert "saved" not in proc.stdout
    # One error, raised once: no copies of copies, no "File name too long".
    assert "File name too long" not in proc.stderr
    assert proc.stderr.count("Traceback (most recent call last)") == 1, proc.stderr
    assert proc.stderr.count("SaveDuringImportError:") == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "scaled.py calls save_model when it is imported" in last
    assert 'if __name__ == "__main__":' in last
    assert "own module" in last
    # Nothing half-written is left behind: neither the model nor a staging directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scaled.py"]


def test_guarded_save_in_the_predictor_script_works(tmp_path: Path) -> None:
    proc = _run_script(GUARDED, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[2.0]"
    assert (tmp_path / "scaled-model" / "code" / "scaled.py").is_file()
