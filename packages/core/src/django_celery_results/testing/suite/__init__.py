"""The conformance suite: import everything into a driver's test module with ``import *``.

``import *`` takes each module's ``__all__``: its test classes, module-level tests and the
fixtures they need, nothing else.
"""

from . import (
    test_batching,
    test_chords,
    test_cleanup,
    test_columns,
    test_concurrency,
    test_exists,
    test_groups,
    test_pending,
    test_reads,
    test_revoke,
    test_state_precedence,
    test_stats,
    test_store_result,
    test_transient_errors,
)
from .test_batching import *
from .test_chords import *
from .test_cleanup import *
from .test_columns import *
from .test_concurrency import *
from .test_exists import *
from .test_groups import *
from .test_pending import *
from .test_reads import *
from .test_revoke import *
from .test_state_precedence import *
from .test_stats import *
from .test_store_result import *
from .test_transient_errors import *

#: Every suite module, in the order above.
MODULES = (
    test_batching,
    test_chords,
    test_cleanup,
    test_columns,
    test_concurrency,
    test_exists,
    test_groups,
    test_pending,
    test_reads,
    test_revoke,
    test_state_precedence,
    test_stats,
    test_store_result,
    test_transient_errors,
)

__all__ = [name for module in MODULES for name in module.__all__]
