"""scale-out: feeds are claimed with a lease (and owned by host); deliveries name their sender

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(
            sa.Column("host", sa.String(length=255), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("claimed_by", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
        batch.create_index(batch.f("ix_feeds_host_lease_until"), ["host", "lease_until"])
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=120), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, url FROM feeds")).all()
    for feed_id, url in rows:
        conn.execute(
            sa.text("UPDATE feeds SET host = :host WHERE id = :id"),
            {"host": (urlsplit(url).hostname or "")[:255], "id": feed_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("claimed_by")
    with op.batch_alter_table("feeds") as batch:
        batch.drop_index(batch.f("ix_feeds_host_lease_until"))
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
        batch.drop_column("host")
