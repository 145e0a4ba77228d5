"""What routes may ask for: the clients the lifespan built, as Annotated dependencies."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from gateway.config import Settings
from gateway.db import Database
from gateway.storage import ObjectStore
from gateway.transcoder_client import TranscoderClient


@dataclass(frozen=True, slots=True)
class Resources:
    """Built once per process in the lifespan, closed at shutdown."""

    settings: Settings
    database: Database
    store: ObjectStore
    transcoder: TranscoderClient


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


def get_settings(request: Request) -> Settings:
    return get_resources(request).settings


def get_database(request: Request) -> Database:
    return get_resources(request).database


def get_store(request: Request) -> ObjectStore:
    return get_resources(request).store


def get_transcoder(request: Request) -> TranscoderClient:
    return get_resources(request).transcoder


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
TranscoderDep = Annotated[TranscoderClient, Depends(get_transcoder)]
