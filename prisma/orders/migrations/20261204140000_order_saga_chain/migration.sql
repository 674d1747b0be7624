-- The saga that placed the order: the first run id of its workflow (workflowInfo().firstExecutionRunId, which a
-- reset of the workflow keeps). Temporal forgets a closed workflow after the retention of its namespace, so a saga
-- can be started again for an order id long closed. Such a saga finds the order closed by another saga and ends with
-- that record instead of running the steps of the order a second time (src/workflows/order-saga.ts). NULL for
-- orders placed before this column. (No semicolon in these comments: the driver adapter splits the file at each.)

-- AlterTable
ALTER TABLE "orders" ADD COLUMN     "saga_run_id" TEXT;
