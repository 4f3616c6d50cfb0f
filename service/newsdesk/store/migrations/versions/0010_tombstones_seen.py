"""tombstones know when their feed last carried them, and go once it stops

Revision ID: 0010
Revises: 0009

Before, a tombstone stayed for good: one row per pruned entry, for ever (about a
million a year at 3,000 entries a day). Now a stored document marks the tombstones of
the keys it carries as seen, and those its feed has left out for a week go. Existing
tombstones start as seen when they were made.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("entry_tombstones") as batch:
        batch.add_column(sa.Column("seen_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE entry_tombstones SET seen_at = pruned_at")
    with op.batch_alter_table("entry_tombstones") as batch:
        batch.alter_column("seen_at", existing_type=sa.DateTime(), nullable=False)
        batch.create_index(batch.f("ix_entry_tombstones_feed_id_seen_at"), ["feed_id", "seen_at"])


def downgrade() -> None:
    with op.batch_alter_table("entry_tombstones") as batch:
        batch.drop_index(batch.f("ix_entry_tombstones_feed_id_seen_at"))
        batch.drop_column("seen_at")
