"""The operator-account use cases against in-memory fakes of Auth's admin API and the operators table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from neiromatrius.core.operators import AuthUser, OperatorAccounts, OperatorRow, Role
from neiromatrius.errors import AlreadyExists, InputError, NotFound, StoreError


class FakeAuthAdmin:
    def __init__(self) -> None:
        self.accounts: dict[str, tuple[AuthUser, str]] = {}  # id -> (user, password)
        self.banned: set[str] = set()
        self.fail_bans = False

    async def users(self) -> list[AuthUser]:
        return [user for user, _ in self.accounts.values()]

    async def find_user(self, email: str) -> AuthUser | None:
        return next((u for u, _ in self.accounts.values() if u.email.lower() == email.lower()), None)

    async def create_user(self, email: str, password: str) -> AuthUser:
        user = AuthUser(id=str(uuid.uuid4()), email=email)
        self.accounts[user.id] = (user, password)
        return user

    async def delete_user(self, user_id: str) -> None:
        del self.accounts[user_id]

    async def set_banned(self, user_id: str, banned: bool) -> None:
        if self.fail_bans:
            raise StoreError("Auth: 503 while updating the user")
        if banned:
            self.banned.add(user_id)
        else:
            self.banned.discard(user_id)


class FakeOperatorDirectory:
    def __init__(self) -> None:
        self.rows: dict[str, OperatorRow] = {}
        self.fail_adds = False

    async def get(self, user_id: str) -> OperatorRow | None:
        return self.rows.get(user_id)

    async def all(self) -> list[OperatorRow]:
        return list(self.rows.values())

    async def add(self, user_id: str, role: Role, display_name: str | None) -> OperatorRow:
        if self.fail_adds:
            raise StoreError("operators: 57014 canceling statement")
        row = OperatorRow(
            user_id=user_id, role=role, active=True, display_name=display_name, created_at=datetime.now(UTC)
        )
        self.rows[user_id] = row
        return row

    async def set_active(self, user_id: str, active: bool) -> OperatorRow:
        self.rows[user_id] = self.rows[user_id].model_copy(update={"active": active})
        return self.rows[user_id]


@pytest.fixture
def auth() -> FakeAuthAdmin:
    return FakeAuthAdmin()


@pytest.fixture
def directory() -> FakeOperatorDirectory:
    return FakeOperatorDirectory()


@pytest.fixture
def accounts(auth: FakeAuthAdmin, directory: FakeOperatorDirectory) -> OperatorAccounts:
    return OperatorAccounts(auth, directory)


async def test_add_generates_a_password_once_and_normalises_the_email(
    accounts: OperatorAccounts, auth: FakeAuthAdmin
) -> None:
    added = await accounts.add("  Ann@Example.COM ", Role.ADMIN, "Ann", None)
    assert (added.operator.email, added.operator.role, added.operator.active) == ("ann@example.com", Role.ADMIN, True)
    assert added.generated_password is not None and len(added.generated_password) >= 20
    [(user, password)] = auth.accounts.values()
    assert (user.email, password) == ("ann@example.com", added.generated_password)


async def test_add_with_a_given_password_prints_none(accounts: OperatorAccounts, auth: FakeAuthAdmin) -> None:
    added = await accounts.add("bob@example.com", Role.AGENT, None, "correct horse")
    assert added.generated_password is None
    assert [password for _, password in auth.accounts.values()] == ["correct horse"]


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [("not-an-email", None, "email"), ("a@b.c", "short", "password"), ("a@b.c", "x" * 73, "password")],
)
async def test_bad_input_names_its_field_and_writes_nothing(
    accounts: OperatorAccounts, auth: FakeAuthAdmin, email: str, password: str | None, field: str
) -> None:
    with pytest.raises(InputError) as info:
        await accounts.add(email, Role.AGENT, None, password)
    assert info.value.field == field
    assert auth.accounts == {}


async def test_an_existing_operator_is_refused(accounts: OperatorAccounts) -> None:
    await accounts.add("ann@example.com", Role.ADMIN, None, None)
    with pytest.raises(AlreadyExists, match="is an operator already"):
        await accounts.add("ANN@example.com", Role.AGENT, None, None)


async def test_an_account_without_an_operators_row_is_attached_with_its_password_kept(
    accounts: OperatorAccounts, auth: FakeAuthAdmin
) -> None:
    user = await auth.create_user("cy@example.com", "their own")
    added = await accounts.add("cy@example.com", Role.AGENT, "Cy", None)
    assert (added.existing_account, added.generated_password, added.operator.user_id) == (True, None, user.id)
    assert auth.accounts[user.id][1] == "their own"


async def test_a_password_for_an_existing_account_is_refused_not_ignored(
    accounts: OperatorAccounts, auth: FakeAuthAdmin, directory: FakeOperatorDirectory
) -> None:
    await auth.create_user("cy@example.com", "their own")
    with pytest.raises(AlreadyExists, match="has an Auth account already"):
        await accounts.add("cy@example.com", Role.AGENT, None, "a new one")
    assert directory.rows == {}


async def test_no_account_is_left_behind_when_the_operators_row_fails(
    accounts: OperatorAccounts, auth: FakeAuthAdmin, directory: FakeOperatorDirectory
) -> None:
    directory.fail_adds = True
    with pytest.raises(StoreError):
        await accounts.add("dee@example.com", Role.AGENT, None, None)
    assert auth.accounts == {}


async def test_deactivate_and_activate_by_email_and_unknown_emails(
    accounts: OperatorAccounts, auth: FakeAuthAdmin
) -> None:
    added = await accounts.add("eve@example.com", Role.AGENT, None, None)
    assert (await accounts.set_active("EVE@example.com", False)).active is False
    assert auth.banned == {added.operator.user_id}  # no sign-in either
    assert (await accounts.set_active("eve@example.com", True)).active is True
    assert auth.banned == set()
    with pytest.raises(NotFound, match=r"no operator with the email nobody@example\.com"):
        await accounts.set_active("nobody@example.com", False)


async def test_access_ends_before_auth_is_asked_and_returns_only_after_it_answered(
    accounts: OperatorAccounts, auth: FakeAuthAdmin, directory: FakeOperatorDirectory
) -> None:
    added = await accounts.add("fay@example.com", Role.AGENT, None, None)
    user_id = added.operator.user_id
    auth.fail_bans = True

    with pytest.raises(StoreError):
        await accounts.set_active("fay@example.com", False)
    assert directory.rows[user_id].active is False  # RLS already refuses them, though the ban failed

    auth.fail_bans = False
    await accounts.set_active("fay@example.com", False)  # the retry repairs the half-done call
    assert auth.banned == {user_id}

    auth.fail_bans = True
    with pytest.raises(StoreError):
        await accounts.set_active("fay@example.com", True)
    assert directory.rows[user_id].active is False  # still banned, so still inactive


async def test_list_joins_emails_and_sorts_by_them(accounts: OperatorAccounts) -> None:
    for email in ("zed@example.com", "amy@example.com"):
        await accounts.add(email, Role.AGENT, None, None)
    assert [o.email for o in await accounts.list()] == ["amy@example.com", "zed@example.com"]
