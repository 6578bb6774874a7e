import Type, { type Static } from 'typebox'

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      details: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
    }),
  },
  { $id: 'Error', description: 'Every error: a code from a closed list, a message, and the fields at fault' },
)

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) })

/** Error responses every route may give, for the OpenAPI document. */
export function errors(...statuses: number[]): Record<number, typeof ErrorRef> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorRef]))
}

/** The Error schema by name (one definition in the document, `#/components/schemas/Error`). */
const ErrorRef = Type.Unsafe<Static<typeof ErrorBody>>({ $ref: 'Error#' })

/**
 * For routes whose handlers check the body themselves (exact paths in the errors): the schema
 * documents it and a test proves the two agree (test/api/schema-agreement.test.ts).
 */
export const documentOnly = () => (data: unknown) => ({ value: data })
