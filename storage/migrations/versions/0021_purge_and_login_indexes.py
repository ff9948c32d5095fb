"""indexes for forgetting strangers and for the admin login's known network

Revision ID: 0021
Revises: 0016
Create Date: 2026-12-07

Non-destructive: three indexes. The scheduler's pass looks for people who never joined
anything (``purge_strangers``: is anyone's broadcast delivery or question theirs?), and
every admin login attempt reads the admin's last login network from the audit log; both
were scans of tables that only grow.
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_broadcast_deliveries_user_id", "broadcast_deliveries", "user_id"),
    ("ix_questions_buyer_user_id", "questions", "buyer_user_id"),
    ("ix_audit_log_actor_admin_id", "audit_log", "actor_admin_id"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column], unique=False)


def downgrade() -> None:
    for name, table, _column in INDEXES:
        op.drop_index(name, table_name=table)
