-- Products catalogued before the outbox existed get their ProductCatalogued event now (the query side's catalog
-- view starts from it), and new products record it as they are added (src/activities/inventory/catalog.ts).
INSERT INTO "outbox" ("id", "aggregate_type", "aggregate_id", "sequence", "type", "payload", "correlation_id")
SELECT gen_random_uuid(), 'Product', p."sku", 1, 'ProductCatalogued',
       jsonb_build_object('sku', p."sku", 'name', p."name", 'priceCents', p."price_cents", 'onHand', p."on_hand"), p."sku"
FROM "products" p
WHERE NOT EXISTS (SELECT 1 FROM "outbox" o WHERE o."aggregate_type" = 'Product' AND o."aggregate_id" = p."sku");
