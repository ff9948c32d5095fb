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
