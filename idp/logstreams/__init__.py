"""Log streams: every tenant log event, in order, to an operator's HTTPS webhook.

``models`` (the table), ``service`` (create, read, change, delete), ``reader`` (the tenant log
read in id order: checkpoints and pages), ``wire`` (the JSON lines body and its signature),
``delivery`` (the background loop with its database lease).
"""
