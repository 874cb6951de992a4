"""The conformance suite: import everything into a driver's test module with ``import *``."""

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
