from fastapi import APIRouter, status

from gateway.deps import DatabaseDep
from gateway.errors import InvalidInput
from gateway.openapi import problem_responses
from gateway.users import service
from gateway.users.schemas import UserCreate, UserCreated

router = APIRouter(tags=["users"])


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    response_model=UserCreated,
    summary="Create a user",
    responses=problem_responses(InvalidInput),
)
async def create_user(body: UserCreate, database: DatabaseDep) -> UserCreated:
    """Create a user and return its id and access token (the token is shown only this once)."""
    user = await database.run(lambda session: service.create_user(session, name=body.name))
    return UserCreated(id=user.id, name=user.name, token=user.token)
