"""Prometheus metrics (text format at ``GET /metrics``).

Every process exports them: ``jastipin serve`` on its own port, ``jastipin worker`` and
``jastipin scheduler`` on ``METRICS_PORT`` (bot/observe.py). The ``dramatiq_*`` families
are those of Dramatiq's Prometheus middleware, recorded by bot.broker.DramatiqMetrics in
this registry (not the multiprocess directory and unauthenticated server of the stock
middleware).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_LATENCY = Histogram(
    "jastipin_http_request_seconds",
    "API latency by route",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
HTTP_RESPONSES = Counter(
    "jastipin_http_responses_total", "Responses by status class", ["route", "status_class"]
)
WEBHOOK_UNITS = Counter(
    "jastipin_webhook_units_total", "Webhook units received", ["kind", "duplicate"]
)
INBOX_FAILURES = Counter("jastipin_inbox_failures_total", "Inbound units that failed processing")
INBOX_MEDIA_UNWANTED = Counter(
    "jastipin_inbox_media_unwanted_total",
    "Photos and documents not downloaded: the sender had no use for sending one",
)
INBOX_THROTTLED = Counter(
    "jastipin_inbox_throttled_total",
    "Inbound messages over a user's rate limit (warn: answered 'slow down'; drop: silence)",
    ["verdict"],
)
MESSAGES_SENT = Counter(
    "jastipin_wa_messages_sent_total", "Messages accepted by WhatsApp", ["billable"]
)
WA_SEND_ERRORS = Counter("jastipin_wa_send_errors_total", "WhatsApp send errors", ["code"])
WA_SEND_SECONDS = Histogram("jastipin_wa_send_seconds", "Graph API send latency")
OUTBOX_PENDING = Gauge("jastipin_outbox_pending", "Outbox rows waiting to be sent")
OUTBOX_OLDEST_AGE = Gauge(
    "jastipin_outbox_oldest_pending_age_seconds",
    "Outbox lag: age of the oldest row still pending or sending (0: none waiting)",
)
OUTBOX_OLDEST_REPLY_AGE = Gauge(
    "jastipin_outbox_oldest_reply_age_seconds",
    "Age of the oldest reply (an outbox row of no broadcast) still pending or sending "
    "(0: none waiting); a buyer is waiting for it",
)
REPLIES_PENDING = Gauge(
    "jastipin_outbox_replies_pending", "Replies (outbox rows of no broadcast) waiting to be sent"
)
INBOX_PENDING = Gauge("jastipin_inbox_pending", "Inbound units stored and not yet processed")
INBOX_OLDEST_AGE = Gauge(
    "jastipin_inbox_oldest_pending_age_seconds",
    "Age of the oldest inbound unit still pending (0: none waiting)",
)
BACKUP_LAST_SUCCESS = Gauge(
    "jastipin_backup_last_success_timestamp_seconds",
    "When `jastipin backup` last succeeded (Unix time; 0 until the first one)",
)
QUEUE_MESSAGES = Gauge(
    "jastipin_queue_messages",
    "Dramatiq messages per queue: ready (waiting for a worker), delayed (retry backoff), "
    "dead (dead-lettered)",
    ["queue", "state"],
)
GAUGES_REFRESH_ERRORS = Counter(
    "jastipin_metrics_refresh_errors_total",
    "Refreshes of the database and broker gauges that failed (the old values stay)",
    ["source"],
)
DB_ERRORS = Counter(
    "jastipin_db_errors_total", "Database connection errors (webhook, worker, scheduler)"
)
SCHEDULER_JOB_FAILURES = Counter(
    "jastipin_scheduler_job_failures_total",
    "Periodic jobs that raised (each is retried on the next pass)",
    ["job"],
)
SCHEDULER_JOB_RUNS = Counter(
    "jastipin_scheduler_job_runs_total",
    "Periodic job runs by result (ok or failed)",
    ["job", "result"],
)
SCHEDULER_JOB_SECONDS = Histogram(
    "jastipin_scheduler_job_seconds",
    "Time a periodic job took, failed or not",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60),
)
SCHEDULER_JOB_LAST_SUCCESS = Gauge(
    "jastipin_scheduler_job_last_success_timestamp_seconds",
    "When a periodic job last finished without an error (Unix time)",
    ["job"],
)
BROADCASTS_REDISPATCHED = Counter(
    "jastipin_broadcasts_redispatched_total",
    "Broadcasts dispatched again because their fan-out stalled (a lost message)",
)
REPLY_SLOT_WAITS = Counter(
    "jastipin_reply_slot_waits_total",
    "Replies that found the number's second full and waited for a later one",
)
REPLY_SLOWDOWNS = Counter(
    "jastipin_reply_slowdowns_total",
    "Replies Meta answered 130429: replies took half the number's cap for a while",
)
REPLIES_UNCOUNTED = Counter(
    "jastipin_replies_uncounted_total",
    "Replies sent without a slot of the number's cap because Redis did not answer",
)

# Dramatiq's Prometheus middleware metrics (same names, labels and buckets), in this
# registry: see bot.broker.DramatiqMetrics.
DRAMATIQ_MESSAGES = Counter(
    "dramatiq_messages_total",
    "The total number of messages processed.",
    ["queue_name", "actor_name"],
)
DRAMATIQ_ERRORS = Counter(
    "dramatiq_message_errors_total",
    "The total number of errored messages.",
    ["queue_name", "actor_name"],
)
DRAMATIQ_RETRIES = Counter(
    "dramatiq_message_retries_total",
    "The total number of retried messages.",
    ["queue_name", "actor_name"],
)
DRAMATIQ_REJECTS = Counter(
    "dramatiq_message_rejects_total",
    "The total number of dead-lettered messages.",
    ["queue_name", "actor_name"],
)
DRAMATIQ_INPROGRESS = Gauge(
    "dramatiq_messages_inprogress",
    "The number of messages in progress.",
    ["queue_name", "actor_name"],
)
DRAMATIQ_DELAYED = Gauge(
    "dramatiq_delayed_messages_inprogress",
    "The number of delayed messages in memory.",
    ["queue_name", "actor_name"],
)
DRAMATIQ_DURATION = Histogram(
    "dramatiq_message_duration_milliseconds",
    "The time spent processing messages.",
    ["queue_name", "actor_name"],
    buckets=(
        *(5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000, 30000),
        *(60000, 600000, 900000, float("inf")),
    ),
)
