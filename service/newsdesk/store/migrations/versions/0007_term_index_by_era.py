"""the term index by era (story_terms.era); on SQLite, term_counts without rowid

Revision ID: 0007
Revises: 0006

A clustering commit writes out every index page its rows touched. Keyed by term, the
rows of one batch touched nearly every page of the term index, so a commit cost grew
with the store; keyed by era first, they touch the newest era's pages. On SQLite,
term_counts becomes one B-tree keyed by term, instead of a rowid table with the term as
an index beside it.
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
    op.drop_index(op.f("ix_story_terms_term_story_id"), table_name="story_terms")
    if op.get_bind().dialect.name == "sqlite":
        # A copy sets the era in one pass (SQLite cannot add a column without a default).
        _story_terms(with_era=True)
        _term_counts(with_rowid=False)
    else:
        # A default fills the column of the rows already there; new rows always set it.
        op.add_column(
            "story_terms", sa.Column("era", sa.Integer(), nullable=False, server_default="0")
        )
        op.execute(f"UPDATE story_terms SET era = story_id / {ERA_STORIES}")
        op.alter_column("story_terms", "era", server_default=None)
    op.create_index(
        op.f("ix_story_terms_era_term_story_id"), "story_terms", ["era", "term", "story_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_story_terms_era_term_story_id"), table_name="story_terms")
    if op.get_bind().dialect.name == "sqlite":
        _story_terms(with_era=False)
        _term_counts(with_rowid=True)
    else:
        op.drop_column("story_terms", "era")
    op.create_index(op.f("ix_story_terms_term_story_id"), "story_terms", ["term", "story_id"])


def _story_terms(*, with_era: bool) -> None:
    """story_terms copied into a new table, with the era or as revision 0006 had it."""
    era = [sa.Column("era", sa.Integer(), nullable=False)] if with_era else []
    op.create_table(
        "story_terms_new",
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(length=80), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        *era,
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["stories.id"],
            name=op.f("fk_story_terms_story_id_stories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("story_id", "term", name=op.f("pk_story_terms")),
    )
    columns = "story_id, term, weight" + (", era" if with_era else "")
    values = "story_id, term, weight" + (f", story_id / {ERA_STORIES}" if with_era else "")
    op.execute(
        f"INSERT INTO story_terms_new ({columns}) "
        f"SELECT {values} FROM story_terms ORDER BY story_id, term"
    )
    op.drop_table("story_terms")
    op.rename_table("story_terms_new", "story_terms")


def _term_counts(*, with_rowid: bool) -> None:
    """term_counts copied into a new table, with or without rowid."""
    op.create_table(
        "term_counts_new",
        sa.Column("term", sa.String(length=80), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_term_counts")),
        sqlite_with_rowid=with_rowid,
    )
    op.execute(
        "INSERT INTO term_counts_new (term, entries) "
        "SELECT term, entries FROM term_counts ORDER BY term"
    )
    op.drop_table("term_counts")
    op.rename_table("term_counts_new", "term_counts")
