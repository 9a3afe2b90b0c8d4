"""The contract suites live in plain modules (not ``test_*``, so that pytest does not collect a
base class on its own): have pytest rewrite their asserts as it does a test module's."""

import pytest

pytest.register_assert_rewrite(
    "tests.contract.queue_contract",
    "tests.contract.queue_fifo_contract",
    "tests.contract.index_contract",
)
