-- The W3C trace context (traceparent, tracestate) of the span that wrote each event, an activity's, stored with it
-- so that the relay continues that trace when it publishes the event (src/events/outbox.ts). NULL while tracing is off.
-- The publication outbox_relay names no column list: the new column is streamed with the rest.

-- AlterTable
ALTER TABLE "outbox" ADD COLUMN     "trace_context" JSONB;
