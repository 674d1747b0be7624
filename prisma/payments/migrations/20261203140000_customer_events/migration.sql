-- Customers registered before the outbox existed get their CustomerRegistered event now (the query side's credit
-- view starts from it), and new customers record it as they are added (src/activities/payments/customers.ts).
INSERT INTO "outbox" ("id", "aggregate_type", "aggregate_id", "sequence", "type", "payload", "correlation_id")
SELECT gen_random_uuid(), 'Customer', c."id", 1, 'CustomerRegistered',
       jsonb_build_object('customerId', c."id", 'name', c."name", 'creditLimitCents', c."credit_limit_cents", 'creditUsedCents', c."credit_used_cents"), c."id"
FROM "customers" c
WHERE NOT EXISTS (SELECT 1 FROM "outbox" o WHERE o."aggregate_type" = 'Customer' AND o."aggregate_id" = c."id");
