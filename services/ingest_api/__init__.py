"""services/ingest_api: the original clients' REST API in front of Kafka: the Kafka REST Proxy
v2 topics API (``/topics``) and the Kinesis-style streams API of the original API Gateway
(``/streams``). Records are produced with acks=all and idempotence on."""
