"""Who is using the app: sign-in, the first-run admin, demo personas. Every page starts with
``principal = auth.require_principal()`` and acts through ``engine.acting_as(principal)``, so the engine's
rules (``engine.security``) decide, not the page.

Three ways in, chosen by configuration (``app/config.py``):

- **OpenID Connect** with Streamlit's own ``st.login`` when ``[auth]`` is configured in
  ``.streamlit/secrets.toml`` (see the README's Security section). The signed-in e-mail is matched to an
  account (``UserStore.by_email``): the account holds the groups and roles. No account, no entry.
- **Local accounts** otherwise: name and password, checked against the argon2 hash in the engine's
  database. On first run (no admin account yet) the page offers to create the first admin.
- **Demo mode** (``WAOOAW_MODE=demo``, the default of ``make app``): the seeded personas, a switcher in the
  sidebar and a banner on every page saying that anyone can act as anyone. Refused when the production
  flag ``WAOOAW_PRODUCTION=1`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import streamlit as st

from engine.errors import EngineError, WaooawError
from engine.security import Principal, UserStore, seed_demo_users
from engine.security.users import UserInfo

PRODUCTION_ENV = "WAOOAW_PRODUCTION"
SESSION_USER = "waooaw_user"  # the signed-in local account's name
SESSION_PERSONA = "acting_as"  # the demo persona acted as (session state, not a widget key: survives pages)
DEFAULT_PERSONA = "marketing-lead"  # marketing_campaign's approver: the first inbox with something in it
DEMO_BANNER = ("**Demo mode**: anyone who can open this app can act as any demo person; nothing here is private. "
               "Run with `WAOOAW_MODE=production` for real accounts.")


class DemoRefused(RuntimeError):
    """Demo mode asked for while the production flag is set."""


def production_flag(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``WAOOAW_PRODUCTION`` is set to a true value (1, true, yes, on)."""
    env = os.environ if env is None else env
    return (env.get(PRODUCTION_ENV) or "").strip().lower() in ("1", "true", "yes", "on")


def check_mode(demo: bool, env: Mapping[str, str] | None = None) -> None:
    """``DemoRefused`` when demo mode meets the production flag: a production install never runs as a demo."""
    if demo and production_flag(env):
        raise DemoRefused(f"Demo mode is refused: {PRODUCTION_ENV} is set. Set WAOOAW_MODE=production (real "
                          "accounts) or unset the flag on a machine that is not production.")


def oidc_configured(secrets: Any = None) -> bool:
    """Whether ``[auth]`` is in the app's secrets (Streamlit's OpenID Connect settings)."""
    try:
        secrets = st.secrets if secrets is None else secrets
        return "auth" in secrets
    except Exception:  # no secrets.toml at all: Streamlit raises on access
        return False


@st.cache_resource(show_spinner=False)
def user_store(db_url: str, demo: bool) -> UserStore:
    """The accounts on the engine's database (demo mode: with the personas seeded)."""
    from app.runtime import sqlite_path

    file = sqlite_path(db_url)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    store = UserStore(db_url)
    if demo:
        seed_demo_users(store)
    return store


def _app_config() -> tuple[str, bool]:
    from app import config

    cfg = config.load()
    return cfg.db_url, cfg.demo


def accounts() -> list[UserInfo]:
    """The app's accounts (the demo personas in demo mode), enabled ones only: who a design can name."""
    return [u for u in user_store(*_app_config()).users() if not u.disabled]


def accounts_db(db_url: str | None = None, demo: bool | None = None) -> Any:
    """The engine's database as the accounts store opened it (SQLAlchemy engine): where a page that has no
    engine of its own (the Designer) records its decisions in ``wf_audit``."""
    if db_url is None or demo is None:
        url, is_demo = _app_config()
        db_url = url if db_url is None else db_url
        demo = is_demo if demo is None else demo
    return user_store(db_url, demo).db


