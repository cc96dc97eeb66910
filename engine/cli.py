"""The ``waooaw`` command: validate, render, list and show designs, start the app, run an engine; other parts
add their commands.

A design argument is a file (.yaml/.yml, .json, .bpmn) or the name of a design in ``designs/``. Problems are
printed one per line as ``file: node-id: message`` (``file:LINE: ...`` when the line is known), which editors
and CI logs can jump to; bad input never ends in a traceback: every command runs under one handler
(:class:`CleanErrors`) that turns the project's errors into one line on standard error and an exit code.

Exit codes (docs/cli.md):

====  ==========================================================================================
0     done
1     the input has problems: a design or scenario that is missing, does not load or validate; a refused import
2     usage: unknown command or option, a bad option value, a file that cannot be read or written
3     refused by the engine: no such instance, task or definition, a task that is not yours, form values
      that do not fit, no instance waiting for a message; nothing was written
4     the database cannot be reached or opened (``--db`` / ``WAOOAW_DB``)
130   interrupted (Ctrl-C)
====  ==========================================================================================
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from engine.errors import DefinitionError, EngineError, Problem, WaooawError
from engine.model.definition import ProcessDefinition

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_REFUSED, EXIT_DATABASE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_CODES = [  # (code, meaning): docs/cli.md is generated from this list
    (EXIT_OK, "done"),
    (EXIT_INPUT, "the input has problems: a design or scenario that is missing, does not load or validate; "
                 "a refused BPMN import"),
    (EXIT_USAGE, "usage: unknown command or option, a bad option value, a file that cannot be read or written"),
    (EXIT_REFUSED, "refused by the engine: no such instance, task or definition, a task that is not yours, form "
                   "values that do not fit, no instance waiting for a message; nothing was written"),
    (EXIT_DATABASE, "the database cannot be reached or opened (--db / WAOOAW_DB)"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
]


def exit_code_of(exc: BaseException) -> int | None:
    """The documented exit code for an error a user can cause; None for anything else (a bug: traceback)."""
    from engine.errors import DatabaseUnavailable

    if isinstance(exc, DatabaseUnavailable):
        return EXIT_DATABASE
    if isinstance(exc, EngineError):
        return EXIT_REFUSED
    if isinstance(exc, WaooawError):
        return EXIT_INPUT
    if isinstance(exc, OSError):
        return EXIT_USAGE
    try:
        from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        return None
    if isinstance(exc, OperationalError | ArgumentError | NoSuchModuleError | DBAPIError):
        return EXIT_DATABASE
    return None


def error_line(exc: BaseException) -> str:
    """One line (or one line per problem) saying what is wrong, without a traceback."""
    if isinstance(exc, OSError) and exc.filename:
        return f"error: cannot use {exc.filename}: {exc.strerror or exc}"
    try:
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError, StatementError

        if isinstance(exc, ArgumentError | NoSuchModuleError):
            return (f"error: database URL not understood ({str(exc).splitlines()[0]}); "
                    "use sqlite:///file.db or postgresql://user@host/db")
        if isinstance(exc, StatementError):
            return f"error: database: {str(exc.orig or exc).splitlines()[0]}"
    except ImportError:  # pragma: no cover
        pass
    text = str(exc).strip() or type(exc).__name__
    return "\n".join(line if line.startswith("error") else f"error: {line}" for line in text.splitlines())


class CleanErrors(TyperGroup):
    """The top-level handler: the project's errors, unreadable files and database failures become one clean
    line on stderr and a documented exit code (module docstring); Ctrl-C exits 130 without a traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:  # typer's own exits and usage errors are no project error: re-raised as they are
            code = exit_code_of(exc) if not isinstance(exc, typer.Exit | typer.Abort) else None
            if code is None:
                raise
            typer.echo(error_line(exc), err=True)
            raise typer.Exit(code) from None


