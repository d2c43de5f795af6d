"""The shared 'bad input fails fast' mechanism (pipelines.errors)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from airflow.sdk.exceptions import AirflowFailException

from pipelines.errors import BadInput, fails_fast


class BrokenFile(BadInput):
    pass


def test_bad_input_fails_the_task_without_retries_and_keeps_the_message():
    @fails_fast
    def parse(path: str) -> None:
        raise BrokenFile(f"{path}: row 3, column 'qty': 'x' is not a number")

    with pytest.raises(AirflowFailException, match=r"in\.csv: row 3, column 'qty'") as raised:
        parse("in.csv")
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # never the input


def test_other_errors_propagate_unchanged_so_airflow_retries_them():
    @fails_fast
    def fetch() -> None:
        raise TimeoutError("ESI did not answer")

    with pytest.raises(TimeoutError):
        fetch()


def test_the_decorated_function_keeps_its_signature_for_airflow_context_injection():
    import inspect

    @fails_fast
    def step(share: dict, params=None) -> int:
        return 1

    assert list(inspect.signature(step).parameters) == ["share", "params"]
    assert step({}) == 1


def test_the_module_does_not_import_airflow():
    code = "import sys, pipelines.errors; print('airflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_bad_input_error_of_the_pipelines_is_a_bad_input():
    from pipelines.covid.domain import SourceValidationError
    from pipelines.directory.domain import DirectoryFileError
    from pipelines.guard import LargeRemovalRefused, StalePlanRefused
    from pipelines.market.domain import PageValidationError
    from pipelines.market.esi import SnapshotChangedError, SuspectAnswerError, UnknownRegionError
    from pipelines.sources import SourceRefused, SourceUnavailable
    from pipelines.traffic.chunks import RangeError

    for error in (LargeRemovalRefused, StalePlanRefused, SourceValidationError, DirectoryFileError,
                  PageValidationError, SuspectAnswerError, UnknownRegionError, SourceRefused, RangeError):  # fmt: skip
        assert issubclass(error, BadInput), error
    # what a retry can cure is not bad input
    for retryable in (SnapshotChangedError, SourceUnavailable):
        assert not issubclass(retryable, BadInput), retryable


def test_dag_files_use_the_one_mechanism_not_their_own_wrappers():
    from tests.conftest import REPO

    for dag_file in (REPO / "dags").glob("*.py"):
        assert "AirflowFailException" not in dag_file.read_text(), f"{dag_file.name}: use @fails_fast"
