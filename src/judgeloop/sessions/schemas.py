"""JSON Schemas of the exchange formats, generated from the pydantic models."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from judgeloop.models import CriterionCreate, HumanLabelCreate, SessionCreate

FORMAT_MODELS: dict[str, type[BaseModel]] = {
    "session": SessionCreate,
    "label": HumanLabelCreate,
    "criterion": CriterionCreate,
}


def json_schema(name: str) -> dict[str, Any]:
    """Return the JSON Schema of format ``name`` (session, label or criterion)."""
    model = FORMAT_MODELS[name]
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def json_schema_text(name: str) -> str:
    """The schema as the stable, indented text committed under docs/schemas/."""
    return json.dumps(json_schema(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
