"""The pages' words and colours come from the server's enums: GET /v1/vocabulary, and no copy in the scripts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.routers.vocabulary import Vocabulary
from maps.export import HOT_COLOURS
from maps.heat.emerging import EMERGING_CLASSES
from maps.heat.hotspots import CLASS_ORDER
from maps.page import STATIC_DIR
from supervision.workflow import Duty, Status
from tests.support.accounts import bearer, make_users

pytestmark = pytest.mark.db

CJK = re.compile(r"[\u3400-\u9fff]")


@pytest.fixture(scope="module", autouse=True)
def reader(engine: Engine) -> None:
    with engine.begin() as conn:
        make_users(conn, {"reader": ("command_centre", None)})


def _signed_in(client: TestClient) -> dict[str, str]:
    return bearer(client, "reader")


def test_the_vocabulary_needs_a_signed_in_caller(client: TestClient) -> None:
    answer = client.get("/v1/vocabulary")
    assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"


def test_every_state_duty_and_class_has_its_chinese_name_and_colour(client: TestClient) -> None:
    answer = client.get("/v1/vocabulary", headers=_signed_in(client))
    assert answer.status_code == 200
    vocabulary = Vocabulary.model_validate(answer.json())
    assert [t.value for t in vocabulary.task_statuses] == [s.value for s in Status]
    assert [t.value for t in vocabulary.duties] == [d.value for d in Duty]
    assert {t.value: t.label for t in vocabulary.task_statuses}["closed"] == "已办结"
    assert [t.value for t in vocabulary.hot_classes] == list(CLASS_ORDER)
    assert {t.value: t.colour for t in vocabulary.hot_classes} == HOT_COLOURS
    assert [t.value for t in vocabulary.emerging_classes] == list(EMERGING_CLASSES)
    assert {t.value for t in vocabulary.event_sources} == {"field", "hotline", "inspection"}
    # A clue posted on the dashboard by the command centre or a dispatcher is a field report too: 现场上报, not
    # 网格员上报; the code stays `field`.
    assert {t.value: t.label for t in vocabulary.clue_sources} == {"field": "现场上报", "hotline": "热线"}
    assert {t.value: t.label for t in vocabulary.event_sources}["field"] == "现场上报"
    assert {t.value for t in vocabulary.clue_severities} == {"normal", "severe"}
    assert [t.value for t in vocabulary.layers] == ["towns", "communities", "grids"]
    everything = [
        term for name in Vocabulary.model_fields if name != "bin_colours" for term in getattr(vocabulary, name)
    ]
    assert all(CJK.search(term.label) for term in everything), "every label is Chinese"
    assert vocabulary.bin_colours and all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in vocabulary.bin_colours)


def test_the_page_modules_are_javascript_and_hold_no_copy_of_the_vocabulary(client: TestClient) -> None:
    modules = sorted(p for p in STATIC_DIR.rglob("*.js") if "vendor" not in p.parts)
    assert {"dashboard/main.js", "heatmap.js", "clues.js", "lib/api.js", "lib/vocab.js"} <= {
        p.relative_to(STATIC_DIR).as_posix() for p in modules
    }
    for module in modules:
        served = client.get(f"/static/{module.relative_to(STATIC_DIR).as_posix()}")
        # Browsers run an ES module only when it is served with a JavaScript MIME type.
        assert served.status_code == 200 and served.headers["content-type"].startswith("text/javascript")
    scripts = "\n".join(Path(p).read_text(encoding="utf-8") for p in modules)
    vocabulary = Vocabulary.model_validate(client.get("/v1/vocabulary", headers=_signed_in(client)).json())
    terms = (*vocabulary.task_statuses, *vocabulary.duties, *vocabulary.hot_classes, *vocabulary.emerging_classes)
    words = [*HOT_COLOURS.values(), *vocabulary.bin_colours, *(t.label for t in terms)]
    copies = [word for word in words if word in scripts]
    assert copies == [], "labels and colours come from GET /v1/vocabulary, not from copies in the scripts"
