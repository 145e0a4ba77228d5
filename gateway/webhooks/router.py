"""``PUT``/``DELETE /users/<id>/webhook`` and the delivery log."""

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from gateway.deps import CurrentUser, DatabaseDep, SettingsDep
from gateway.errors import InvalidCredentials, WebhookNotFound, WebhookTargetRefused
from gateway.models import WebhookDelivery
from gateway.openapi import TOKEN_SECURITY, problem_responses
from gateway.records.links import public_base_url
from gateway.webhooks import service
from gateway.webhooks.schemas import DeliveryList, DeliveryOut, WebhookIn, WebhookOut
from servicekit.errors import InvalidInput

router = APIRouter(tags=["webhooks"])

SIGNING = (
    'Each delivery is a `POST` of `{"type", "timestamp", "data"}` signed per the Standard '
    "Webhooks specification: `webhook-id` (the same on every attempt of one event), "
    "`webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`. Events: "
    "`record.created` (`data`: the record, as `POST /record` answers it) and `job.failed` "
    "(`data`: the job, as `GET /jobs/<id>` shows it). A 2xx answer within "
    "`WEBHOOK_TIMEOUT_SECONDS` (10 s) delivers it; anything else (redirects included: they are "
    "not followed) is retried after `WEBHOOK_RETRY_SECONDS` (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, "
    "10 h, with jitter)."
)


@router.put(
    "/users/{user_id}/webhook",
    response_model=WebhookOut,
    summary="Set the user's webhook (again: a new secret)",
    description=(
        "Needs the user's token. The URL must be `http(s)://` and its host must resolve to "
        "public addresses only (not loopback, private, link-local, …): else `422` "
        "`…/webhook-target-refused`. The check runs again before every delivery attempt. "
        "The answer's `secret` verifies the deliveries; `PUT` again rotates it (pending "
        "deliveries are then signed with the new one). " + SIGNING
    ),
    openapi_extra=TOKEN_SECURITY,
    responses=problem_responses(InvalidCredentials, InvalidInput, WebhookTargetRefused),
)
async def set_webhook(
    request: Request,
    body: WebhookIn,
    user_id: CurrentUser,
    settings: SettingsDep,
    database: DatabaseDep,
) -> WebhookOut:
    webhook = await service.set_webhook(
        database,
        user_id=user_id,
        url=body.url,
        base_url=public_base_url(request, settings),
        timeout_seconds=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private,
    )
    return WebhookOut(url=webhook.url, secret=webhook.secret)


@router.delete(
    "/users/{user_id}/webhook",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove the user's webhook",
    description="Needs the user's token. Deliveries still pending are not attempted again.",
    openapi_extra=TOKEN_SECURITY,
    responses={
        204: {"description": "Removed."},
        **problem_responses(InvalidCredentials, WebhookNotFound),
    },
)
async def delete_webhook(user_id: CurrentUser, database: DatabaseDep) -> Response:
    await service.remove_webhook(database, user_id=user_id)
    return Response(status_code=204)


@router.get(
    "/users/{user_id}/webhook/deliveries",
    response_model=DeliveryList,
    summary="The latest webhook deliveries, each with its attempts",
    description=(
        "Needs the user's token. Newest first: event, `webhook-id`, status (`pending`, "
        "`succeeded`, `failed`), attempts (each with its time and the receiver's status or the "
        "error), the next attempt's time, and the body as sent."
    ),
    openapi_extra=TOKEN_SECURITY,
    responses=problem_responses(InvalidCredentials, InvalidInput),
)
async def list_deliveries(
    user_id: CurrentUser,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=100, description="How many.", examples=[20])] = 50,
) -> DeliveryList:
    deliveries = await service.latest_deliveries(database, user_id=user_id, limit=limit)
    return DeliveryList(items=[_delivery_out(delivery) for delivery in deliveries])


def _delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(
        {
            "id": delivery.id,
            "event": delivery.event,
            "webhook_id": delivery.webhook_id,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "last_status": delivery.last_status,
            "last_error": delivery.last_error,
            "next_attempt_at": delivery.next_attempt_at,
            "created_at": delivery.created_at,
            "updated_at": delivery.updated_at,
            "attempt_log": delivery.attempt_log,
            "payload": json.loads(delivery.payload),
        }
    )
