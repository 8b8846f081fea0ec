"""Reading the agent's TOML files (agent config, register maps, scenarios) with one error shape."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from device_agents.errors import AgentError

Model = TypeVar("Model", bound=BaseModel)


def load_model(path: Path, model: type[Model], what: str,
               error: type[AgentError] = AgentError) -> Model:
    """Parse `path` as TOML and validate it as `model`; every problem becomes one `error`."""
    try:
        document: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path} is not UTF-8 text (byte {exc.start})") from exc
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
                             for e in exc.errors())
        raise error(f"{path}: {problems}") from exc
