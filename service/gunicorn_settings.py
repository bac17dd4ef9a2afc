"""Gunicorn settings for every way the web app is started here: ``moderation run`` and the
Docker image both pass ``--config python:service.gunicorn_settings``.

Gunicorn's default access line begins with the client's address and ends with its
browser: a line per comment posted, kept as long as the host keeps its logs, where the
service itself keeps neither (flood control holds only keyed digests). Time, request
line, status and size are what the log is read for.
"""

access_log_format = '%(t)s "%(r)s" %(s)s %(b)s'
