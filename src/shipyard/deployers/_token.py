"""A server's bearer token, from the control plane's side: the file that keeps it, and
the header a client sends with it (``Service.request_headers``)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["bearer_headers", "ensure_token_file"]


def ensure_token_file(path: Path) -> str:
    """The token in ``path``, a new one (0600 from its first byte) if the file is missing
    or empty: kept across restarts and redeploys, so a client's copy stays valid."""
    from shipyard.serving.auth import read_token_file, write_token_file

    if not path.is_file() or not path.read_text().strip():
        return write_token_file(path)
    return read_token_file(path)


def bearer_headers(token_file: str) -> dict[str, str]:
    """The ``authorization`` header for the token in ``token_file`` ('': no header)."""
    if not token_file:
        return {}
    from shipyard.serving.auth import read_token_file

    return {"authorization": f"Bearer {read_token_file(token_file)}"}
