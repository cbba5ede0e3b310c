"""cli: the one ``pinpipe`` command in front of every service, the batch queries and the
local stack (``pinpipe up`` / ``pinpipe down``)."""
