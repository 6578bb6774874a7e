import Type from 'typebox'

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
export function errors(...statuses: number[]): Record<number, typeof ErrorBody> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorBody]))
}
