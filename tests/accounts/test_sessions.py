"""Sign-in with rate limiting, signed session tokens, sign-out, and the signing key."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from annotate import storage
from annotate.accounts import sessions, throttle
from annotate.errors import AuthError, ConfigError, PermissionDenied, SignInDelayed
from annotate.settings import Settings
from annotate.storage import db
from annotate.storage.models import AppSecret, LoginAttempt, User, utcnow
from tests.conftest import ADMIN, make_user

KEY = "k" * 40
HOUR = 3600.0


def settings(**kw: Any) -> Settings:
    kw.setdefault("secret_key", "")
    return Settings(database_url="sqlite://", **kw)


@pytest.fixture
def alice(engine: Engine) -> User:
    with db.session_scope(engine) as s:
        return make_user(s, "alice")


def test_signing_key_is_generated_once_into_a_private_file(engine: Engine, tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "annotate.key"
    conf = settings(secret_key_file=str(key_file))
    first = sessions.signing_key(engine=engine, settings=conf)
    assert len(first) >= 40
    assert sessions.signing_key(engine=engine, settings=conf) == first
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with Session(engine) as s:  # never in the database
        assert s.get(AppSecret, sessions.SIGNING_KEY_NAME) is None
        assert all(first not in v for v in s.exec(select(AppSecret.value)).all())
    mine = "m" * 32
    assert sessions.signing_key(engine=engine, settings=settings(secret_key=mine)) == mine


def test_a_key_stored_in_the_database_moves_to_the_key_file(engine: Engine, tmp_path: Path) -> None:
    old = "generated-by-an-older-version-" + "q" * 40
    with db.session_scope(engine) as s:
        s.add(AppSecret(key=sessions.SIGNING_KEY_NAME, value=old))
    key_file = tmp_path / "moved.key"
    conf = settings(secret_key_file=str(key_file))
    assert sessions.signing_key(engine=engine, settings=conf) == old  # old cookies keep working
    assert key_file.read_text().strip() == old
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with Session(engine) as s:
        assert s.get(AppSecret, sessions.SIGNING_KEY_NAME) is None


def test_a_short_key_is_refused(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"31 bytes long; a signing key needs at least 32"):
        sessions.signing_key(engine=engine, settings=settings(secret_key="k" * 31))
    short = tmp_path / "short.key"
    short.write_text("tiny\n")
    with pytest.raises(ConfigError, match="secrets.token_urlsafe"):
        sessions.signing_key(engine=engine, settings=settings(secret_key_file=str(short)))


def test_token_round_trip(engine: Engine, alice: User) -> None:
    token = sessions.issue_token(key=KEY, user=alice, now=1000.0)
    with Session(engine) as s:
        user = sessions.read_token(session=s, key=KEY, token=token, max_age_s=HOUR, now=1001.0)
    assert user.id == alice.id


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "not valid"),
        (lambda t: "garbage", "not valid"),
        (lambda t: sessions.URLSafeSerializer(KEY, salt="other").dumps({"u": 1}), "not valid"),
    ],
)
def test_tampered_tokens_are_refused(
    engine: Engine, alice: User, mangle: Any, message: str
) -> None:
    token = mangle(sessions.issue_token(key=KEY, user=alice, now=1000.0))
    with Session(engine) as s, pytest.raises(AuthError, match=message):
        sessions.read_token(session=s, key=KEY, token=token, max_age_s=HOUR, now=1001.0)


def test_a_token_signed_with_another_key_is_refused(engine: Engine, alice: User) -> None:
    token = sessions.issue_token(key="other" * 8, user=alice, now=1000.0)
    with Session(engine) as s, pytest.raises(AuthError, match="not valid"):
        sessions.read_token(session=s, key=KEY, token=token, max_age_s=HOUR, now=1001.0)


def test_tokens_expire(engine: Engine, alice: User) -> None:
    token = sessions.issue_token(key=KEY, user=alice, now=1000.0)
    with Session(engine) as s, pytest.raises(AuthError, match="expired"):
        sessions.read_token(session=s, key=KEY, token=token, max_age_s=HOUR, now=1000.0 + HOUR + 1)


def test_a_password_change_ends_sessions(engine: Engine, alice: User) -> None:
    token = sessions.issue_token(key=KEY, user=alice, now=1000.0)
    with db.session_scope(engine) as s:
        storage.set_password(session=s, actor=ADMIN, name="alice", password="another horse")
    with Session(engine) as s, pytest.raises(AuthError, match="password was changed"):
        sessions.read_token(session=s, key=KEY, token=token, max_age_s=HOUR, now=1001.0)


def test_deactivated_users_lose_their_session(engine: Engine, alice: User) -> None:
    token = sessions.issue_token(key=KEY, user=alice, now=1000.0)
    with db.session_scope(engine) as s:
        user = s.get(User, alice.id)
        assert user is not None
        user.active = False
        s.add(user)
    with Session(engine) as s, pytest.raises(AuthError, match="can no longer sign in"):
        sessions.read_token(session=s, key=KEY, token=token, max_age_s=HOUR, now=1001.0)


def test_sign_out_ends_earlier_tokens_only(engine: Engine, alice: User) -> None:
    old = sessions.issue_token(key=KEY, user=alice, now=1000.0)
    with db.session_scope(engine) as s:
        sessions.sign_out(session=s, user=alice)
        again = s.get(User, alice.id)
        assert again is not None
        new = sessions.issue_token(key=KEY, user=again, now=1000.7)
    with Session(engine) as s:
        with pytest.raises(AuthError, match="signed out"):
            sessions.read_token(session=s, key=KEY, token=old, max_age_s=HOUR, now=1001.0)
        assert sessions.read_token(session=s, key=KEY, token=new, max_age_s=HOUR, now=1001.0)


def test_sign_in_checks_the_password(engine: Engine, alice: User) -> None:
    user = sessions.sign_in(
        engine=engine, settings=settings(), name=" alice ", password="correct horse"
    )
    assert user.id == alice.id
    for name, password in (("alice", "wrong horse"), ("nobody", "correct horse")):
        with pytest.raises(AuthError) as info:
            sessions.sign_in(engine=engine, settings=settings(), name=name, password=password)
        assert str(info.value) == sessions.WRONG_CREDENTIALS
    with Session(engine) as s:
        attempts = s.exec(select(LoginAttempt).order_by(LoginAttempt.id)).all()
    assert [(a.user_name, a.success) for a in attempts] == [
        ("alice", True),
        ("alice", False),
        ("nobody", False),
    ]


def test_inactive_and_machine_users_cannot_sign_in(engine: Engine) -> None:
    with db.session_scope(engine) as s:
        gone = make_user(s, "gone")
        gone.active = False
        s.add(gone)
        storage.add_user(session=s, actor=ADMIN, name="judge", is_machine=True, password="x" * 10)
    for name, password in (("gone", "correct horse"), ("judge", "x" * 10)):
        with pytest.raises(AuthError, match="wrong password"):
            sessions.sign_in(engine=engine, settings=settings(), name=name, password=password)


def test_repeated_failures_slow_the_name_down_growing_delays(engine: Engine, alice: User) -> None:
    conf = settings(login_free_failures=3, login_delay_seconds=10, login_window_minutes=60)
    t0 = utcnow()

    def attempt(seconds: float, password: str = "guess") -> User:
        return sessions.sign_in(
            engine=engine,
            settings=conf,
            name="alice",
            password=password,
            now=t0 + timedelta(seconds=seconds),
        )

    for i in range(3):  # three free failures, no wait between them
        with pytest.raises(AuthError, match="wrong password"):
            attempt(i * 0.1)
    # The fourth waits 10 s after the third failure: even the right password is not checked.
    with pytest.raises(SignInDelayed, match=r"try again in 10 seconds") as info:
        attempt(0.2, "correct horse")
    assert info.value.retry_after == 10
    # Other names are not affected.
    with pytest.raises(AuthError, match="wrong password"):
        sessions.sign_in(engine=engine, settings=conf, name="bob", password="x", now=t0)
    with pytest.raises(AuthError, match="wrong password"):  # 4th failure, after its wait
        attempt(10.2)
    with pytest.raises(SignInDelayed, match=r"try again in 20 seconds"):  # doubled
        attempt(10.3, "correct horse")
    assert attempt(30.3, "correct horse").id == alice.id


def test_failures_from_one_address_slow_every_name_from_it(engine: Engine, alice: User) -> None:
    conf = settings(login_free_failures_per_address=4, login_delay_seconds=60)
    t0 = utcnow()
    for n in range(4):  # four different names, one address
        with pytest.raises(AuthError, match="wrong password"):
            sessions.sign_in(
                engine=engine,
                settings=conf,
                name=f"guess{n}",
                password="x" * 9,
                address="10.0.0.9",
                now=t0,
            )
    with pytest.raises(SignInDelayed):
        sessions.sign_in(
            engine=engine,
            settings=conf,
            name="alice",
            password="correct horse",
            address="10.0.0.9",
            now=t0,
        )
    user = sessions.sign_in(
        engine=engine,
        settings=conf,
        name="alice",
        password="correct horse",
        address="10.0.0.10",
        now=t0,
    )
    assert user.id == alice.id


def test_an_admin_unlocks_a_name(engine: Engine, alice: User) -> None:
    conf = settings(login_free_failures=1, login_delay_seconds=600)
    t0 = utcnow()
    with pytest.raises(AuthError, match="wrong password"):
        sessions.sign_in(engine=engine, settings=conf, name="alice", password="bad", now=t0)
    with pytest.raises(SignInDelayed):
        sessions.sign_in(
            engine=engine, settings=conf, name="alice", password="correct horse", now=t0
        )
    with db.session_scope(engine) as s:
        lena = make_user(s, "lena", role="lead")
        with pytest.raises(PermissionDenied):
            throttle.unlock(session=s, actor=lena, name="alice")
        assert throttle.unlock(session=s, actor=ADMIN, name="alice")
        assert not throttle.unlock(session=s, actor=ADMIN, name="alice")
    user = sessions.sign_in(
        engine=engine, settings=conf, name="alice", password="correct horse", now=t0
    )
    assert user.id == alice.id


def test_a_success_resets_the_failure_count(engine: Engine, alice: User) -> None:
    conf = settings(login_free_failures=2)
    t0 = utcnow()
    for i, password in enumerate(("bad", "correct horse", "bad")):
        try:
            sessions.sign_in(
                engine=engine,
                settings=conf,
                name="alice",
                password=password,
                now=t0 + timedelta(seconds=i),
            )
        except AuthError:
            pass
    user = sessions.sign_in(
        engine=engine,
        settings=conf,
        name="alice",
        password="correct horse",
        now=t0 + timedelta(seconds=5),
    )
    assert user.id == alice.id


@pytest.mark.parametrize(
    ("identity", "found"),
    [
        ({"email": "alice"}, True),
        ({"email": "nobody@example.org", "sub": "alice"}, True),
        ({"email": "nobody@example.org"}, False),
    ],
)
def test_oidc_identities_map_to_existing_users(
    engine: Engine, alice: User, identity: dict[str, str], found: bool
) -> None:
    with Session(engine) as s:
        if found:
            assert sessions.user_for_identity(session=s, identity=identity).id == alice.id
        else:
            with pytest.raises(AuthError, match="No annotate user for `nobody@example.org`"):
                sessions.user_for_identity(session=s, identity=identity)


def test_a_token_matches_only_the_user_it_was_issued_to_as_loaded(engine: Engine) -> None:
    # What a label submit checks without the database before its own transaction reads the
    # user back (app.context.cookie_still_matches).
    with db.session_scope(engine) as s:
        alice, bob = make_user(s, "alice"), make_user(s, "bob")
    token = sessions.issue_token(key=KEY, user=alice, now=1000.0)

    def matches(user: User, *, key: str = KEY, now: float = 1001.0, raw: str = token) -> bool:
        return sessions.token_matches(key=key, token=raw, max_age_s=HOUR, user=user, now=now)

    assert matches(alice)
    assert not matches(bob)
    assert not matches(alice, now=1000.0 + HOUR + 1)  # too old
    assert not matches(alice, key="other" * 8)
    assert not matches(alice, raw=token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
    signed_out = alice.model_copy(update={"session_generation": alice.session_generation + 1})
    assert not matches(signed_out)
    new_password = alice.model_copy(update={"password_hash": "another hash"})
    assert not matches(new_password)
