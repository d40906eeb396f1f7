"""supervision.privacy: the masks (property tests) and the one table of who sees which personal field in clear."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from supervision.paging import Page
from supervision.privacy import (
    COMPOUND_SURNAMES,
    MASK,
    PersonalField,
    Viewer,
    mask_account,
    mask_caller,
    mask_email,
    mask_name,
    mask_phone,
    sees_clear,
    shown,
)
from supervision.scope import Scope

HAN = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
PHONES = st.text(alphabet="0123456789", min_size=0, max_size=20)
NAMES = st.text(alphabet=HAN, min_size=0, max_size=8)

HOME_GRID = "441900003001002"
HOME_COMMUNITY = "441900003001"
HOME_TOWN = "441900003000"


@given(PHONES)
def test_a_masked_phone_keeps_its_length_and_hides_every_masked_digit(phone: str) -> None:
    masked = mask_phone(phone)
    assert len(masked) == len(phone)
    kept = [i for i, c in enumerate(masked) if c != MASK]
    assert all(masked[i] == phone[i] for i in kept)
    # At most 7 characters are ever shown (2 of a short number), and something is always hidden.
    assert len(kept) <= (7 if len(phone) >= 8 else 2)
    assert not phone or MASK in masked
    if len(phone) >= 8:
        assert masked[3:-4] == MASK * (len(phone) - 7)


@given(PHONES)
def test_masking_a_phone_twice_changes_nothing(phone: str) -> None:
    assert mask_phone(mask_phone(phone)) == mask_phone(phone)


def test_a_mobile_number_masks_as_the_usual_138_stars_5678() -> None:
    assert mask_phone("13812345678") == "138****5678"


@given(NAMES)
def test_a_masked_name_keeps_only_its_surname(name: str) -> None:
    masked = mask_name(name)
    assert len(masked) == len(name)
    if len(name) >= 2:
        keep = 2 if len(name) > 2 and name[:2] in COMPOUND_SURNAMES else 1
        assert masked[:keep] == name[:keep]
        assert masked[keep:] == MASK * (len(name) - keep)
    else:
        assert masked == MASK * len(name)


@given(NAMES)
def test_masking_a_name_twice_changes_nothing(name: str) -> None:
    assert mask_name(mask_name(name)) == mask_name(name)


def test_chinese_names_keep_the_surname_and_compound_surnames_whole() -> None:
    assert mask_name("张三") == "张*"
    assert mask_name("张三丰") == "张**"
    assert mask_name("欧阳娜娜") == "欧阳**"
    assert mask_name("欧阳") == "欧*"


@given(st.text(min_size=0, max_size=20))
def test_a_masked_persons_account_keeps_its_kind_and_hides_the_rest_of_its_name(name: str) -> None:
    account = f"user:{name}"
    masked = mask_account(account)
    assert masked.startswith("user:") and len(masked) == len(account)
    assert mask_account(masked) == masked
    hidden = masked[len("user:") + min(len(name), 2) :]
    assert set(hidden) <= {MASK}


@given(st.sampled_from(["key:hotline-12345", "system", "sim:worker", "key:"]))
def test_a_systems_audit_name_is_not_a_persons_and_stays(account: str) -> None:
    assert mask_account(account) == account


def _viewer(role: str, scope: Scope, account: str | None = None) -> Viewer:
    return Viewer(role, scope, account)


def test_the_table_gives_clear_data_to_the_managers_and_the_areas_leads_only() -> None:
    leader = _viewer("town_leader", Scope("town", HOME_TOWN))
    dispatcher = _viewer("dispatcher", Scope("community", HOME_COMMUNITY))
    other = _viewer("dispatcher", Scope("community", "441900003002"))
    for kind in set(PersonalField) - {PersonalField.CALLER}:  # the caller's contact has a rule of its own (below)
        assert sees_clear(_viewer("command_centre", Scope("city")), kind, place=HOME_GRID)
        assert sees_clear(_viewer("admin", Scope("city")), kind, place=None)
        assert sees_clear(leader, kind, place=HOME_GRID)
        assert sees_clear(dispatcher, kind, place=HOME_GRID)
        assert not sees_clear(other, kind, place=HOME_GRID)
        assert not sees_clear(_viewer("department_officer", Scope("department", "tobacco")), kind, place=HOME_GRID)
        assert not sees_clear(_viewer("api_client", Scope("city")), kind, place=HOME_GRID)
        assert not sees_clear(_viewer("grid_worker", Scope("worker", "7", HOME_TOWN)), kind, place=HOME_GRID)
        assert sees_clear(_viewer("grid_worker", Scope("worker", "7", HOME_TOWN)), kind, place=HOME_GRID, own=True)
        assert not sees_clear(_viewer("no_such_role", Scope("city")), kind, place=HOME_GRID)


@dataclass(frozen=True)
class _Task:
    id: int
    grid_code: str
    worker_id: int | None
    worker_name: str | None


@dataclass(frozen=True)
class _Photo:
    id: int
    uploaded_by: str


@dataclass(frozen=True)
class _Clue:
    id: int
    grid_code: str
    reported_by: str | None
    photos: list[_Photo]


def test_shown_masks_a_page_of_tasks_for_an_officer_and_a_worker_sees_their_own_name() -> None:
    page = Page(items=[_Task(1, HOME_GRID, 7, "李小龙"), _Task(2, HOME_GRID, 8, "王五")], total=2, next=None)
    officer = shown(page, _viewer("department_officer", Scope("department", "tobacco")))
    assert [t.worker_name for t in officer.items] == ["李**", "王*"]
    worker = shown(page, _viewer("grid_worker", Scope("worker", "7", HOME_TOWN)))
    assert [t.worker_name for t in worker.items] == ["李小龙", "王*"]
    centre = shown(page, _viewer("command_centre", Scope("city")))
    assert centre == page


def test_shown_masks_a_clues_reporter_and_its_photos_uploaders_but_not_ones_own() -> None:
    clue = _Clue(1, HOME_GRID, "user:zhangsan", [_Photo(1, "user:zhangsan"), _Photo(2, "user:lisi")])
    officer = shown(clue, _viewer("department_officer", Scope("department", "tobacco"), "user:officer"))
    assert officer.reported_by == "user:z*******"
    assert [p.uploaded_by for p in officer.photos] == ["user:z*******", "user:l***"]
    lisi = shown(clue, _viewer("grid_worker", Scope("worker", "8", HOME_TOWN), "user:lisi"))
    assert lisi.reported_by == "user:z*******" and lisi.photos[1].uploaded_by == "user:lisi"
    assert shown([clue], _viewer("dispatcher", Scope("community", HOME_COMMUNITY))) == [clue]


@dataclass(frozen=True)
class _Entry:
    id: int
    actor: str


def test_shown_masks_the_actors_of_a_history_read_in_scope_but_not_the_areas_lead_nor_oneself() -> None:
    entries = [_Entry(1, "user:wangwu"), _Entry(2, "system"), _Entry(3, "user:officer")]
    officer = shown(
        entries, _viewer("department_officer", Scope("department", "tobacco"), "user:officer"), read_in_scope=True
    )
    assert [e.actor for e in officer] == ["user:w*****", "system", "user:officer"]
    dispatcher = _viewer("dispatcher", Scope("community", HOME_COMMUNITY), "user:d")
    assert shown(entries, dispatcher, read_in_scope=True) == entries
    assert [e.actor for e in shown(entries, dispatcher)] == ["user:w*****", "system", "user:o******"]


# ------------------------------------------------------------------ a 12345 hotline caller's contact (fix round B)

CALLER = "\n\n【来电人信息（不公开）】姓名：王小明；电话：13812345678；邮箱：wangxm@example.cn；附件：http://x/1.jpg"


@dataclass(frozen=True)
class _HotlineClue:
    id: int
    grid_code: str
    department_code: str | None
    description: str


def test_the_callers_contact_is_clear_to_the_managers_and_the_handling_departments_officers_only() -> None:
    market = _viewer("department_officer", Scope("department", "market_supervision"))
    assert sees_clear(market, PersonalField.CALLER, place="market_supervision")
    assert not sees_clear(market, PersonalField.CALLER, place="tobacco")
    assert not sees_clear(market, PersonalField.CALLER, place=None)
    for role, scope in (("command_centre", Scope("city")), ("admin", Scope("city"))):
        assert sees_clear(_viewer(role, scope), PersonalField.CALLER, place="tobacco")
    for role, scope in (
        ("town_leader", Scope("town", HOME_TOWN)),
        ("dispatcher", Scope("community", HOME_COMMUNITY)),
        ("grid_worker", Scope("worker", "7", HOME_TOWN)),
        ("api_client", Scope("city")),
        ("hotline", Scope("city")),
    ):
        assert not sees_clear(_viewer(role, scope), PersonalField.CALLER, place="market_supervision"), role


def test_shown_masks_a_hotline_clues_caller_but_not_for_its_departments_officer() -> None:
    clue = _HotlineClue(1, HOME_GRID, "market_supervision", "有无证餐饮" + CALLER)
    leader = shown(clue, _viewer("town_leader", Scope("town", HOME_TOWN)))
    assert leader.description == (
        "有无证餐饮\n\n【来电人信息（不公开）】姓名：王**；电话：138****5678；邮箱：w*****@example.cn；附件："
        + "*" * 14
    )
    assert "13812345678" not in leader.description and "王小明" not in leader.description
    officer = shown(clue, _viewer("department_officer", Scope("department", "market_supervision")))
    assert officer.description == clue.description
    assert shown(clue, _viewer("command_centre", Scope("city"))) == clue
    field = _HotlineClue(2, HOME_GRID, "tobacco", "没有来电人的描述")
    assert shown(field, _viewer("town_leader", Scope("town", HOME_TOWN))) == field


CONTACT = st.text(alphabet=st.characters(blacklist_characters="*；："), max_size=30)


@given(CONTACT, CONTACT, CONTACT)
def test_masking_a_callers_block_hides_every_value_and_twice_changes_nothing(name: str, phone: str, email: str) -> None:
    block = f"姓名：{name}；电话：{phone}；邮箱：{email}"
    description = "描述\n\n【来电人信息（不公开）】" + block
    masked = mask_caller(description)
    assert len(masked) == len(description)
    assert mask_caller(masked) == masked
    public, _, rest = masked.partition("【来电人信息（不公开）】")
    assert public == "描述\n\n"
    # No value longer than the characters a mask keeps (the surname; 3 + 4 of a phone; an email's first) survives.
    for value in (name, phone, email):
        if len(value) > 8:
            assert value not in rest


def test_an_email_keeps_its_first_character_and_its_domain() -> None:
    assert mask_email("wangxm@example.cn") == "w*****@example.cn"
    assert mask_email("not-an-email") == "*" * 12
