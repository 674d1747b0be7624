-- AlterTable
ALTER TABLE "products" ADD COLUMN "received" INTEGER NOT NULL DEFAULT 0;

-- Existing products: every unit on hand, held by a reservation or shipped was once received.
UPDATE "products" p SET "received" = p."on_hand" + COALESCE((
  SELECT SUM(l."quantity") FROM "reservation_lines" l JOIN "reservations" r ON r."order_id" = l."order_id"
  WHERE l."sku" = p."sku" AND r."status" IN ('RESERVED', 'CONSUMED')
), 0);