def require_principal(db_url: str | None = None, demo: bool | None = None,
                      prefer_role: str | None = None, compact: bool = False) -> Principal:
    """The principal of this visitor, or the sign-in page (and ``st.stop()``): call it at the top of each page.

    ``prefer_role``: in demo mode, a visitor who has not picked a persona yet starts as the first persona
    holding this role (the Designer starts as a designer); a persona once picked is kept across pages.
    ``compact``: the demo banner is one line of small print (the Designer, whose canvas must start high)."""
    if db_url is None or demo is None:
        url, is_demo = _app_config()
        db_url = url if db_url is None else db_url
        demo = is_demo if demo is None else demo
    try:
        check_mode(demo)
    except DemoRefused as exc:
        st.error(str(exc))
        st.stop()
    try:
        store = user_store(db_url, demo)
    except WaooawError as exc:  # the database cannot be opened: say so, no traceback
        st.error(f"The accounts cannot be read: {exc}")
        st.stop()
    if demo:
        return _demo(store, prefer_role, compact)
    if oidc_configured():
        return _oidc(store)
    return _local(store)


def _signed_in_sidebar(principal: Principal, how: str, sign_out: Any) -> None:
    with st.sidebar:
        roles = ", ".join(sorted(r.value for r in principal.roles)) or "no roles"
        groups = ", ".join(sorted(principal.groups)) or "no groups"
        st.markdown(f"Signed in as **{principal.user}** ({how})  \nroles: {roles}  \ngroups: {groups}")
        if sign_out is not None and st.button("Sign out", key="auth_sign_out"):
            sign_out()


def _demo(store: UserStore, prefer_role: str | None = None, compact: bool = False) -> Principal:
    personas = [u for u in store.users() if u.demo and not u.disabled]
    names = [u.name for u in personas]
    by_name = {u.name: u for u in personas}
    if compact:
        st.caption(f":material/theater_comedy: {DEMO_BANNER}")
    else:
        st.warning(DEMO_BANNER, icon=":material/theater_comedy:")
    if not names:
        st.error("Demo mode has no personas to act as.")
        st.stop()
    current = st.session_state.get(SESSION_PERSONA)
    if current not in by_name and st.query_params.get("as") in by_name:
        current = st.query_params.get("as")  # a reload keeps the address, so the persona comes back with it
    if current not in by_name:
        fitting = [u.name for u in personas if prefer_role is not None and prefer_role in u.roles]
        current = fitting[0] if fitting else DEFAULT_PERSONA if DEFAULT_PERSONA in by_name else names[0]
    with st.sidebar:
        name = st.selectbox("Acting as (demo persona)", names, index=names.index(current), key="acting_as_pick",
                            format_func=lambda n: by_name[n].label,
                            help="Demo personas, their groups and roles (engine/security/demo.py).")
    st.session_state[SESSION_PERSONA] = name
    st.query_params["as"] = name
    principal = by_name[name].principal()
    _signed_in_sidebar(principal, "demo persona", None)
    return principal


def act_as(name: str) -> None:
    """Switch the demo persona to ``name`` (a button's ``on_click``: the sidebar's switcher follows on the rerun)."""
    st.session_state[SESSION_PERSONA] = st.session_state["acting_as_pick"] = name


def offer_personas(action: str, key: str) -> None:
    """In demo mode, after a permission refusal: one button per demo persona allowed to ``action``
    (``engine.security.allowed``), acting as them in one click instead of a trip to the sidebar."""
    from engine.security import allowed
    from engine.security.demo import DEMO_PERSONAS

    able = [p for p in DEMO_PERSONAS if allowed(p.principal(), action)]
    for column, persona in zip(st.columns(max(len(able), 1)), able, strict=False):
        column.button(f"Act as {persona.display_name}", key=f"{key}_{persona.name}", on_click=act_as,
                      args=(persona.name,), icon=":material/switch_account:")


def _sign_out_local() -> None:
    st.session_state.pop(SESSION_USER, None)
    st.rerun()


def _local(store: UserStore) -> Principal:
    name = st.session_state.get(SESSION_USER)
    if name:
        try:
            principal = store.principal(name)  # read each run: a disabled account or a role change counts now
        except EngineError:
            st.session_state.pop(SESSION_USER, None)
        else:
            _signed_in_sidebar(principal, "local account", _sign_out_local)
            return principal
    if not store.has_admin():
        _first_run(store)
    else:
        _sign_in_form(store)
    st.stop()
    raise AssertionError("unreachable")  # st.stop() ends the run


def _first_run(store: UserStore) -> None:
    st.header("Create the first admin")
    st.markdown("No admin account exists yet. The account you create here holds every role "
                "(designer, deployer, operator, admin) and can add the others.")
    with st.form("auth_first_run"):
        name = st.text_input("User name", key="auth_first_name")
        password = st.text_input("Password (10 characters or more)", type="password", key="auth_first_password")
        again = st.text_input("Password again", type="password", key="auth_first_again")
        if st.form_submit_button("Create admin", type="primary"):
            if password != again:
                st.error("The two passwords differ.")
                return
            try:
                principal = store.create_first_admin(name.strip(), password)
            except EngineError as exc:
                st.error(str(exc))
                return
            st.session_state[SESSION_USER] = principal.user
            st.rerun()


