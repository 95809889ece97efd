"""Many cameras across machines on Ray (``dfstream run --engine ray``; the ``dfstream[ray]`` extra).

Camera workers (``worker.py``) run the single-machine pipeline minus model A and the clip encoder,
which shared scorers (``scorer.py``) run batched over the crops of every worker; the driver
(``driver.py``) places them (``placement.py``) and gathers records and events into one stream.
Frames never cross the network: crops go to a scorer, records and events come back.
"""

from __future__ import annotations

from types import ModuleType

from dfstream.stream.contract.exceptions import DfstreamError

RAY_EXTRA_HINT = "pip install 'dfstream[ray]'"
NAMESPACE = "dfstream"
"""Workers find their scorer by name in this namespace; each run's scorers carry the run's id."""


def import_ray() -> ModuleType:
    """The ray module, or one line that says how to get it."""
    try:
        import ray
    except ImportError:
        raise DfstreamError(f"--engine ray needs Ray, which is not installed here: {RAY_EXTRA_HINT}") from None
    return ray
