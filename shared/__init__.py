"""pinpipe's shared package: what every service agrees on.

Schemas of the raw and clean records, the cleaning rules, settings, topic names, lake paths,
and the logging and metrics helpers. It knows nothing of the services: they import it, never
the other way round.
"""
