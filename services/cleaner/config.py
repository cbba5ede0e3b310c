"""Settings of the cleaner: the only place it reads the environment."""

from __future__ import annotations

import re

from shared.profiles import Profile
from shared.settings import PinpipeSettings
from shared.topics import MAX_RECORD_VALUE_BYTES, RAW_TOPIC_PATTERN


class CleanerSettings(PinpipeSettings):
    cleaner_app_id: str = "pinpipe-cleaner"  # consumer group; prefix of transactional ids
    cleaner_host: str = "127.0.0.1"
    cleaner_port: int = 8002
    cleaner_profile: Profile = "standard"  # or "legacy": the reference project's exact rules
    # a raw record, or its clean form, over this goes to the DLQ (a larger one cannot be written)
    cleaner_max_record_bytes: int = MAX_RECORD_VALUE_BYTES
    cleaner_raw_topic_pattern: str = RAW_TOPIC_PATTERN  # which raw topics to clean
    cleaner_batch_size: int = 5000  # records per fetch (one transaction per partition in it)
    cleaner_batch_wait_ms: int = 100  # longest wait for records in one fetch

    def is_cleaned_topic(self, topic: str) -> bool:
        return re.search(self.cleaner_raw_topic_pattern, topic) is not None
