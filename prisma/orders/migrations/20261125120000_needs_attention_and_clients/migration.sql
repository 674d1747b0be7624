-- AlterEnum
ALTER TYPE "OrderStatus" ADD VALUE 'NEEDS_ATTENTION';

-- AlterTable
ALTER TABLE "orders" ADD COLUMN "client_id" TEXT,
ADD COLUMN "request_fingerprint" TEXT,
ADD COLUMN "attention" JSONB;