def _sign_in_form(store: UserStore) -> None:
    st.header("Sign in")
    with st.form("auth_sign_in"):
        name = st.text_input("User name", key="auth_name")
        password = st.text_input("Password", type="password", key="auth_password")
        if st.form_submit_button("Sign in", type="primary"):
            principal = store.authenticate(name.strip(), password)
            if principal is None:  # one message for every cause: no hint which names exist
                st.error("Wrong user name or password.")
                return
            st.session_state[SESSION_USER] = principal.user
            st.rerun()


def oidc_account(store: UserStore, claims: Mapping[str, Any]) -> tuple[UserInfo | None, str]:
    """The account an OpenID Connect sign-in maps to, from the ID token's claims (``st.user``), or None and why.

    The mapping: the ``email`` claim (case-insensitive) names the account; the principal's user, groups and
    roles are that account's (``UserInfo.principal()``), set by an admin in waooaw, never taken from the token.
    The provider proves who signed in; what they may do stays in the engine's database and its audit trail.
    Refused: no ``email`` claim (ask for the ``email`` scope), ``email_verified`` false, no account with that
    e-mail, a disabled account."""
    email = str(claims.get("email") or "").strip()
    if not email:
        return None, "the provider sent no e-mail claim (configure the 'email' scope)"
    if claims.get("email_verified") is False:
        return None, f"the provider says {email} is not verified"
    info = store.by_email(email)
    if info is None:
        return None, f"no account for {email}: ask an admin to add you"
    if info.disabled:
        return None, f"the account for {email} is disabled"
    return info, ""


def _oidc(store: UserStore) -> Principal:
    if not st.user.is_logged_in:
        st.header("Sign in")
        st.button("Sign in with your organisation's account", type="primary", on_click=st.login,
                  key="auth_oidc_login")
        st.stop()
    claims = st.user.to_dict()
    email = str(claims.get("email") or "").strip()
    info, why = oidc_account(store, claims)
    if info is None and why.startswith("no account") and not store.has_admin():
        st.header("Create the first admin")
        st.markdown(f"No admin account exists yet. Make **{email}** the admin (every role)?")
        if st.button("Make me the admin", type="primary", key="auth_oidc_first"):
            store.create_first_admin(email.split("@")[0].replace(" ", "") or "admin", _unusable_password(),
                                     email=email)
            st.rerun()
        st.stop()
    if info is None:
        st.error(f"You are signed in with your organisation, but {why}.")
        st.button("Sign out", on_click=st.logout, key="auth_oidc_logout")
        st.stop()
    principal = info.principal()
    _signed_in_sidebar(principal, "single sign-on", st.logout)
    return principal


def _unusable_password() -> str:
    """A random password nobody knows: an OpenID Connect admin signs in through the provider only."""
    import secrets

    return secrets.token_urlsafe(32)


def _switch_to(name: str) -> None:
    st.session_state[SESSION_PERSONA] = name
    st.session_state["acting_as_pick"] = name  # the sidebar's switcher shows it on the next run


def read_only_notice(principal: Principal, action: str, what: str, demo: bool | None = None) -> None:
    """Say why ``what`` is read-only for ``principal`` (the rule ``action`` and the role it needs); in demo
    mode offer to act as the first persona who holds that role."""
    from engine.security import RULES

    needs = " or ".join(sorted(r.value for r in RULES[action].roles))
    has = ", ".join(sorted(r.value for r in principal.roles)) or "no roles"
    st.info(f"**Read-only**: {what} needs the {needs} role (rule `{action}`); you act as **{principal.user}** "
            f"with {has}.", icon=":material/visibility:")
    if demo is None:
        demo = _app_config()[1]
    if demo:
        store = user_store(*_app_config())
        fitting = [u for u in store.users() if u.demo and not u.disabled
                   and any(r.value in u.roles for r in RULES[action].roles)]
        if fitting:
            st.button(f"Act as {fitting[0].label}", key="auth_switch_role", on_click=_switch_to,
                      args=(fitting[0].name,), icon=":material/swap_horiz:")
