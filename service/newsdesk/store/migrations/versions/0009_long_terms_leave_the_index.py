"""terms longer than the index's columns leave it

Revision ID: 0009
Revises: 0008

The clustering now cuts a word to 80 characters and leaves out a headline pair longer
than that: PostgreSQL refuses longer values in the VARCHAR(80) term columns (a Chinese
or Japanese headline is one "word" to the tokenizer, and its pairs run long), and the
batch holding one failed every round. SQLite kept such terms. No new entry can produce
one any more, so in a store written before they can never be asked for: they leave
story_terms and term_counts, and the stories that held them get their centroid's norm
summed afresh. ``newsdesk db copy`` to PostgreSQL then takes the store. Nothing to undo.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_TERM = 80


def upgrade() -> None:
    op.execute(
        "UPDATE stories SET norm2 = (SELECT coalesce(sum(t.weight * t.weight), 0.0) "
        f"FROM story_terms t WHERE t.story_id = stories.id AND length(t.term) <= {MAX_TERM}) "
        f"WHERE id IN (SELECT story_id FROM story_terms WHERE length(term) > {MAX_TERM})"
    )
    op.execute(f"DELETE FROM story_terms WHERE length(term) > {MAX_TERM}")
    op.execute(f"DELETE FROM term_counts WHERE length(term) > {MAX_TERM}")


def downgrade() -> None:
    # Revision 0008's clustering reads a store without long terms as it is.
    pass
