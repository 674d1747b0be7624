// Reading a saga's recorded history in tests.
import type { temporal } from '@temporalio/proto';

/** The values the saga wrote to its OrderStatus search attribute, in order. */
export function listedOrderStatuses(history: temporal.api.history.v1.IHistory): string[] {
  return (history.events ?? []).flatMap((event) => {
    const payload = event.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.OrderStatus;
    return payload?.data ? [JSON.parse(Buffer.from(payload.data).toString('utf8')) as string] : [];
  });
}
