"""the term index by era (story_terms.era); on SQLite, story_terms and term_counts
without rowid

Revision ID: 0007
Revises: 0006

A clustering commit writes out every index page its rows touched. Keyed by term, the
rows of one batch touched nearly every page of the term index, so a commit cost grew
with the store; keyed by era first, they touch the newest era's pages. On SQLite, each
of the two tables becomes one B-tree keyed by its primary key, instead of a rowid table
with that key as an index beside it.
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
        # SQLite cannot change a table's rowid in place: one copy sets the era too.
        _story_terms("story_terms_new", with_era=True)
        op.execute(
            "INSERT INTO story_terms_new (story_id, term, weight, era) "
            f"SELECT story_id, term, weight, story_id / {ERA_STORIES} FROM story_terms "
            "ORDER BY story_id, term"
        )
        op.drop_table("story_terms")
        op.rename_table("story_terms_new", "story_terms")
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
        _story_terms("story_terms_new", with_era=False)
        op.execute(
            "INSERT INTO story_terms_new (story_id, term, weight) "
            "SELECT story_id, term, weight FROM story_terms ORDER BY story_id, term"
        )
        op.drop_table("story_terms")
        op.rename_table("story_terms_new", "story_terms")
        _term_counts(with_rowid=True)
    else:
        op.drop_column("story_terms", "era")
    op.create_index(op.f("ix_story_terms_term_story_id"), "story_terms", ["term", "story_id"])


def _story_terms(name: str, *, with_era: bool) -> None:
    era = [sa.Column("era", sa.Integer(), nullable=False)] if with_era else []
    op.create_table(
        name,
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
        sqlite_with_rowid=not with_era,
    )


def _term_counts(*, with_rowid: bool) -> None:
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
