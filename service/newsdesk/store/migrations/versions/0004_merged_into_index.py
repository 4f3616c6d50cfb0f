"""stories.merged_into indexed: a merge re-points the stories merged into the absorbed one

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_stories_merged_into"), "stories", ["merged_into"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_stories_merged_into"), table_name="stories")
