-- The query database (prisma/query/schema.prisma): views fed only by events, and the inbox of their consumers.

-- CreateTable
CREATE TABLE "order_view" (
    "order_id" TEXT NOT NULL,
    "customer_id" TEXT,
    "client_id" TEXT,
    "status" TEXT,
    "lines" JSONB NOT NULL DEFAULT '[]',
    "total_cents" INTEGER,
    "failure_reason" TEXT,
    "attention" JSONB,
    "reservation_status" TEXT,
    "payment_status" TEXT,
    "payment_amount_cents" INTEGER,
    "shipment_status" TEXT,
    "tracking_code" TEXT,
    "created_at" TIMESTAMPTZ(3),
    "closed_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "last_event_id" UUID NOT NULL,
    "last_event_type" TEXT NOT NULL,
    "order_version" INTEGER NOT NULL DEFAULT 0,
    "reservation_version" INTEGER NOT NULL DEFAULT 0,
    "payment_version" INTEGER NOT NULL DEFAULT 0,
    "shipment_version" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "order_view_pkey" PRIMARY KEY ("order_id")
);

-- CreateTable
CREATE TABLE "product_view" (
    "sku" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "price_cents" INTEGER NOT NULL,
    "on_hand" INTEGER NOT NULL,
    "version" INTEGER NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "product_view_pkey" PRIMARY KEY ("sku")
);

-- CreateTable
CREATE TABLE "customer_view" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "credit_limit_cents" INTEGER NOT NULL,
    "credit_used_cents" INTEGER NOT NULL,
    "version" INTEGER NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "customer_view_pkey" PRIMARY KEY ("id")
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
CREATE INDEX "order_view_created_at_order_id_idx" ON "order_view"("created_at", "order_id");

-- CreateIndex
CREATE INDEX "order_view_status_created_at_idx" ON "order_view"("status", "created_at");

-- CreateIndex
CREATE INDEX "order_view_customer_id_created_at_idx" ON "order_view"("customer_id", "created_at");
