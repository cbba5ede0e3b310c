"""services/cleaner: cleans every raw record in flight into the clean topics, exactly once (Kafka
transactions), and routes records it cannot clean to the DLQ with the reason."""
