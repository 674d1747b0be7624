// Registers the saga's custom search attributes on a Temporal server that does not have them yet. The dev
// server started by `npm start` gets them on its command line; a shared server gets them here, once.
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';

const KEYWORD = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
const UNIMPLEMENTED = 12;

export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  let missing = SEARCH_ATTRIBUTES;
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    missing = SEARCH_ATTRIBUTES.filter((attribute) => !(attribute.name in (customAttributes ?? {})));
  } catch (error) {
    // The time-skipping test server cannot list search attributes but accepts new ones: add them all.
    if (!(isGrpcServiceError(error) && error.code === UNIMPLEMENTED)) throw error;
  }
  if (missing.length === 0) return;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((attribute) => [attribute.name, KEYWORD])),
  });
}
