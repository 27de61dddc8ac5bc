"""Shared by the tests of strongroom.api.shapes (``tests/api/test_shapes_*.py``).

botocore's service models of KMS and CloudHSM v2 (the source of the shapes under test), and
helpers that return the message of the SerializationException or ValidationException a request
body must raise.
"""

from __future__ import annotations

import base64

import pytest
from botocore.loaders import Loader

from strongroom.api.shapes import ServiceShapes
from strongroom.errors import AwsError

KMS_MODEL = Loader().load_service_model("kms", "service-2")
HSM_MODEL = Loader().load_service_model("cloudhsmv2", "service-2")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def error_of(shapes: ServiceShapes, operation: str, body: object) -> AwsError:
    with pytest.raises(AwsError) as caught:
        shapes.parse_input(operation, body)
    return caught.value


def validation(shapes: ServiceShapes, operation: str, body: object) -> str:
    error = error_of(shapes, operation, body)
    assert (error.code, error.status) == ("ValidationException", 400), error.message
    return error.message


def serialization(shapes: ServiceShapes, operation: str, body: object) -> str:
    error = error_of(shapes, operation, body)
    assert (error.code, error.status) == ("SerializationException", 400), error.message
    return error.message
