"""traffic_repartition's params: start/end take an ISO date or date-time, the form keeps a picker.

Validated as Airflow validates a trigger: the DAG file's Param (task SDK) and the
serialized Param the API server checks a trigger form or REST call against.
"""

from __future__ import annotations

import pytest

from tests.conftest import load_dag

ACCEPTED = ["2024-12-28", "2025-01-05", "2024-12-28T00:00:00Z", "2024-12-28T13:45:00+01:00", None]
REFUSED = ["yesterday", "2024-13-01", "2024-12-28 25:00", "28/12/2024", 20241228]


@pytest.fixture(scope="module")
def dag(airflow_db):
    return load_dag("traffic_repartition")


@pytest.fixture(scope="module")
def server_params(dag):
    """The params as the API server has them: after DAG serialization."""
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.from_dict(DagSerialization.to_dict(dag)).params


@pytest.mark.parametrize("name", ["start", "end"])
@pytest.mark.parametrize("value", ACCEPTED)
def test_an_iso_date_or_date_time_is_accepted(dag, server_params, name, value):
    other = "end" if name == "start" else "start"
    assert dag.params.get_param(name).resolve(value) == value
    trigger = server_params.deep_merge({name: value, other: value}).validate()
    assert trigger[name] == value


@pytest.mark.parametrize("name", ["start", "end"])
@pytest.mark.parametrize("value", REFUSED)
def test_anything_else_is_refused(dag, server_params, name, value):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        dag.params.get_param(name).resolve(value)
    with pytest.raises(ParamValidationError, match=f"Invalid input for param {name}"):
        server_params.deep_merge({name: value}).validate()


@pytest.mark.parametrize("name", ["start", "end"])
def test_the_trigger_form_still_offers_a_date_time_picker(server_params, name):
    # Airflow 3.3's form picks the widget from the top-level type (first non-null) and
    # format: "date-time" renders a datetime picker; anyOf alone would give a text box.
    schema = server_params.get_param(name).schema
    assert schema["format"] == "date-time"
    assert [t for t in schema["type"] if t != "null"] == ["string"]


def test_delivery_margin_is_a_bounded_integer_param(dag):
    from airflow.sdk.exceptions import ParamValidationError

    param = dag.params.get_param("delivery_margin_minutes")
    assert param.resolve(param.value) == 5
    for bad in (-1, 61, "5"):
        with pytest.raises(ParamValidationError):
            param.resolve(bad)
