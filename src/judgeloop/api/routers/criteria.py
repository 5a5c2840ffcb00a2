"""Criteria: list them (any role), define them (engineers)."""

from fastapi import APIRouter, status

from judgeloop.api.deps import AnyRoleKey, EngineerKey, SessionDep, actor_of
from judgeloop.models import CriteriaPublic, CriterionCreate, CriterionPublic
from judgeloop.store import add_criteria, list_criteria

router = APIRouter(prefix="/v1/criteria", tags=["criteria"])


@router.get("", response_model=CriteriaPublic)
def read_criteria(db: SessionDep, key: AnyRoleKey) -> CriteriaPublic:
    """List every criterion with its labels, anchors and safety flag."""
    rows = list_criteria(db)
    data = [CriterionPublic.model_validate(row, from_attributes=True) for row in rows]
    return CriteriaPublic(data=data, count=len(data))


@router.post("", response_model=CriterionPublic, status_code=status.HTTP_201_CREATED)
def create_criterion(
    db: SessionDep, key: EngineerKey, criterion: CriterionCreate
) -> CriterionPublic:
    """Define a criterion; posting an identical one again returns it unchanged."""
    [(row, _created)] = add_criteria(db, [criterion], actor=actor_of(key))
    return CriterionPublic.model_validate(row, from_attributes=True)
