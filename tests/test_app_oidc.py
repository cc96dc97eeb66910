"""Sign-in with OpenID Connect (Streamlit's ``st.login``) against a real, local provider: ``oidc-provider-mock``
(an OpenID Provider on werkzeug, run in a thread of this test), so nothing leaves the machine. The mapping from
the ID token's claims to a principal (``app.auth.oidc_account``) is tested on its own; one browser test signs
in through the provider's authorization page and lands on the Tasks page as the account the e-mail names."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from app_support import free_port, launch_chromium, serve_app

from app.auth import oidc_account, oidc_configured
from engine.security import Principal, Role, UserStore

PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path: Path) -> UserStore:
    store = UserStore(f"sqlite:///{tmp_path / 'accounts.db'}")
    admin = store.create_first_admin("root", PASSWORD)
    store.add_user(admin, "ada", None, groups=["marketing"], roles=["operator"], email="Ada@Example.com")
    store.add_user(admin, "gone", None, roles=["admin"], email="gone@example.com")
    store.set_disabled(admin, "gone")
    return store


def test_the_email_claim_names_the_account_and_the_account_gives_groups_and_roles(store: UserStore) -> None:
    claims = {"sub": "x-123", "email": "ada@example.com", "email_verified": True, "name": "Ada",
              "groups": ["admins"], "roles": ["admin"]}  # the token's own groups and roles do not count
    info, why = oidc_account(store, claims)
    assert info is not None and why == ""
    assert info.principal() == Principal("ada", frozenset({"marketing"}), frozenset({Role.OPERATOR}))
    refusals = {"no e-mail": {"sub": "x"}, "unverified": {"email": "ada@example.com", "email_verified": False},
                "unknown": {"email": "eve@example.com"}, "disabled": {"email": "gone@example.com"}}
    reasons = {k: oidc_account(store, c) for k, c in refusals.items()}
    assert all(info is None for info, _ in reasons.values())
    assert "no e-mail claim" in reasons["no e-mail"][1] and "not verified" in reasons["unverified"][1]
    assert "no account for eve@example.com" in reasons["unknown"][1] and "disabled" in reasons["disabled"][1]


def test_auth_section_is_what_turns_sign_in_over_to_the_provider() -> None:
    assert oidc_configured({"auth": {"client_id": "waooaw"}})
    assert not oidc_configured({"connections": {}})


# --- a real sign-in through the provider, in a browser ----------------------------------------------------


@pytest.fixture
def provider() -> Iterator[str]:
    oidc = pytest.importorskip("oidc_provider_mock", reason="pip install oidc-provider-mock (the dev extra)")
    pytest.importorskip("authlib", reason="st.login needs Authlib (pip install Authlib)")
    user = oidc.User(sub="ada-sub", claims={"email": "ada@example.com", "email_verified": True, "name": "Ada"})
    with oidc.run_server_in_thread(user_claims=[user]) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def served_oidc(provider: str, tmp_path: Path, store: UserStore) -> Iterator[tuple[str, Path]]:
    data = tmp_path / "data"
    data.mkdir()
    accounts = UserStore(f"sqlite:///{data / 'waooaw.db'}")
    admin = accounts.create_first_admin("root", PASSWORD)
    accounts.add_user(admin, "ada", None, groups=["marketing"], roles=["operator"], email="ada@example.com")
    port = free_port()
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(16)}"\n'
        'client_id = "waooaw"\n'
        'client_secret = "waooaw-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n')
    env = {"WAOOAW_MODE": "production", "WAOOAW_DATA_DIR": str(data), "WAOOAW_WORKER": "external"}
    with serve_app(env, port=port, options=("--secrets.files", str(secrets_file))) as url:
        yield url, data


def test_sign_in_through_an_openid_provider_in_a_browser(served_oidc: tuple[str, Path], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, data = served_oidc
    assert (data / "waooaw.db").exists()
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)
            page.goto(url + "/Tasks")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            page.get_by_role("button", name="Sign in with your organisation's account").click()
            page.wait_for_url(re.compile(r"localhost:\d+/oauth2/authorize"))  # the provider's page
            page.screenshot(path=str(tmp_path / "oidc-provider.png"))
            page.get_by_role("button", name="ada-sub").click()  # the predefined user: one click
            sidebar = page.locator('[data-testid="stSidebar"]')  # back on the app (its home page), signed in
            expect(sidebar).to_contain_text(re.compile(r"Signed in as\s*ada\s*\(single sign-on\)\s*roles: operator"
                                                       r"\s*groups: marketing"))
            page.goto(url + "/Tasks")  # the session cookie carries the sign-in to every page
            expect(page.get_by_role("heading", name="Inbox of ada")).to_be_visible()
            page.screenshot(path=str(tmp_path / "oidc-signed-in.png"))
            assert "Traceback" not in page.content()
        finally:
            browser.close()