app = typer.Typer(
    name="waooaw",
    cls=CleanErrors,
    help="Design, validate, render, simulate and run workflows of agents and people.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 done, 1 input problems, 2 usage, 3 refused by the engine, 4 database unreachable. "
           "Docs: docs/cli.md",
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("waooaw")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
            number = "unknown"
        typer.echo(f"waooaw {number}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Design, validate, render, simulate and run workflows of agents and people."""


DESIGN_SUFFIXES = (".yaml", ".yml", ".json", ".bpmn", ".bpmn2", ".xml")


def resolve(arg: str) -> tuple[ProcessDefinition, str]:
    """Load a design file or a design by name; returns the definition and the file to name in messages."""
    from engine.model import load

    path = Path(arg)
    if path.exists() or path.suffix.lower() in DESIGN_SUFFIXES or "/" in arg:
        return load(path), arg
    import designs

    try:
        file = designs.path(arg)
    except FileNotFoundError:
        raise DefinitionError(f"{arg!r} is neither a file nor a design name (designs: {', '.join(designs.names())})",
                              arg) from None
    return load(file), _shown(file)


def _shown(path: Path) -> str:
    """A path as short as possible: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def format_problem(file: str, problem: Problem) -> str:
    """``file: where: message``, or ``file:LINE: where: message``; warnings say so."""
    at = f"{file}:{problem.line}" if problem.line else file
    tag = "warning: " if problem.severity == "warning" else ""
    return f"{at}: {problem.where}: {tag}{problem.message}"


def id_lines(text: str) -> dict[str, int]:
    """Line of each node and flow id in a YAML design (sub-processes included), to place validation problems."""
    import yaml

    lines: dict[str, int] = {}

    def walk(node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == "id" and isinstance(value, yaml.ScalarNode):
                    lines.setdefault(value.value, value.start_mark.line + 1)
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if root is not None:
        walk(root)
    return lines


def place(problems: list[Problem], yaml_text: str) -> list[Problem]:
    """Validation problems name ids, not lines: add the line where that id is written in the YAML text."""
    if all(p.line for p in problems):
        return problems
    lines = id_lines(yaml_text)
    return [p if p.line or p.where not in lines else Problem(p.where, p.message, lines[p.where], p.severity)
            for p in problems]


def _placed(file: str, problems: list[Problem]) -> list[Problem]:
    if Path(file).suffix.lower() not in (".yaml", ".yml") or all(p.line for p in problems):
        return problems
    try:
        return place(problems, Path(file).read_text(encoding="utf-8"))
    except OSError:
        return problems


def _load_or_report(arg: str) -> tuple[ProcessDefinition | None, str, list[Problem]]:
    try:
        definition, file = resolve(arg)
    except DefinitionError as exc:
        return None, exc.source or arg, exc.problems
    return definition, file, []


# --- commands -------------------------------------------------------------------------------------------


@app.command()
def validate(
    designs_: Annotated[list[str], typer.Argument(metavar="FILE_OR_DESIGN...",
                                                  help="Design files (.yaml/.json/.bpmn) or names in designs/.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print problems only, no summary lines.")] = False,
) -> None:
    """Check designs: every problem on its own line; exit 1 if any design has an error (warnings do not fail)."""
    from engine.validate import handler_problems
    from engine.validate import validate as check

    failed = False
    for arg in designs_:
        definition, file, problems = _load_or_report(arg)
        if definition is not None:
            problems = _placed(file, check(definition) + handler_problems(definition))  # unknown agents: warnings
        errors = [p for p in problems if p.severity == "error"]
        failed = failed or bool(errors)
        for problem in problems:
            typer.echo(format_problem(file, problem))
        if not quiet and definition is not None:
            verdict = f"{len(errors)} error(s)" if errors else "ok"
            warnings = len(problems) - len(errors)
            typer.echo(f"{file}: {verdict} ({len(definition.all_nodes())} nodes"
                       + (f", {warnings} warning(s))" if warnings else ")"))
    raise typer.Exit(1 if failed else 0)


@app.command()
def render(
    design: Annotated[str, typer.Argument(metavar="FILE_OR_DESIGN", help="A design file or a name in designs/.")],
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Picture to write: .svg, .png, .pdf or .dot "
                                                     "(default: <design id>.svg).")] = None,
    highlight: Annotated[list[str] | None, typer.Option("--highlight", "-H",
                                                        help="Node id to mark (e.g. where tokens are); "
                                                             "repeat for several.")] = None,
) -> None:
    """Draw a design as a BPMN-like picture (Graphviz)."""
    from engine.render import render as draw

    definition, file, problems = _load_or_report(design)
    if definition is None:
        for problem in problems:
            typer.echo(format_problem(file, problem), err=True)
        raise typer.Exit(1)
    known = set(definition.index.nodes)
    unknown = [h for h in highlight or [] if h not in known]
    if unknown:
        import difflib

        hints = [f"{u!r}" + (f" (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(u, known, 1)) else "")
                 for u in unknown]
        raise typer.BadParameter(f"no such node in {definition.id}: {', '.join(hints)}", param_hint="--highlight")
    target = output or Path(f"{definition.id}.svg")
    try:
        draw(definition, target, highlight=highlight or ())
    except WaooawError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {target}")


@app.command("designs")
def list_designs() -> None:
    """List the designs that ship in designs/ (use their names wherever a design file is asked for)."""
    import designs

    for name in designs.names():
        definition, _, problems = _load_or_report(name)
        title = definition.label if definition is not None else f"(does not load: {len(problems)} problem(s))"
        typer.echo(f"{name:<24} {title}")


@app.command()
def show(
    design: Annotated[str, typer.Argument(metavar="FILE_OR_DESIGN", help="A design name or file.")],
) -> None:
    """Print a design as YAML (a design name prints its file as written; other files are converted)."""
    import designs

    if design in designs.names():
        typer.echo(designs.path(design).read_text(encoding="utf-8"), nl=False)
        return
    definition, file, problems = _load_or_report(design)
    if definition is None:
        for problem in problems:
            typer.echo(format_problem(file, problem), err=True)
        raise typer.Exit(1)
    typer.echo(definition.to_yaml(), nl=False)


def upload_mib() -> int:
    """Streamlit's ``server.maxUploadSize`` (MiB) for the limit in force: ``max_file_bytes`` rounded up, so the
    browser refuses what is far too large and the Designer's own check names the limit for the rest."""
    from engine.limits import current

    return max(1, -(-current().max_file_bytes // (1024 * 1024)))


@app.command("app", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_app(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", help="Port to serve on (default: Streamlit's, 8501).")] = None,
    address: Annotated[str, typer.Option("--address", help="Address to listen on: this machine only by default; "
                                         "0.0.0.0 serves others (put it behind HTTPS).")] = "127.0.0.1",
) -> None:
    """Start the designer and simulator app (Streamlit); extra options are passed to `streamlit run`."""
    import app as app_package

    home = Path(app_package.__file__).resolve().parent / "Home.py"
    command = [sys.executable, "-m", "streamlit", "run", str(home), "--server.address", address,
               "--client.showErrorDetails", "none", "--server.maxUploadSize", str(upload_mib())]
    if port is not None:
        command += ["--server.port", str(port)]
    command += list(ctx.args)
    raise typer.Exit(subprocess.call(command))


# --- commands other parts of the project own ------------------------------------------------------------


def _register_others() -> None:
    from engine.bpmn.cli import register as register_bpmn
    from engine.cli_ops import register as register_ops
    from engine.versions.cli import register as register_versions
    from simulator.cli import register as register_simulator

    register_bpmn(app)  # import, export
    register_simulator(app)  # simulate
    app.add_typer(__import__("engine.bus.cli", fromlist=["app"]).app)  # agent-worker, bus stats/dead-letters/replay
    register_ops(app)  # deploy, start, instances, instance, tasks, complete, correlate, incidents, retry, cancel
    register_versions(app)  # rollout, migrate, replay
    # The engine worker's commands (engine/runtime/cli.py) are being written separately: until that module
    # exists the CLI works without them. Only its absence is tolerated; an import error inside it is raised.
    try:
        from engine.runtime.cli import register as register_runtime
    except ModuleNotFoundError as exc:
        if exc.name not in ("engine.runtime", "engine.runtime.cli"):
            raise
    else:
        register_runtime(app)


_register_others()


if __name__ == "__main__":
    app()
