"""Running the real `aedfleet` executable as a subprocess, as a user does."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AEDFLEET = Path(sys.executable).with_name("aedfleet")


@dataclass
class Cli:
    """Runs `aedfleet ARGS...` in `cwd` with exactly the environment given."""

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(AEDFLEET), *args], cwd=self.cwd, env={**self.env, **(env or {})},
                              capture_output=True, text=True, encoding="utf-8", timeout=timeout,
                              check=False)

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run and insist on exit status 0."""
        result = self(*args)
        assert result.returncode == 0, f"aedfleet {' '.join(args)} failed:\n{result.stderr}"
        return result

    def json(self, *args: str) -> Any:
        """Run with `--json` and parse stdout as one JSON document."""
        return json.loads(self.ok(*args, "--json").stdout)
