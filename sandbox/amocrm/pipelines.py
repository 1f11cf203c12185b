"""The lead pipelines of an emulated account (``GET /api/v4/leads/pipelines``).

Every account has one main pipeline with amoCRM's default stages; more can be added
(``ExtraPipeline``, from the account page or ``pipeline_add``). Shape after docs/amocrm-api.md
§6b (CONFIRMED-3P): every pipeline ends with the system stages 142 (won) and 143 (lost), and
starts with an uneditable «Неразобранное» stage while Unsorted is on. Ids are derived from the
account (or the extra pipeline's row), like the PHONE field's id, so they are stable across runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.amocrm.models import Account, ExtraPipeline

WON = 142
LOST = 143

# (name, color, type): type 1 = the Unsorted stage, 0 = any other (SDK StatusModel).
_OPEN_STAGES = [
    ("Первичный контакт", "#99ccff", 0),
    ("Переговоры", "#ffff99", 0),
    ("Принимают решение", "#ffcc66", 0),
    ("Согласование договора", "#ffcccc", 0),
]


@dataclass(frozen=True)
class Stage:
    id: int
    name: str
    sort: int
    is_editable: bool
    color: str
    type: int


@dataclass(frozen=True)
class Pipeline:
    id: int
    name: str
    is_unsorted_on: bool
    stages: tuple[Stage, ...]

    @property
    def open_stage_ids(self) -> set[int]:
        return {s.id for s in self.stages if s.id not in (WON, LOST)}

    @property
    def unsorted_stage(self) -> Stage | None:
        return next((s for s in self.stages if s.type == 1), None)

    @property
    def first_open_stage(self) -> Stage:
        # A lead created without status_id lands on the first stage after Unsorted.
        return next(s for s in self.stages if s.type == 0 and s.id not in (WON, LOST))


def _base(account: Account) -> int:
    return account.pk % 1_000_000


def main_pipeline(account: Account) -> Pipeline:
    pipeline_id = 7_000_000 + _base(account)
    stages: list[Stage] = []
    if account.is_unsorted_on:
        stages.append(
            Stage(40_000_000 + _base(account) * 10, "Неразобранное", 10, False, "#c1c1c1", 1)
        )
    for i, (name, color, kind) in enumerate(_OPEN_STAGES, start=1):
        stages.append(
            Stage(40_000_000 + _base(account) * 10 + i, name, 10 + 10 * i, True, color, kind)
        )
    stages.append(Stage(WON, "Успешно реализовано", 10000, False, "#CCFF66", 0))
    stages.append(Stage(LOST, "Закрыто и не реализовано", 11000, False, "#D5D8DB", 0))
    return Pipeline(
        id=pipeline_id,
        name="Воронка",
        is_unsorted_on=account.is_unsorted_on,
        stages=tuple(stages),
    )


def extra_pipeline(account: Account, extra: ExtraPipeline) -> Pipeline:
    base = 42_000_000 + extra.pk * 100
    stages: list[Stage] = []
    if account.is_unsorted_on:
        stages.append(Stage(base, "Неразобранное", 10, False, "#c1c1c1", 1))
    for i, name in enumerate(extra.stage_names, start=1):
        stages.append(Stage(base + i, str(name), 10 + 10 * i, True, "#99ccff", 0))
    stages.append(Stage(WON, "Успешно реализовано", 10000, False, "#CCFF66", 0))
    stages.append(Stage(LOST, "Закрыто и не реализовано", 11000, False, "#D5D8DB", 0))
    return Pipeline(
        id=7_500_000 + extra.pk,
        name=extra.name,
        is_unsorted_on=account.is_unsorted_on,
        stages=tuple(stages),
    )


def pipelines(account: Account) -> list[Pipeline]:
    extras = [extra_pipeline(account, e) for e in account.extra_pipelines.all()]
    return [main_pipeline(account), *extras]


def pipeline_get(account: Account, pipeline_id: int) -> Pipeline | None:
    return next((p for p in pipelines(account) if p.id == pipeline_id), None)


def pipeline_add(*, account: Account, name: str, stage_names: list[str]) -> Pipeline:
    """Another pipeline with these open stages (the emulator's page and tests use it)."""
    if not name.strip() or not stage_names:
        raise ValueError("A pipeline needs a name and at least one stage")
    extra = ExtraPipeline.objects.create(
        account=account, name=name.strip(), stage_names=[s.strip() for s in stage_names]
    )
    return extra_pipeline(account, extra)
