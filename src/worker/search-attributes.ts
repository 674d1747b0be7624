// Registers the saga's custom search attributes on a Temporal server that does not have them yet. The dev
// server started by `npm start` gets them on its command line; a shared server gets them here, once.
//
// Registering needs operator rights on the namespace, which a worker often does not have (Temporal Cloud, a
// locked-down cluster): REGISTER_SEARCH_ATTRIBUTES says what to do then.
//   auto      register what is missing; if not allowed, warn loudly and go on (the default)
//   required  register what is missing; if not allowed, fail
//   off       never list nor register them (someone registers them beforehand)
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { SearchAttributeRegistration } from '../config';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';

const KEYWORD = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
const GRPC = { ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, UNIMPLEMENTED: 12, UNAUTHENTICATED: 16 } as const;

export interface SearchAttributeResult {
  /** Attributes this call registered. */
  registered: string[];
  /** Attributes that may still be missing: registration was skipped or not allowed (mode `auto`). */
  unverified: string[];
}

function grpcCode(error: unknown): number | undefined {
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    if (isGrpcServiceError(current)) return current.code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

const notAllowed = (error: unknown) => {
  const code = grpcCode(error);
  return code === GRPC.PERMISSION_DENIED || code === GRPC.UNAUTHENTICATED || code === GRPC.UNIMPLEMENTED;
};

export async function ensureSearchAttributes(
  connection: Connection,
  namespace: string,
  options: { mode?: SearchAttributeRegistration; warn?: (line: string) => void } = {},
): Promise<SearchAttributeResult> {
  const mode = options.mode ?? 'required';
  const warn = options.warn ?? ((line: string) => console.warn(line));
  const names = SEARCH_ATTRIBUTES.map((attribute) => attribute.name);
  if (mode === 'off') return { registered: [], unverified: names };

  const giveUp = (what: string, error: unknown): SearchAttributeResult => {
    const message =
      `search attributes: could not ${what} on namespace ${namespace} (${(error as Error)?.message ?? String(error)}). ` +
      `Sagas cannot start until ${names.join(' and ')} (Keyword) exist there: register them with operator rights, e.g. ` +
      `\`temporal operator search-attribute create --namespace ${namespace} ${names.map((name) => `--name ${name} --type Keyword`).join(' ')}\` ` +
      `(or in Temporal Cloud's UI / tcld), or set REGISTER_SEARCH_ATTRIBUTES=off once they are.`;
    if (mode === 'required' || !notAllowed(error)) throw new Error(message, { cause: error });
    warn(`WARNING: ${message}`);
    return { registered: [], unverified: names };
  };

  let missing = SEARCH_ATTRIBUTES;
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    missing = SEARCH_ATTRIBUTES.filter((attribute) => !(attribute.name in (customAttributes ?? {})));
  } catch (error) {
    // The time-skipping test server cannot list search attributes but accepts new ones: add them all.
    if (grpcCode(error) !== GRPC.UNIMPLEMENTED) {
      if (notAllowed(error)) return giveUp('list the search attributes', error);
      throw error;
    }
  }
  if (missing.length === 0) return { registered: [], unverified: [] };
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((attribute) => [attribute.name, KEYWORD])),
    });
  } catch (error) {
    // Another worker starting at the same time registered them first.
    if (grpcCode(error) === GRPC.ALREADY_EXISTS) return { registered: [], unverified: [] };
    return giveUp(`register ${missing.map((attribute) => attribute.name).join(', ')}`, error);
  }
  return { registered: missing.map((attribute) => attribute.name), unverified: [] };
}
