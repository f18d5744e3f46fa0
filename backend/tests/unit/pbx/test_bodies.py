"""The read model's typed bodies mirror the response models /docs shows."""

from __future__ import annotations

from typing import Any, get_type_hints

import pytest
from pydantic import BaseModel

from ispbx.api import schemas
from ispbx.pbx import bodies


@pytest.mark.parametrize(
    ("body", "model"),
    [
        (bodies.EnvelopeBody, schemas.Envelope),
        (bodies.ListRow, schemas.EndpointSummary),
        (bodies.EndpointListBody, schemas.EndpointList),
        (bodies.DetailSections, schemas.EndpointDetails),
        (bodies.EndpointBody, schemas.Endpoint),
        (bodies.EndpointConfigBody, schemas.EndpointConfig),
        (bodies.ProblemBody, schemas.ConfigProblem),
    ],
)
def test_each_body_has_exactly_the_fields_of_its_response_model(
    body: Any, model: type[BaseModel]
) -> None:
    assert set(get_type_hints(body)) == set(model.model_fields)
