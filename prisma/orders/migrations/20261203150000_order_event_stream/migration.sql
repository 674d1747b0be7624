-- The order as its event list (src/activities/orders/order-stream.ts): an append-only stream per order, the
-- orders row as its snapshot (version and what the other services said), and the inbox of the consumers that
-- record the other services' events in the order's stream.

-- AlterTable
ALTER TABLE "orders" ADD COLUMN     "approval_status" TEXT,
ADD COLUMN     "payment_status" TEXT,
ADD COLUMN     "reservation_status" TEXT,
ADD COLUMN     "shipment_status" TEXT,
ADD COLUMN     "version" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "order_events" (
    "id" UUID NOT NULL,
    "root_id" TEXT NOT NULL,
    "sequence" INTEGER NOT NULL,
    "type" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "source" TEXT NOT NULL,
    "source_event_id" UUID,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "order_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "inbox" (
    "consumer" TEXT NOT NULL,
    "event_id" UUID NOT NULL,
    "stream" TEXT NOT NULL,
    "stream_sequence" BIGINT NOT NULL,
    "event_type" TEXT NOT NULL,
    "applied_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "dead_letter" TEXT,

    CONSTRAINT "inbox_pkey" PRIMARY KEY ("consumer","event_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "order_events_root_id_sequence_key" ON "order_events"("root_id", "sequence");

-- Orders placed before the stream existed get the events their row tells: OrderCreated, then OrderClosed for
-- a closed order or OrderNeedsAttention for one waiting for an operator (marked "migrated": true).
INSERT INTO "order_events" ("id", "root_id", "sequence", "type", "payload", "source", "occurred_at")
SELECT gen_random_uuid(), o."id", 1, 'OrderCreated',
       jsonb_build_object(
         'orderId', o."id", 'customerId', o."customer_id", 'clientId', o."client_id", 'totalCents', o."total_cents", 'migrated', true,
         'lines', COALESCE((SELECT jsonb_agg(jsonb_build_object('sku', l."sku", 'quantity', l."quantity", 'unitPriceCents', l."unit_price_cents") ORDER BY l."sku")
                              FROM "order_lines" l WHERE l."order_id" = o."id"), '[]'::jsonb)),
       'orders', o."created_at"
  FROM "orders" o;

INSERT INTO "order_events" ("id", "root_id", "sequence", "type", "payload", "source", "occurred_at")
SELECT gen_random_uuid(), o."id", 2, 'OrderClosed',
       jsonb_build_object('orderId', o."id", 'status', o."status"::text, 'failureReason', o."failure_reason",
                          'completedSteps', to_jsonb(o."completed_steps"), 'compensations', to_jsonb(o."compensations"), 'migrated', true),
       'orders', o."closed_at"
  FROM "orders" o WHERE o."closed_at" IS NOT NULL;

INSERT INTO "order_events" ("id", "root_id", "sequence", "type", "payload", "source", "occurred_at")
SELECT gen_random_uuid(), o."id", 2, 'OrderNeedsAttention',
       jsonb_build_object('orderId', o."id", 'attention', o."attention", 'migrated', true),
       'orders', o."updated_at"
  FROM "orders" o WHERE o."closed_at" IS NULL AND o."status" = 'NEEDS_ATTENTION';

UPDATE "orders" o SET "version" = (SELECT max(e."sequence") FROM "order_events" e WHERE e."root_id" = o."id");
