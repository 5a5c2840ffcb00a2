"""API keys, for admins: list, create (the key is shown once), revoke."""

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from judgeloop.api.deps import AdminKey, RowId, SessionDep, actor_of
from judgeloop.models import ApiKeyPublic, ApiRole
from judgeloop.store import create_key, list_keys, revoke_key

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class ApiKeyCreate(BaseModel):
    """A key to create."""

    name: str = Field(min_length=1, max_length=200)
    role: ApiRole


class ApiKeyCreated(ApiKeyPublic):
    """A new key, with its secret: shown this once only."""

    key: str


class ApiKeysPublic(BaseModel):
    """All keys."""

    data: list[ApiKeyPublic]
    count: int


@router.get("", response_model=ApiKeysPublic)
def read_keys(db: SessionDep, key: AdminKey) -> ApiKeysPublic:
    """List keys (never their secrets)."""
    data = [ApiKeyPublic.model_validate(row, from_attributes=True) for row in list_keys(db)]
    return ApiKeysPublic(data=data, count=len(data))


@router.post("", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
def post_key(db: SessionDep, key: AdminKey, new_key: ApiKeyCreate) -> ApiKeyCreated:
    """Create a key; its secret is in this answer and nowhere else."""
    row, plaintext = create_key(db, role=new_key.role, name=new_key.name, actor=actor_of(key))
    public = ApiKeyPublic.model_validate(row, from_attributes=True)
    return ApiKeyCreated(**public.model_dump(), key=plaintext)


@router.delete("/{key_id}", response_model=ApiKeyPublic)
def delete_key(db: SessionDep, key: AdminKey, key_id: RowId) -> ApiKeyPublic:
    """Revoke a key; it stops working at once."""
    row = revoke_key(db, key_id, actor=actor_of(key))
    return ApiKeyPublic.model_validate(row, from_attributes=True)
