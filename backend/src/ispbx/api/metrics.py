"""GET /metrics: Prometheus' text format, rendered at the scrape from live state."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ispbx.api.dependencies import SECURED, MetricsCallerDep
from ispbx.api.schemas import ErrorDetail
from ispbx.metrics.exporter import CONTENT_TYPE, MetricsExporter

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "the Prometheus text format"},
        401: {"model": ErrorDetail, "description": "no or unknown API token"},
    },
    openapi_extra=SECURED,
)
async def get_metrics(request: Request, _caller: MetricsCallerDep) -> Response:
    """Every metric family (see the README's Metrics section); a metrics, viewer or admin token."""
    exporter: MetricsExporter = request.app.state.metrics
    return Response(exporter.render(), media_type=CONTENT_TYPE)
