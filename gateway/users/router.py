from fastapi import APIRouter, status

from gateway.deps import DatabaseDep
from gateway.openapi import problem_responses
from gateway.users import service
from gateway.users.schemas import UserCreate, UserCreated
from servicekit.errors import InvalidInput

router = APIRouter(tags=["users"])


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    response_model=UserCreated,
    summary="Create a user",
    description=(
        "`name`: 1 to 100 characters after trimming surrounding whitespace, no control "
        "characters; names need not be unique. The answer holds the user's access token: it is "
        "shown only this once (the server keeps only a hash)."
    ),
    responses={
        201: {
            "description": "Created: the user's id and access token.",
            "content": {
                "application/json": {
                    "example": {
                        "id": "0b7c9a1e-3f52-4d6a-8e21-5c4b3a291f00",
                        "name": "Alice",
                        "token": "5d1e8f3a-2b4c-4d6e-9f01-a2b3c4d5e6f7",
                    }
                }
            },
        },
        **problem_responses(InvalidInput),
    },
)
async def create_user(body: UserCreate, database: DatabaseDep) -> UserCreated:
    """Create a user and return its id and access token (the token is shown only this once)."""
    user = await database.run(lambda session: service.create_user(session, name=body.name))
    return UserCreated(id=user.id, name=user.name, token=user.token)
