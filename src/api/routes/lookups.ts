import Type from 'typebox'
import { Issues, pointer, safeKeys } from '../../engine/check.ts'
import { parseFieldPath, readPath } from '../../engine/fields.ts'
import { lookupKey, TABLE_NAME } from '../../engine/stages/enrich.ts'
import { isPlainObject } from '../../engine/types.ts'
import { AppError, notFound, validationError } from '../../errors.ts'
import { parseCsv } from '../../lookups/csv.ts'
import type { Runtime } from '../../runtime/runtime.ts'
import { sendError } from '../reply.ts'
import { documentOnly, errors } from '../schemas/common.ts'
import type { Server } from '../server-type.ts'

const TableName = Type.String({ pattern: TABLE_NAME.source })
const TableParams = Type.Object({ table: TableName })
const MAX_ROWS = 1_000_000

/** Checks rows and extracts each one's key (a string, number or boolean at `keyField`). */
function keyedRows(
  rows: unknown,
  keyField: string,
  issues: Issues,
): Array<[string, Record<string, unknown>]> {
  const out: Array<[string, Record<string, unknown>]> = []
  if (!Array.isArray(rows) || rows.length > MAX_ROWS) {
    issues.add('/rows', `must be an array of at most ${MAX_ROWS} objects`)
    return out
  }
  const field = parseFieldPath(keyField)
  const segments = field.ok ? keyField.split('.') : []
  for (let i = 0; i < rows.length && issues.list.length <= 20; i++) {
    const row: unknown = rows[i]
    if (!isPlainObject(row)) {
      issues.add(pointer('/rows', i), 'must be an object')
      continue
    }
    safeKeys(row, pointer('/rows', i), issues)
    const key = lookupKey(readPath(row, segments))
    if (key === undefined)
      issues.add(
        pointer(pointer('/rows', i), keyField),
        'the key field is missing or not a string, number or boolean',
      )
    else out.push([key, row])
  }
  return out
}

