-- The transactional outbox (src/events/outbox.ts): domain events written in the same transaction as the
-- change they describe, published to JetStream by the relay in position order.

-- CreateTable
CREATE TABLE "outbox" (
    "id" UUID NOT NULL,
    "position" BIGSERIAL NOT NULL,
    "aggregate_type" TEXT NOT NULL,
    "aggregate_id" TEXT NOT NULL,
    "sequence" INTEGER NOT NULL,
    "type" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "correlation_id" TEXT NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "published_at" TIMESTAMPTZ(3),

    CONSTRAINT "outbox_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "outbox_position_key" ON "outbox"("position");

-- CreateIndex
CREATE INDEX "outbox_published_at_position_idx" ON "outbox"("published_at", "position");

-- CreateIndex
CREATE UNIQUE INDEX "outbox_aggregate_type_aggregate_id_sequence_key" ON "outbox"("aggregate_type", "aggregate_id", "sequence");
