"""every term of the term index has a count row

Revision ID: 0008
Revises: 0007

The clustering now reads the term index only for terms that term_counts has a row for.
Before this revision, retention and the rebuild of a split story re-derived terms with
the feeds' current languages, and could leave a term indexed with no count row; such a
term gets a row at 0 here, so its postings are still read. Nothing to undo.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO term_counts (term, entries) "
        "SELECT DISTINCT t.term, 0 FROM story_terms t "
        "WHERE NOT EXISTS (SELECT 1 FROM term_counts c WHERE c.term = t.term)"
    )


def downgrade() -> None:
    # A row at 0 weighs as no row at all in revision 0007's clustering (the IDF of an
    # unseen term): they can stay.
    pass
