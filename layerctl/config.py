"""Option defaults from ``LAYERCTL_*`` environment variables and a ``layerctl.toml`` file.

Precedence, highest first: a flag on the command line, an environment variable, the
config file, the built-in default. Click already ranks them so: each option reads its
``LAYERCTL_<NAME>`` (``add_envvars``, which help then shows), and file values become the
app's ``default_map``; every option of every command is configurable that way, with no
per-option code. A value for an option the chosen backend does not take is ignored
(layerctl/commands/decompose.py); the same flag on the command line is a usage error.

Names: an option ``--max-layers`` is ``max_layers`` (or ``max-layers``) in the file and
``LAYERCTL_MAX_LAYERS`` in the environment. A top-level key or variable applies to every
command that has the option; a ``[decompose]`` table applies to one command only::

    # ./layerctl.toml, else $XDG_CONFIG_HOME/layerctl/layerctl.toml (or LAYERCTL_CONFIG=path)
    backend = "classic"
    seed = 7
    [decompose]
    format = "ora"
    max_layers = 6
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from layerctl.errors import UsageError

ENV_PREFIX = "LAYERCTL_"
CONFIG_ENV = "LAYERCTL_CONFIG"
FILE_NAME = "layerctl.toml"


def config_path() -> Path | None:
    """The config file in use: $LAYERCTL_CONFIG, ./layerctl.toml, then the XDG one."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise UsageError(f"{CONFIG_ENV}={explicit}: no such file", hint=f"unset {CONFIG_ENV}")
        return path
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    for path in (Path.cwd() / FILE_NAME, Path(xdg) / "layerctl" / FILE_NAME):
        if path.is_file():
            return path
    return None


def add_envvars(group: Any) -> None:
    """Let every option of every command read ``LAYERCTL_<LONG_NAME>``."""
    for command in group.commands.values():
        if hasattr(command, "commands"):
            add_envvars(command)
            continue
        for param in command.params:
            longs = [opt for opt in getattr(param, "opts", ()) if opt.startswith("--")]
            if param.param_type_name == "option" and longs and param.name != "help":
                param.envvar = ENV_PREFIX + _key(longs[0][2:]).upper()
                param.show_envvar = True


def default_map(group: Any) -> dict[str, dict[str, Any]]:
    """``{command: {parameter: value}}`` for the app's click ``group``, from the file."""
    options = {name: _option_keys(cmd) for name, cmd in group.commands.items()}
    merged: dict[str, dict[str, Any]] = {name: {} for name in options}
    path = config_path()
    if path is not None:
        _apply(merged, options, _file_settings(path, options))
    for name, cmd in group.commands.items():  # a repeatable option (--lora) takes a list
        for param in getattr(cmd, "params", ()):
            value = merged[name].get(param.name)
            if getattr(param, "multiple", False) and isinstance(value, str):
                merged[name][param.name] = value.split(",")
    return {name: values for name, values in merged.items() if values}


def _option_keys(command: Any) -> dict[str, str]:
    """Config key (long option name, snake case) -> click parameter name."""
    keys = {}
    for param in command.params:
        if param.param_type_name == "option" and param.name and param.name != "help":
            for opt in param.opts:
                if opt.startswith("--"):
                    keys[_key(opt[2:])] = param.name
    return keys


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _file_settings(path: Path, options: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """{"": top-level keys, command: its table} from a TOML file; unknown keys are errors."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not a readable TOML file ({exc})") from None
    settings: dict[str, dict[str, Any]] = {"": {}}
    known = {key for keys in options.values() for key in keys}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in options:
                raise UsageError(f"{path}: [{key}] is not a layerctl command")
            table = {_key(k): _scalar(v) for k, v in value.items()}
            unknown = sorted(set(table) - set(options[key]))
            if unknown:
                raise UsageError(
                    f"{path}: `layerctl {key}` has no option {unknown[0]!r}",
                    hint=f"it has: {', '.join(sorted(options[key]))}",
                )
            settings[key] = table
        elif _key(key) in known:
            settings[""][_key(key)] = _scalar(value)
        else:
            raise UsageError(f"{path}: unknown setting {key!r}", hint="see `layerctl CMD --help`")
    return settings


def _scalar(value: Any) -> Any:
    """A TOML array is the comma-separated list the flag takes: ``split_layers = [1, 3]``
    is ``--split-layers 1,3``; a repeatable option gets it back as a list
    (``lora = ["a.safetensors:0.5", "b.safetensors"]`` is ``--lora … --lora …``)."""
    return ",".join(str(v) for v in value) if isinstance(value, list) else value


def _apply(
    merged: dict[str, dict[str, Any]],
    options: dict[str, dict[str, str]],
    settings: dict[str, dict[str, Any]],
) -> None:
    """Layer ``settings`` over ``merged``: top-level keys first, then per-command tables."""
    for command, keys in options.items():
        for scope in ("", command):
            for key, value in settings.get(scope, {}).items():
                if key in keys:
                    merged[command][keys[key]] = value