export function lookupRoutes(app: Server, runtime: Runtime): void {
  app.addContentTypeParser('text/csv', { parseAs: 'string' }, (_req, body, done) => done(null, body))

  app.put(
    '/api/lookups/:table',
    {
      schema: {
        operationId: 'putLookupTable',
        summary:
          'Replace a lookup table: JSON {"key":"id","rows":[…]} or text/csv with a header line and ?key=id',
        tags: ['lookups'],
        params: TableParams,
        querystring: Type.Object({ key: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })) }),
        body: Type.Union([
          Type.Object({ key: Type.String(), rows: Type.Array(Type.Record(Type.String(), Type.Unknown())) }),
          Type.String({ description: 'CSV' }),
        ]),
        response: {
          200: Type.Object({ table: Type.String(), key: Type.String(), rows: Type.Integer() }),
          ...errors(400, 413, 415),
        },
      },
      // rows are checked below, with their paths, for JSON and CSV alike
      validatorCompiler: documentOnly,
      config: { role: 'admin' },
    },
    async (request, reply) => {
      const { table } = request.params as { table: string }
      if (!TABLE_NAME.test(table))
        return sendError(
          reply,
          validationError([
            { path: '/params/table', message: 'must be letters, digits, _ . - (at most 128)' },
          ]),
        )
      const issues = new Issues()
      let keyField: string
      let rawRows: unknown
      if (typeof request.body === 'string') {
        const key = (request.query as { key?: unknown }).key
        if (typeof key !== 'string' || !parseFieldPath(key).ok)
          return sendError(
            reply,
            validationError([{ path: '/querystring/key', message: 'is required with text/csv' }]),
          )
        const parsed = parseCsv(request.body)
        if (!parsed.ok) return sendError(reply, validationError(parsed.issues))
        keyField = key
        rawRows = parsed.rows
      } else {
        const body = request.body
        if (!isPlainObject(body))
          return sendError(reply, validationError([{ path: '/', message: 'must be {"key":…,"rows":[…]}' }]))
        for (const k of Object.keys(body))
          if (k !== 'key' && k !== 'rows') issues.add(`/${k}`, 'unknown field (expected key, rows)')
        if (typeof body.key !== 'string' || !parseFieldPath(body.key).ok) {
          issues.add('/key', 'is required: the name of the key field of each row')
          return sendError(reply, validationError(issues.list))
        }
        keyField = body.key
        rawRows = body.rows
      }
      const rows = keyedRows(rawRows, keyField, issues)
      if (!issues.empty) return sendError(reply, validationError(issues.list))
      await runtime.lookups.put(table, keyField, rows, runtime.clock())
      return reply.code(200).send({ table, key: keyField, rows: new Set(rows.map(([k]) => k)).size })
    },
  )

  app.get(
    '/api/lookups',
    {
      schema: {
        operationId: 'listLookupTables',
        summary: 'List lookup tables',
        tags: ['lookups'],
        response: {
          200: Type.Object({
            tables: Type.Array(
              Type.Object({
                name: Type.String(),
                key: Type.String(),
                rows: Type.Integer(),
                updated_at: Type.String(),
              }),
            ),
          }),
        },
      },
      config: { role: 'read' },
    },
    async () => ({
      tables: (await runtime.store.listLookupTables()).map((t) => ({
        name: t.name,
        key: t.keyField,
        rows: t.rows,
        updated_at: new Date(t.updatedAt).toISOString(),
      })),
    }),
  )

  app.get(
    '/api/lookups/:table',
    {
      schema: {
        operationId: 'getLookupRows',
        summary: 'Browse a table: rows whose text contains q, up to limit (default 100) from offset',
        tags: ['lookups'],
        params: TableParams,
        querystring: Type.Object({
          q: Type.Optional(Type.String({ maxLength: 256 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000 })),
          offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000 })),
        }),
        response: {
          200: Type.Object({
            table: Type.String(),
            total: Type.Integer(),
            rows: Type.Array(Type.Record(Type.String(), Type.Unknown())),
          }),
          ...errors(400, 404),
        },
      },
      config: { role: 'read' },
    },
    async (request, reply) => {
      const { table } = request.params as { table: string }
      const { q, limit = 100, offset = 0 } = request.query as { q?: string; limit?: number; offset?: number }
      const rows = runtime.lookups.rows(table)
      if (!rows) return sendError(reply, notFound('lookup table', table))
      const needle = q?.toLowerCase()
      const matching = needle ? rows.filter((r) => JSON.stringify(r).toLowerCase().includes(needle)) : rows
      return { table, total: matching.length, rows: matching.slice(offset, offset + limit) }
    },
  )

  app.get(
    '/api/lookups/:table/:key',
    {
      schema: {
        operationId: 'getLookupRow',
        summary: 'One row by key',
        tags: ['lookups'],
        params: Type.Object({ table: TableName, key: Type.String({ minLength: 1, maxLength: 1_024 }) }),
        response: { 200: Type.Record(Type.String(), Type.Unknown()), ...errors(404) },
      },
      config: { role: 'read' },
    },
    async (request, reply) => {
      const { table, key } = request.params as { table: string; key: string }
      if (!runtime.lookups.has(table)) return sendError(reply, notFound('lookup table', table))
      const row = runtime.lookups.get(table, key)
      if (!row) return sendError(reply, new AppError('not_found', `no row with key '${key}' in '${table}'`))
      return row
    },
  )

  app.delete(
    '/api/lookups/:table',
    {
      schema: {
        operationId: 'deleteLookupTable',
        summary: 'Delete a lookup table',
        tags: ['lookups'],
        params: TableParams,
        response: { 204: Type.Null(), ...errors(404) },
      },
      config: { role: 'admin' },
    },
    async (request, reply) => {
      const { table } = request.params as { table: string }
      if (!(await runtime.lookups.delete(table))) return sendError(reply, notFound('lookup table', table))
      return reply.code(204).send(null)
    },
  )
}
