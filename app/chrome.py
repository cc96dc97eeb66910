"""What every page shows around its own content: the engine's time with the clock control (demo mode), who
you act as, and the worker's state. ``ctx = page("Runs")`` at the top of a page returns what it needs.

The only Streamlit-bound module besides the pages (and app/auth.py, the sign-in); the logic it calls lives
in app/runtime.py and app/config.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from app import auth
from app import config as app_config
from app.runtime import CLOCK_STEPS, AppRuntime
from app.workspace import Workspace
from engine.errors import EngineError
from engine.runtime import Engine
from engine.runtime.ids import short_id
from engine.security import Principal, allowed

USER_KEY = auth.SESSION_PERSONA  # "acting_as": session state, not a widget key: it survives switching pages


@st.cache_resource(show_spinner="Opening the engine…")
def _runtime(config: app_config.AppConfig) -> AppRuntime:
    return AppRuntime(config)


@dataclass
class PageContext:
    runtime: AppRuntime
    workspace: Workspace
    principal: Principal  # the signed-in visitor (or demo persona): app/auth.py

    @property
    def user(self) -> str:
        return self.principal.user

    @property
    def groups(self) -> list[str]:
        return sorted(self.principal.groups)

    @property
    def engine(self) -> Engine:
        """The app's engine acting as the visitor: the engine checks every action against their roles."""
        return self.runtime.engine.acting_as(self.principal)


def runtime_or_stop() -> AppRuntime:
    try:
        config = app_config.load()
    except app_config.ConfigError as exc:
        st.error(f"The app's configuration is not usable: {exc}")
        st.stop()
    return _runtime(config)


def page(title: str, icon: str) -> PageContext:
    """Set the page up (title, wide layout, sidebar with clock and identity) and return its context."""
    st.set_page_config(page_title=f"{title} · waooaw", page_icon=icon, layout="wide")
    runtime = runtime_or_stop()
    principal = auth.require_principal(runtime.config.db_url, runtime.config.demo)  # sign-in page, or who
    workspace = Workspace(runtime.config.data_dir, principal, runtime.engine.db)  # writes: rule design.save
    with st.sidebar:
        _clock(runtime, principal)
        if runtime.worker_note:
            st.warning(runtime.worker_note, icon=":material/engineering:")
        for problem in runtime.problems:
            st.warning(f"Not deployed: {problem}")
    st.title(title)
    if flash := st.session_state.pop("flash", None):
        st.success(flash, icon=":material/check_circle:")
        if instance_id := st.session_state.pop("flash_instance", None):  # after Start or Complete: go there
            st.session_state["instance_id"] = st.session_state["instance_pick"] = instance_id
            instance_link(instance_id)
    if problem := st.session_state.pop("flash_error", None):
        st.error(problem, icon=":material/error:")
    if note := st.session_state.pop("flash_info", None):
        st.info(note, icon=":material/info:")
    return PageContext(runtime, workspace, principal)


def note_deployed(name: str, version: int) -> None:
    """Remember the design just deployed: the pickers that choose a process default to it (``prefer_deployed``)."""
    st.session_state["deployed"] = (name, version)
    st.session_state["design"] = name


def current_design() -> str | None:
    """The design the visitor works on: the one open in the Designer, else the last one deployed or chosen."""
    open_in_designer = getattr(st.session_state.get("designer"), "name", None)
    return open_in_designer or st.session_state.get("design")


def prefer_deployed(key: str, options: list[str]) -> None:
    """Before the select box ``key`` over ``options`` is drawn: after each deploy, select the design just deployed
    once (the visitor's own later choice then stands)."""
    deployed = st.session_state.get("deployed")
    if deployed and deployed[0] in options and st.session_state.get(f"{key}:deployed") != deployed:
        st.session_state[key] = deployed[0]
        st.session_state[f"{key}:deployed"] = deployed
    elif key not in st.session_state and st.session_state.get(f"{key}:kept") in options:
        # Streamlit forgets a widget's value when its page is left: the choice comes back on return
        st.session_state[key] = st.session_state[f"{key}:kept"]


def remember(key: str) -> None:
    """After the select box ``key`` is drawn: keep its value for :func:`prefer_deployed` on the next visit."""
    if key in st.session_state:
        st.session_state[f"{key}:kept"] = st.session_state[key]


def instance_link(instance_id: str) -> None:
    """A link to the Instance page showing ``instance_id`` (which it reads from the session)."""
    from streamlit.errors import StreamlitPageNotFoundError

    label = f"Open instance {short_id(instance_id)}"
    try:
        st.page_link("pages/6_Instance.py", label=label, icon=":material/account_tree:")
    except StreamlitPageNotFoundError:  # a page run on its own (AppTest): no navigation to link into
        st.caption(f"{label} (the Instance page)")


def flash(message: str) -> None:
    """Show ``message`` at the top of the next run (after ``st.rerun()``)."""
    st.session_state["flash"] = message


def _clock(runtime: AppRuntime, principal: Principal) -> None:
    now = runtime.now()
    st.markdown(f"**Engine time** \n{now:%a %d %b %Y, %H:%M} UTC")
    if not runtime.virtual:
        st.caption("Wall clock (production mode).")
        return
    st.caption("Demo mode: a virtual clock stored in the database. Moving it fires every timer and SLA that "
               "falls due on the way, in order.")
    may = allowed(principal, "clock.advance")
    hint = None if may else "Moving the clock needs the operator role."
    if not may:  # said, not only greyed out (a disabled button shows no tooltip in every browser)
        st.caption(f":material/lock: {hint} Act as an operator (e.g. on-call or the engineering lead) to move it.")
    cols = st.columns(2)
    for i, (label, delta) in enumerate(CLOCK_STEPS.items()):
        if cols[i % 2].button(label, key=f"clock_{label}", width="stretch", disabled=not may, help=hint):
            _move(runtime, principal, delta=delta)
    if st.button("To the next due timer", key="clock_next", icon=":material/skip_next:", width="stretch",
                 disabled=not may, help=hint):
        _move(runtime, principal, to_next=True)


def _move(runtime: AppRuntime, principal: Principal, delta: object = None, to_next: bool = False) -> None:
    try:
        moved = runtime.move_clock(delta, to_next_due=to_next, principal=principal)  # type: ignore[arg-type]
    except (ValueError, EngineError) as exc:  # EngineError: AuthorizationError (the engine's own check)
        st.session_state["flash_info"] = str(exc)
        st.rerun()
    flash(moved.message())
    st.rerun()
