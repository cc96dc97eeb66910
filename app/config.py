"""The app's configuration in one place: where its data lives, which database it opens, which clock it runs on.

Everything comes from environment variables (read once per call of :func:`load`, so tests can set them):

==================  ===========================================================================================
``WAOOAW_DATA_DIR`` The app's data directory: saved designs (``designs/*.yaml`` with their
                    ``*.scenario.yaml``) and the demo database. Default ``$XDG_DATA_HOME/waooaw``, i.e.
                    ``~/.local/share/waooaw``. Created on first use.
``WAOOAW_DB``       The engine's database URL. Default ``sqlite:///<data dir>/waooaw.db``. A
                    ``postgresql+psycopg://…`` URL switches the app to external workers (``waooaw worker``).
``WAOOAW_MODE``     ``demo`` (default): a virtual clock stored in the database with a control on every page,
                    the library's designs deployed and demo people seeded. ``production``: the wall clock,
                    no clock control, nothing seeded.
``WAOOAW_WORKER``   ``embedded`` (default on SQLite: one background thread per app process) or ``external``
                    (default on PostgreSQL: run ``waooaw worker`` processes beside the app).
``PORT``            The port ``make app`` serves on (default 8501): ``make app PORT=8600``.
==================  ===========================================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "WAOOAW_DATA_DIR"
DB_ENV = "WAOOAW_DB"
MODE_ENV = "WAOOAW_MODE"
WORKER_ENV = "WAOOAW_WORKER"
MODES = ("demo", "production")
WORKERS = ("embedded", "external")


class ConfigError(ValueError):
    """An environment variable with a value the app cannot use; the message names the variable."""


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "waooaw"


@dataclass(frozen=True)
class AppConfig:
    data_dir: Path
    db_url: str
    mode: str  # "demo" or "production"
    worker: str  # "embedded" or "external"

    @property
    def demo(self) -> bool:
        """Demo mode: the clock is virtual (stored in the database) and can be moved from the UI."""
        return self.mode == "demo"

    @property
    def designs_dir(self) -> Path:
        return self.data_dir / "designs"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    def describe(self) -> str:
        """One line for a page's caption: where the data is and how the engine runs."""
        clock = "virtual clock (demo)" if self.demo else "wall clock"
        return (f"Data in `{self.data_dir}` ({DATA_DIR_ENV}); engine on `{self.db_url}` ({DB_ENV}); {clock}; "
                f"{self.worker} worker.")


def load(env: Mapping[str, str] | None = None) -> AppConfig:
    """The configuration from ``env`` (default: this process's environment). ConfigError names a bad value."""
    env = os.environ if env is None else env
    data_dir = Path(env.get(DATA_DIR_ENV) or default_data_dir(env)).expanduser()
    db_url = (env.get(DB_ENV) or "").strip() or f"sqlite:///{data_dir / 'waooaw.db'}"
    mode = (env.get(MODE_ENV) or "demo").strip().lower()
    if mode not in MODES:
        raise ConfigError(f"{MODE_ENV}={mode!r}: use one of {', '.join(MODES)}")
    default_worker = "embedded" if db_url.startswith("sqlite") else "external"
    worker = (env.get(WORKER_ENV) or default_worker).strip().lower()
    if worker not in WORKERS:
        raise ConfigError(f"{WORKER_ENV}={worker!r}: use one of {', '.join(WORKERS)}")
    return AppConfig(data_dir=data_dir, db_url=db_url, mode=mode, worker=worker)
