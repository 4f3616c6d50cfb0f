"""story clustering: centroids, term counts, same-article keys, curator splits

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(
            sa.Column("clustered", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index(
        op.f("ix_entries_clustered_published_at_id"),
        "entries",
        ["clustered", "published_at", "id"],
        unique=False,
    )
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("stories") as batch:
        batch.add_column(sa.Column("norm2", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("size", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("langs", sa.String(length=40), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("names", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("semantic", sa.LargeBinary(), nullable=True))
        batch.add_column(
            sa.Column("semantic_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("merged_into", sa.Integer(), nullable=True))
    op.create_table(
        "story_terms",
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(length=80), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["stories.id"],
            name=op.f("fk_story_terms_story_id_stories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("story_id", "term", name=op.f("pk_story_terms")),
    )
    op.create_index(
        op.f("ix_story_terms_term_story_id"), "story_terms", ["term", "story_id"], unique=False
    )
    op.create_table(
        "term_counts",
        sa.Column("term", sa.String(length=80), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_term_counts")),
    )
    op.create_table(
        "entry_keys",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["entries.id"],
            name=op.f("fk_entry_keys_entry_id_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", "entry_id", name=op.f("pk_entry_keys")),
    )
    op.create_index(op.f("ix_entry_keys_entry_id"), "entry_keys", ["entry_id"], unique=False)
    op.create_table(
        "cluster_state",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cluster_state")),
    )
    op.create_table(
        "story_apart",
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("other_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["stories.id"],
            name=op.f("fk_story_apart_story_id_stories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["other_id"],
            ["stories.id"],
            name=op.f("fk_story_apart_other_id_stories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("story_id", "other_id", name=op.f("pk_story_apart")),
    )


def downgrade() -> None:
    op.drop_table("story_apart")
    op.drop_table("cluster_state")
    op.drop_index(op.f("ix_entry_keys_entry_id"), table_name="entry_keys")
    op.drop_table("entry_keys")
    op.drop_table("term_counts")
    op.drop_index(op.f("ix_story_terms_term_story_id"), table_name="story_terms")
    op.drop_table("story_terms")
    with op.batch_alter_table("stories") as batch:
        batch.drop_column("merged_into")
        batch.drop_column("semantic_count")
        batch.drop_column("semantic")
        batch.drop_column("names")
        batch.drop_column("langs")
        batch.drop_column("size")
        batch.drop_column("norm2")
    op.drop_index(op.f("ix_entries_clustered_published_at_id"), table_name="entries")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("clustered")
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("priority")
