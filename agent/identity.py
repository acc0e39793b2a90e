"""Who an agent is: stable per host and data folder, so its own earlier runs (crashed jobs,
a running agent answering on a port) can be told apart from other agents'."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path


def agent_id(data_dir: Path) -> str:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]
    return f"{socket.gethostname()}:{digest}"
