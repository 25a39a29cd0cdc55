"""Accounts and tokens in the store: argon2 hashes, disabled accounts, token scopes, revocation, demo accounts."""

from __future__ import annotations

import hashlib

import pytest
from argon2 import PasswordHasher
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from layers.store import auth
from layers.store.errors import NotFoundError, ValidationError
from layers.store.models import ApiToken, Incident, User

pytestmark = pytest.mark.db


def test_password_is_stored_as_argon2id_and_verifies(session: Session) -> None:
    auth.add_user(session, "li.wei", "s3cret-passphrase", role="analyst", display_name="李伟")
    stored = session.execute(select(User.password_hash).where(User.username == "li.wei")).scalar_one()
    assert stored.startswith("$argon2id$") and "s3cret-passphrase" not in stored
    assert PasswordHasher().verify(stored, "s3cret-passphrase")  # an independent verifier accepts it
    p = auth.verify_password(session, "li.wei", "s3cret-passphrase")
    assert (p.kind, p.name, p.role, p.display_name, p.history_name) == ("user", "li.wei", "analyst", "李伟", "li.wei")
    for user, pw in (("li.wei", "wrong-passphrase"), ("nobody", "s3cret-passphrase"), ("li.wei", "")):
        with pytest.raises(auth.AuthError):
            auth.verify_password(session, user, pw)


def test_passwd_disable_and_list(session: Session) -> None:
    auth.add_user(session, "zhang", "first-password", role="viewer")
    auth.set_password(session, "zhang", "second-password")
    with pytest.raises(auth.AuthError):
        auth.verify_password(session, "zhang", "first-password")
    assert auth.verify_password(session, "zhang", "second-password").role == "viewer"
    auth.set_disabled(session, "zhang")
    with pytest.raises(auth.AuthError):
        auth.verify_password(session, "zhang", "second-password")
    listed = {u["username"]: u for u in auth.list_users(session)}
    assert listed["zhang"]["disabled"] is True and "password_hash" not in listed["zhang"]
    with pytest.raises(NotFoundError):
        auth.set_password(session, "ghost", "whatever-password")


@pytest.mark.parametrize(("username", "password", "role", "field"), [
    ("ok_name", "short", "analyst", "password"),
    ("Bad Name", "long-enough-pw", "analyst", "username"),
    ("ok_name", "long-enough-pw", "superuser", "role"),
])
def test_add_user_rejects_bad_input_naming_the_field(session: Session, username: str, password: str, role: str,
                                                     field: str) -> None:
    with pytest.raises(ValidationError) as e:
        auth.add_user(session, username, password, role=role)
    assert e.value.problems[0].field == field
    assert password not in str(e.value)  # a rejected password is never echoed


def test_duplicate_username_is_rejected(session: Session) -> None:
    auth.add_user(session, "wang", "a-long-password", role="planner")
    with pytest.raises(ValidationError):
        auth.add_user(session, "wang", "another-long-password", role="admin")


def test_token_is_stored_as_sha256_only_and_scoped(session: Session) -> None:
    secret = auth.create_token(session, "feed-110", layers=["incidents"], access="write", created_by="admin")
    row = session.execute(select(ApiToken).where(ApiToken.name == "feed-110")).scalar_one()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(v) for v in (row.token_hash, row.prefix, row.name, row.layers, row.access, row.created_by)]
    assert not any(secret in v for v in stored) and len(secret) >= 40
    p = auth.verify_token(session, secret)
    assert (p.kind, p.name, p.layers, p.access, p.history_name) == ("token", "feed-110", ("incidents",), "write",
                                                                    "token:feed-110")
    assert auth.token_allows(p, "incidents", write=True) and auth.token_allows(p, "incidents", write=False)
    assert not auth.token_allows(p, "shelters", write=True) and not auth.token_allows(p, "shelters", write=False)
    session.flush()
    assert session.execute(select(ApiToken.last_used_at).where(ApiToken.id == row.id)).scalar_one() is not None


def test_read_token_cannot_write_and_star_covers_every_layer(session: Session) -> None:
    reader = auth.verify_token(session, auth.create_token(session, "qgis", layers=["*"], access="read",
                                                          created_by="admin"))
    assert auth.token_allows(reader, "shelters", write=False) and not auth.token_allows(reader, "shelters", write=True)
    with pytest.raises(ValidationError):
        auth.create_token(session, "bad", layers=["shelterz"], access="write", created_by="admin")
    with pytest.raises(ValidationError):
        auth.create_token(session, "bad", layers=["shelters"], access="delete", created_by="admin")


def test_revoked_token_is_refused_and_kept(session: Session) -> None:
    secret = auth.create_token(session, "cap-feed", layers=["hazards"], access="write", created_by="admin")
    auth.revoke_token(session, "cap-feed")
    with pytest.raises(auth.AuthError):
        auth.verify_token(session, secret)
    with pytest.raises(auth.AuthError):
        auth.verify_token(session, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    # other modules' tokens (tests/conftest.py api_token) may live in the same test database: look at ours
    listed = [t for t in auth.list_tokens(session) if t["name"] == "cap-feed"]
    assert len(listed) == 1 and listed[0]["revoked_at"] is not None
    assert [t for t in auth.list_tokens(session, include_revoked=False) if t["name"] == "cap-feed"] == []
    # the name is free again once revoked
    auth.create_token(session, "cap-feed", layers=["hazards"], access="write", created_by="admin")
    with pytest.raises(NotFoundError):
        auth.revoke_token(session, "never-made")


def test_demo_accounts_are_made_once_with_hashed_generated_passwords(session: Session) -> None:
    made = auth.ensure_demo_accounts(session)
    assert sorted(made) == ["admin", "analyst", "dispatcher", "display", "monitor", "planner"]
    assert len(set(made.values())) == 6 and all(len(p) >= auth.MIN_PASSWORD_CHARS for p in made.values())
    roles = {u["username"]: u["role"] for u in auth.list_users(session)}
    assert {k: roles[k] for k in made} == {"display": "display", "analyst": "analyst", "planner": "planner",
                                           "monitor": "monitor", "dispatcher": "dispatcher", "admin": "admin"}
    for name, pw in made.items():
        assert auth.verify_password(session, name, pw).name == name
        stored = session.execute(select(User.password_hash).where(User.username == name)).scalar_one()
        assert pw not in stored
    assert auth.ensure_demo_accounts(session) == {}  # existing accounts are not reset
    assert auth.demo_passwords_in_use(session) == sorted(made)
    auth.set_password(session, "admin", "a-real-admin-password")
    assert "admin" not in auth.demo_passwords_in_use(session)
    again = auth.ensure_demo_accounts(session, reset=True)
    assert auth.verify_password(session, "admin", again["admin"]).name == "admin"


def test_recent_changes_name_who_changed_what(session: Session) -> None:
    session.execute(insert(User).values(username="x", role="viewer", password_hash="x"))  # not a feature: no history
    from sqlalchemy import text

    session.execute(text("SELECT set_config('sitroom.user', 'token:feed-110', true)"))
    fid = session.execute(insert(Incident).values(kind="fire", status="reported", name="草原火", source="t",
                                                  geom="SRID=4326;POINT(111.7 40.8)").returning(Incident.id)).scalar_one()
    rows = auth.recent_changes(session, limit=5)
    assert rows[0]["feature_id"] == fid and rows[0]["changed_by"] == "token:feed-110"
    assert (rows[0]["layer"], rows[0]["op"], rows[0]["name"]) == ("incidents", "insert", "草原火")
