"""Who may do what: principals, roles, the rules (as data), accounts and the audit trail.

The identity model of the whole project, in five names:

- ``Principal(user, groups, roles)``: who acts. ``Principal.system()`` is the embedded single-user
  principal (notebooks, tests, CLI, worker): an explicit choice, recorded as such in the audit trail.
- ``Role``: designer, deployer, operator, admin.
- ``RULES`` / ``require(principal, action)`` / ``check_task(principal, task, verb)``: the rules, as data;
  a refusal is an ``AuthorizationError`` naming the rule.
- ``UserStore(db)``: accounts (groups, roles, argon2 password hashes) in the engine's database.
- ``seed_demo_users(store)``: the demo personas the library designs name (demo mode only).

Quick use::

    from engine.security import Principal, UserStore, seed_demo_users
    store = UserStore(engine.db)           # or UserStore("sqlite:///waooaw.db")
    seed_demo_users(store)                 # demo mode
    ada = store.principal("marketing-lead")
    engine.acting_as(ada).complete_task(task_id, {"approved": True})
"""

import engine.runtime  # noqa: F401  (the engine and its tables first: engine.py imports this package)
from engine.errors import AuthorizationError
from engine.security.audit import audit_trail
from engine.security.demo import DEMO_PERSONAS, Persona, seed_demo_users
from engine.security.principal import ALL_ROLES, Principal, Role
from engine.security.rules import RULES, TASK_RULES, Rule, allowed, check_task, require
from engine.security.users import UserInfo, UserStore

__all__ = ["ALL_ROLES", "DEMO_PERSONAS", "RULES", "TASK_RULES", "AuthorizationError", "Persona", "Principal", "Role",
           "Rule", "UserInfo", "UserStore", "allowed", "audit_trail", "check_task", "require", "seed_demo_users"]
