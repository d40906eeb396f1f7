"""api.routers.vocabulary: the words and colours of the pages (states, duties, clue and hotspot classes) from the Python enums."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.deps import allowed
from maps.export import HOT_COLOURS
from maps.heat.aggregate import EVENT_KIND_LABELS_ZH
from maps.heat.emerging import EMERGING_CLASSES
from maps.heat.events import INSPECTION_SOURCE, INSPECTION_SOURCE_LABEL_ZH
from maps.heat.heatmap import BIN_COLOURS, EMERGING_LABELS_ZH, HOT_CLASS_LABELS_ZH
from maps.heat.hotspots import CLASS_ORDER
from maps.layers import LAYER_LABELS_ZH, Layer
from supervision.models import CLUE_KIND_LABELS_ZH, CLUE_SEVERITY_LABELS_ZH, CLUE_SOURCE_LABELS_ZH
from supervision.permissions import Capability
from supervision.workflow import DUTY_LABELS_ZH, STATUS_LABELS_ZH, Duty, Status

router = APIRouter(tags=["词表"], dependencies=[Depends(allowed(Capability.VOCABULARY_READ))])


class Term(BaseModel):
    """One value of a vocabulary, what the pages call it and (for map classes) its colour."""

    value: str = Field(description="接口与数据库中使用的取值")
    label: str = Field(description="中文名称")
    colour: str | None = Field(default=None, description="地图上的颜色（#rrggbb），仅地图分类有")


class Vocabulary(BaseModel):
    """Every vocabulary the pages show, each in its display order."""

    task_statuses: list[Term] = Field(description="任务状态")
    duties: list[Term] = Field(description="“4+2” 职责")
    clue_kinds: list[Term] = Field(description="线索类别")
    clue_sources: list[Term] = Field(description="线索来源")
    clue_severities: list[Term] = Field(description="线索严重程度")
    clue_statuses: list[Term] = Field(description="线索状态（与其任务同一状态机）")
    event_kinds: list[Term] = Field(description="热力图事件类别")
    event_sources: list[Term] = Field(description="热力图事件来源")
    hot_classes: list[Term] = Field(description="热点分类（由冷到热），附颜色")
    emerging_classes: list[Term] = Field(description="新兴热点趋势类别")
    bin_colours: list[str] = Field(description="六边形图例各级颜色，由低到高")
    layers: list[Term] = Field(description="地图图层")


def _terms(
    labels: Mapping[str, str], order: tuple[str, ...] | None = None, colours: Mapping[str, str] | None = None
) -> list[Term]:
    values = order if order is not None else tuple(labels)
    return [Term(value=v, label=labels[v], colour=(colours or {}).get(v)) for v in values]


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """The vocabularies, built once from the enums and their label maps."""
    statuses = _terms({s.value: STATUS_LABELS_ZH[s] for s in Status})
    return Vocabulary(
        task_statuses=statuses,
        duties=_terms({d.value: DUTY_LABELS_ZH[d] for d in Duty}),
        clue_kinds=_terms(CLUE_KIND_LABELS_ZH),
        clue_sources=_terms(CLUE_SOURCE_LABELS_ZH),
        clue_severities=_terms(CLUE_SEVERITY_LABELS_ZH),
        clue_statuses=statuses,
        event_kinds=_terms(EVENT_KIND_LABELS_ZH),
        event_sources=_terms(CLUE_SOURCE_LABELS_ZH | {INSPECTION_SOURCE: INSPECTION_SOURCE_LABEL_ZH}),
        hot_classes=_terms(HOT_CLASS_LABELS_ZH, CLASS_ORDER, HOT_COLOURS),
        emerging_classes=_terms(EMERGING_LABELS_ZH, EMERGING_CLASSES),
        bin_colours=list(BIN_COLOURS),
        layers=_terms({layer.value: LAYER_LABELS_ZH[layer] for layer in Layer}),
    )


@router.get("/vocabulary", summary="词表：状态、职责、线索与热点分类的中文名称和颜色", response_model=Vocabulary)
def get_vocabulary() -> Vocabulary:
    """页面显示的全部词表（任务状态、职责、线索类别/来源/严重程度/状态、热点分类及颜色、趋势类别、图层），取自服务端的枚举。"""
    return vocabulary()
