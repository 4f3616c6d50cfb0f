"""the term index by era (story_terms.era) and term_counts without rowid on SQLite

Revision ID: 0007
Revises: 0006

A clustering commit wrote out every index page its rows touched. Keyed by term, the rows
of one batch touched nearly every page of the term index, so a commit cost grew with
the store; keyed by era first, they touch the newest era's pages.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ERA_STORIES = 4096
"""As in newsdesk.store.schema at this revision (a migration never imports the model)."""


def upgrade() -> None:
    # A default fills the column of the rows already there; new rows always set it.
    op.add_column("story_terms", sa.Column("era", sa.Integer(), nullable=False, server_default="0"))
    op.execute(f"UPDATE story_terms SET era = story_id / {ERA_STORIES}")
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("story_terms", "era", server_default=None)
    op.drop_index(op.f("ix_story_terms_term_story_id"), table_name="story_terms")
    op.create_index(
        op.f("ix_story_terms_era_term_story_id"), "story_terms", ["era", "term", "story_id"]
    )
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_term_counts(with_rowid=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_term_counts(with_rowid=True)
    op.drop_index(op.f("ix_story_terms_era_term_story_id"), table_name="story_terms")
    op.create_index(op.f("ix_story_terms_term_story_id"), "story_terms", ["term", "story_id"])
    with op.batch_alter_table("story_terms") as batch:
        batch.drop_column("era")


def _rebuild_term_counts(*, with_rowid: bool) -> None:
    """SQLite cannot change a table's rowid in place: copy it into a new one."""
    op.create_table(
        "term_counts_new",
        sa.Column("term", sa.String(length=80), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_term_counts")),
        sqlite_with_rowid=with_rowid,
    )
    op.execute("INSERT INTO term_counts_new (term, entries) SELECT term, entries FROM term_counts")
    op.drop_table("term_counts")
    op.rename_table("term_counts_new", "term_counts")
