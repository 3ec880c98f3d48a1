"""The adapter leaves the platform to JAX, as its docstring says, and sets the compilation cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import REPO

PROBE = """
import json, os, sys
from pathlib import Path
from autocurriculum.tunix_adapter import configure_jax  # imports jax, as the daemon does
import jax
configure_jax(Path(sys.argv[1]))
print(json.dumps({"env": os.environ.get("JAX_PLATFORMS"), "config": jax.config.jax_platforms,
                  "cache": jax.config.jax_compilation_cache_dir, "backend": jax.default_backend()}))
"""


def probe(tmp_path: Path, **environ: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"} | environ
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "cache")], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=300, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_configure_jax_neither_sets_nor_forces_a_platform(tmp_path: Path) -> None:
    chosen = probe(tmp_path)
    assert chosen["env"] is None and not chosen["config"]  # nothing written where JAX (or a child) would read it
    assert chosen["cache"] == str(tmp_path / "cache") and (tmp_path / "cache").is_dir()


def test_the_users_jax_platforms_is_what_jax_uses(tmp_path: Path) -> None:
    chosen = probe(tmp_path, JAX_PLATFORMS="cpu")
    assert chosen["config"] == "cpu" and chosen["backend"] == "cpu"
