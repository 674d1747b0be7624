-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "ShipmentStatus" AS ENUM ('SCHEDULED', 'CANCELLED', 'DISPATCHED');

-- CreateTable
CREATE TABLE "shipments" (
    "order_id" TEXT NOT NULL,
    "status" "ShipmentStatus" NOT NULL,
    "lines" JSONB NOT NULL DEFAULT '[]',
    "tracking_code" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,
    "dispatched_at" TIMESTAMP(3),

    CONSTRAINT "shipments_pkey" PRIMARY KEY ("order_id")
);

