"""The user's saved designs: YAML files in the app's data directory (``<data dir>/designs``).

Files, not a database table, so a saved design is what the rest of the project reads (``waooaw validate``,
``engine.model.load``, a git repository), and the engine's database stays about running instances.

Layout and rules:

- ``<name>.yaml`` is the design; ``<name>.scenario.yaml`` beside it is its simulation scenario (optional).
- A design's **name is its process id**: saving rewrites the top-level ``id:`` (and a scenario's ``design:``)
  to the name, so "Deploy" deploys under the name the user sees and a copy never becomes a new version of
  the original. Names match ``[A-Za-z_][A-Za-z0-9_-]{0,63}`` (a valid process id without dots, so a name can
  never collide with a ``.scenario.yaml`` file).
- YAML text is stored as written (comments survive); a :class:`ProcessDefinition` is stored as its YAML.
  Only designs that *load* are stored (validation findings are allowed: a draft may be unfinished).
- Each write is atomic (a temporary file renamed over the old one) and serialised by a lock file, so two app
  sessions never interleave; ``save(..., expected_hash=)`` refuses to overwrite a design someone else saved
  in between (optimistic concurrency, like an ETag).
- ``updated_at`` is the file's modification time (UTC); ``content_hash`` the SHA-256 of its bytes.

Every refusal is a :class:`WorkspaceError` naming the design and what to do; nothing is written then.

Who may write: every write (save, create, save as, rename, delete, a scenario) needs the designer role,
checked by the engine's own rule ``design.save`` (``engine.security``: ``RULES``, the guard, the audit
trail), so the app's buttons are not the only gate. ``Workspace(data_dir, principal, db)``: ``principal``
acts (None: the embedded single-user mode, as ``Engine(url)``), ``db`` is the engine's database whose
``wf_audit`` records each decision (None: checked, not recorded). A refusal is an ``AuthorizationError``
naming the rule; reading needs no role.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine as SAEngine

import designs as library
from engine.errors import DefinitionError, WaooawError
from engine.model import ProcessDefinition, from_yaml, to_yaml
from engine.runtime.clock import Clock, RealClock
from engine.security import Principal, allowed, guard, require

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
_ID_LINE = re.compile(r"(?m)^id:[^\n]*$")
_DESIGN_LINE = re.compile(r"(?m)^design:[^\n]*$")


class WorkspaceError(WaooawError):
    """A workspace action was refused (bad or taken name, unknown design, stale save); nothing was written."""


@dataclass(frozen=True)
class DesignInfo:
    """One saved design as listed: ``name`` (= process id), ``title`` (the definition's name or the id),
    ``updated_at`` (UTC), ``content_hash`` (SHA-256 hex of the YAML file), ``has_scenario``."""

    name: str
    title: str
    updated_at: datetime
    content_hash: str
    has_scenario: bool


@dataclass(frozen=True)
class Deployment:
    """The latest deployed version of a design in the engine's database: ``version``, ``deployed_at`` (UTC) and
    ``content_hash`` (the engine's, ``ProcessDefinition.content_hash`` of the content at version 1)."""

    name: str
    version: int
    deployed_at: datetime
    content_hash: str

    def deploys(self, definition: ProcessDefinition) -> bool:
        """Whether deploying ``definition`` now would add no version (same content as this one, as
        ``Engine.deploy`` compares them)."""
        return definition.model_copy(update={"version": 1}).content_hash() == self.content_hash


def check_name(name: str) -> str:
    """``name`` stripped, or WorkspaceError saying what a name may contain."""
    if not isinstance(name, str) or not NAME_RE.match(name.strip()):
        raise WorkspaceError(
            f"{name!r} is not a usable design name: start with a letter or _, then letters, digits, _ or -, "
            "at most 64 characters (it becomes the process id)")
    return name.strip()


def blank_yaml(name: str, title: str | None = None) -> str:
    """The smallest valid design: a start event flowing to an end event."""
    definition = ProcessDefinition.model_validate({
        "id": name, "name": title or name.replace("_", " ").capitalize(),
        "nodes": [{"id": "start", "kind": "start"}, {"id": "end", "kind": "end"}],
        "flows": [{"id": "start__end", "source": "start", "target": "end"}]})
    return to_yaml(definition)


def _with_id(text: str, name: str) -> str:
    """YAML text whose top-level ``id:`` is ``name`` (the rest kept as written)."""
    if _ID_LINE.search(text):
        return _ID_LINE.sub(f"id: {name}", text, count=1)
    data = from_yaml(text).to_dict()  # flow style or no id line at the margin: re-emit
    data["id"] = name
    return to_yaml(ProcessDefinition.model_validate(data))


def _with_design(text: str, name: str) -> str:
    return _DESIGN_LINE.sub(f"design: {name}", text, count=1) if _DESIGN_LINE.search(text) else text


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Workspace:
    """The saved designs under ``data_dir / "designs"`` (created on first use).

    >>> ws = Workspace(tmp_dir)
    >>> ws.new_from_template("pr_review", "my_review").name
    'my_review'
    >>> ws.load("my_review").id
    'my_review'
    """

    def __init__(self, data_dir: str | Path, principal: Principal | None = None, db: SAEngine | None = None,
                 clock: Clock | None = None) -> None:
        self.root = Path(data_dir) / "designs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.principal = guard.checked_principal(principal)
        self.db = db
        self.clock = clock or RealClock()

    @property
    def may_write(self) -> bool:
        """Whether the principal holds the rule ``design.save`` (the designer role): what a page greys out."""
        return allowed(self.principal, "design.save")

    def _authorize(self, what: str, name: str) -> None:
        """The engine's rule ``design.save`` for ``what`` (save, create, rename, delete, ...) on design ``name``:
        AuthorizationError naming the rule, recorded in ``wf_audit`` when the workspace has a database."""
        target = f"design {name!r}"
        if self.db is None:
            require(self.principal, "design.save", target)
        else:
            guard.authorize(self, "design.save", target, op=what)

    # --- reading -----------------------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.yaml"

    def scenario_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.scenario.yaml"

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.yaml")
                      if not p.name.endswith(".scenario.yaml") and NAME_RE.match(p.stem))

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def list(self) -> list[DesignInfo]:
        """Every saved design, most recently updated first."""
        found = []
        for name in self.names():
            try:
                found.append(self.info(name))
            except WorkspaceError:
                continue  # deleted meanwhile
        return sorted(found, key=lambda d: (d.updated_at, d.name), reverse=True)

    def info(self, name: str) -> DesignInfo:
        file = self._existing(name)
        data = file.read_bytes()
        try:
            title = from_yaml(data.decode("utf-8"), file.name).label
        except (DefinitionError, UnicodeDecodeError):
            title = f"{name} (does not load)"
        return DesignInfo(name=name, title=title, content_hash=_digest(data),
                          updated_at=datetime.fromtimestamp(file.stat().st_mtime, UTC),
                          has_scenario=self.scenario_path(name).exists())

    def text(self, name: str) -> str:
        """The design's YAML as stored."""
        return self._existing(name).read_text(encoding="utf-8")

    def load(self, name: str) -> ProcessDefinition:
        """The saved design; DefinitionError (with lines) if its file was edited into something that does not
        load."""
        return from_yaml(self.text(name), str(self.path(name)))

    def deployed(self, name: str) -> Deployment | None:
        """The latest version of ``name`` deployed to the engine, read from its database each call (None: never
        deployed, or the workspace has no database). Deploying happens elsewhere (the Deployments page, the CLI):
        nothing here is cached, so a page shows the version deployed a moment ago."""
        if self.db is None:
            return None
        from sqlalchemy import inspect, select

        from engine.runtime.tables import DefinitionRow

        table = DefinitionRow.__table__
        if not inspect(self.db).has_table(table.name):  # an engine never opened on this database
            return None
        query = (select(table.c.version, table.c.deployed_at, table.c.content_hash)
                 .where(table.c.name == name).order_by(table.c.version.desc()).limit(1))
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        deployed_at = row.deployed_at if row.deployed_at.tzinfo else row.deployed_at.replace(tzinfo=UTC)
        return Deployment(name, row.version, deployed_at, row.content_hash)

    def scenario_text(self, name: str) -> str | None:
        """The design's scenario YAML, or None when it has none."""
        self._existing(name)
        file = self.scenario_path(name)
        return file.read_text(encoding="utf-8") if file.exists() else None

    # --- writing -----------------------------------------------------------------------------------------

    @guard.audited
    def save(self, name: str, design: ProcessDefinition | str, *, expected_hash: str | None = None) -> DesignInfo:
        """Create or overwrite ``name`` with a definition or YAML text (its id becomes ``name``).

        ``expected_hash``: the ``content_hash`` the caller loaded; if the stored design changed since, refuse
        (WorkspaceError) instead of overwriting someone else's save. DefinitionError if YAML text does not load.
        """
        self._authorize("save", name)
        name = check_name(name)
        text = self._as_text(name, design)
        with self._locked():
            if expected_hash is not None:
                current = self.path(name)
                found = _digest(current.read_bytes()) if current.exists() else None
                if found != expected_hash:
                    raise WorkspaceError(f"design {name!r} was changed or deleted since you opened it: reload it "
                                         "(your edits are still in the editor) and save again")
            self._write(self.path(name), text)
        return self.info(name)

    @guard.audited
    def create(self, name: str, design: ProcessDefinition | str, scenario: str | None = None) -> DesignInfo:
        """A new design ``name``; WorkspaceError if the name is taken."""
        self._authorize("create", name)
        return self._create(name, design, scenario)

    def _create(self, name: str, design: ProcessDefinition | str, scenario: str | None = None) -> DesignInfo:
        name = check_name(name)
        text = self._as_text(name, design)
        with self._locked():
            self._refuse_taken(name)
            self._write(self.path(name), text)
            if scenario is not None:
                self._write(self.scenario_path(name), _with_design(scenario, name))
        return self.info(name)

    def save_as(self, name: str, new_name: str) -> DesignInfo:
        """Copy ``name`` (with its scenario) to the new name ``new_name``; the original stays."""
        return self.create(new_name, self.text(name), self.scenario_text(name))

    @guard.audited
    def rename(self, name: str, new_name: str) -> DesignInfo:
        """Move ``name`` (with its scenario) to ``new_name``; refused if ``new_name`` is taken."""
        self._authorize("rename", f"{name} -> {new_name}")
        name, new_name = check_name(name), check_name(new_name)
        if name == new_name:
            return self.info(name)
        text, scenario = self.text(name), self.scenario_text(name)
        self._create(new_name, text, scenario)
        self._delete(name)
        return self.info(new_name)

    @guard.audited
    def delete(self, name: str) -> None:
        """Remove ``name`` and its scenario (deployed versions in the engine are not touched)."""
        self._authorize("delete", name)
        self._delete(name)

    def _delete(self, name: str) -> None:
        with self._locked():
            file = self._existing(name)
            self.scenario_path(name).unlink(missing_ok=True)
            file.unlink()

    @guard.audited
    def save_scenario(self, name: str, text: str) -> None:
        """Store the scenario YAML of ``name`` as written (its ``design:`` rewritten to ``name``)."""
        self._authorize("save scenario", name)
        with self._locked():
            self._existing(name)
            self._write(self.scenario_path(name), _with_design(text, name))

    def templates(self) -> list[str]:
        """The library designs (``designs/``) a new design can start from."""
        return library.names()

    def new_from_template(self, template: str, name: str) -> DesignInfo:
        """A copy of library design ``template`` (and its scenario) saved as ``name``."""
        if template not in library.names():
            raise WorkspaceError(f"no template {template!r}; choose one of {', '.join(library.names())}")
        scenario = library.scenario_path(template)
        return self.create(name, library.path(template).read_text(encoding="utf-8"),
                           scenario.read_text(encoding="utf-8") if scenario else None)

    def new_blank(self, name: str, title: str | None = None) -> DesignInfo:
        """A new design with a start event and an end event."""
        return self.create(name, blank_yaml(check_name(name), title))

    # --- internals ---------------------------------------------------------------------------------------

    def _existing(self, name: str) -> Path:
        file = self.path(name)
        if not file.exists():
            known = ", ".join(self.names()) or "none yet"
            raise WorkspaceError(f"no saved design named {name!r} (saved: {known})")
        return file

    def _refuse_taken(self, name: str) -> None:
        if self.path(name).exists():
            raise WorkspaceError(f"a design named {name!r} already exists: choose another name or open it")

    def _as_text(self, name: str, design: ProcessDefinition | str) -> str:
        if isinstance(design, ProcessDefinition):
            return to_yaml(design.model_copy(update={"id": name}))
        text = _with_id(design, name)
        from_yaml(text, f"{name}.yaml")  # DefinitionError (with lines) if it does not load: nothing written
        return text

    def _write(self, target: Path, text: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
