"""records: encoder mode and rate, tags, loudness, waveform peaks

Revision ID: 5b2e9d41c7a3
Revises: a0ba377b9d0b
Create Date: 2026-12-01 10:00:00+00:00

Existing rows were all CBR at their stream bitrate, carry no tags the API knows of, were never
measured and have no peaks: ``mode`` cbr, ``bitrate_kbps`` from ``bitrate``, ``tags`` {}, the
loudness and ``peaks_key`` NULL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b2e9d41c7a3"
down_revision: str | None = "a0ba377b9d0b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("bitrate_kbps", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("mode", sa.String(length=3), nullable=True))
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("integrated_lufs", sa.Float(), nullable=True))
        batch.add_column(sa.Column("true_peak_dbtp", sa.Float(), nullable=True))
        batch.add_column(sa.Column("peaks_key", sa.String(length=200), nullable=True))
    op.execute("UPDATE records SET bitrate_kbps = bitrate / 1000, mode = 'cbr', tags = '{}'")
    with op.batch_alter_table("records") as batch:
        batch.alter_column("bitrate_kbps", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("mode", existing_type=sa.String(length=3), nullable=False)
        batch.alter_column("tags", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("records") as batch:
        for column in (
            "peaks_key",
            "true_peak_dbtp",
            "integrated_lufs",
            "tags",
            "mode",
            "bitrate_kbps",
        ):
            batch.drop_column(column)
