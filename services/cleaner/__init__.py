"""services/cleaner: a Faust app that cleans every raw record in flight into the clean topics,
and routes records it cannot clean to the DLQ with the reason."""
