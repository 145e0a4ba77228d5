import unicodedata
import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _valid_name(value: str) -> str:
    name = value.strip()
    if not 1 <= len(name) <= 100:
        raise ValueError("name must be 1 to 100 characters after trimming whitespace")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise ValueError("name must not contain control characters")
    return name


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{"name": "Alice"}]})

    name: Annotated[
        str,
        Field(
            strict=True, description="1 to 100 characters after trimming; no control characters."
        ),
        AfterValidator(_valid_name),
    ]


class UserCreated(BaseModel):
    id: uuid.UUID
    name: str
    token: str = Field(description="The access token. Shown only here, once; keep it.")
