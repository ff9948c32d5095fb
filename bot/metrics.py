"""Prometheus metrics (text format at ``GET /metrics``)."""

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
DB_ERRORS = Counter("jastipin_db_errors_total", "Database connection errors")
SCHEDULER_JOB_FAILURES = Counter(
    "jastipin_scheduler_job_failures_total",
    "Periodic jobs that raised (each is retried on the next pass)",
    ["job"],
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
REPLIES_UNCOUNTED = Counter(
    "jastipin_replies_uncounted_total",
    "Replies sent without a slot of the number's cap because Redis did not answer",
)
