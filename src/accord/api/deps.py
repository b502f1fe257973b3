"""FastAPI dependencies for store access; auth dependencies are in ``auth.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from accord.api.store_worker import StoreWorker


async def get_store_worker(request: Request) -> StoreWorker:
    """This process's store worker (opened in the app's lifespan)."""
    return request.app.state.store_worker


StoreWorkerDep = Annotated[StoreWorker, Depends(get_store_worker)]
