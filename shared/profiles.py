"""The two profiles, one choice for cleaning and for querying (``--profile`` of ``pinpipe clean``,
``pinpipe backfill`` and ``pinpipe query``).

- ``standard`` (the default), pinpipe's own: cleaning reads ``12k`` as 12000 and nulls every
  placeholder (shared/cleaning.py); a query counts each post once, as its latest record by offset
  (batch/sql/staging_standard.sql), as the live aggregates do.
- ``legacy``, the reference project's: its exact cleaning rules and every record as it is, no
  deduplication (batch/sql/staging_legacy.sql), so that its published tables are reproduced.
"""

from __future__ import annotations

from typing import Literal, get_args

Profile = Literal["standard", "legacy"]
PROFILES: tuple[Profile, ...] = get_args(Profile)
