"""The dashboard's routes, one module per page, under /ui."""

from fastapi import APIRouter

from accord.ui.routes import auth, customers, overview, quality, review, segments

router = APIRouter(prefix="/ui", include_in_schema=False)
for _module in (auth, overview, customers, review, segments, quality):
    router.include_router(_module.router)
