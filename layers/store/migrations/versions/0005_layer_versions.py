"""an index for each layer's data version

Vector tiles and cached layer responses are keyed by the layer's data version, ``max(feature_history.id)`` of the
layer's rows; the index on ``(layer, id)`` makes that one backward index scan instead of a scan of the history.

Revision ID: 0005_layer_versions
Revises: 0004_auth
"""
from __future__ import annotations

from alembic import op

revision = "0005_layer_versions"
down_revision = "0004_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_feature_history_layer_id", "feature_history", ["layer", "id"])


def downgrade() -> None:
    op.drop_index("ix_feature_history_layer_id", table_name="feature_history")
