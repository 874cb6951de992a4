"""The conformance suite: import everything into a driver's test module with ``import *``.

``import *`` takes each module's ``__all__``: its test classes, module-level tests and the
fixtures they need, nothing else.
"""

from types import ModuleType

from .test_batching import *
from .test_chords import *
from .test_cleanup import *
from .test_columns import *
from .test_concurrency import *
from .test_exists import *
from .test_groups import *
from .test_history import *
from .test_lifeline import *
from .test_pending import *
from .test_reads import *
from .test_retention import *
from .test_revoke import *
from .test_state_precedence import *
from .test_statements import *
from .test_store_result import *
from .test_transient_errors import *

#: Every suite module (the imports above bound each one in this package), by name.
MODULES = tuple(
    value
    for name, value in sorted(globals().items())
    if name.startswith("test_") and isinstance(value, ModuleType)
)

__all__ = [name for module in MODULES for name in module.__all__]
