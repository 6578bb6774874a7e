import Type, { type Static } from 'typebox'
import { OPERATORS } from '../../engine/stages/filter.ts'

const Field = Type.String({
  description: 'dotted field path: event_type, source, timestamp, id, data.x (a bare name means data.<name>)',
})

const Comparison = Type.Object(
  {
    field: Field,
    operator: Type.Union(OPERATORS.map((o) => Type.Literal(o))),
    value: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false },
)
const Condition = Type.Union([
  Comparison,
  Type.Object({ all: Type.Array(Type.Unknown()) }, { additionalProperties: false }),
  Type.Object({ any: Type.Array(Type.Unknown()) }, { additionalProperties: false }),
  Type.Object({ not: Type.Unknown() }, { additionalProperties: false }),
])

const FunctionSpec = Type.Union(
  [
    Type.String({ description: 'count | p50 | p90 | p95 | p99' }),
    Type.Record(
      Type.String({
        description: 'count, sum, avg, min, max, count_distinct, p50, p90, p95, p99, percentile',
      }),
      Type.Union([
        Type.Null(),
        Field,
        Type.Object({
          field: Type.Optional(Field),
          as: Type.Optional(Type.String()),
          q: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
          precision: Type.Optional(Type.Integer({ minimum: 4, maximum: 18 })),
        }),
      ]),
    ),
  ],
  {
    description:
      '"count", {"count":null}, {"sum":"data.amount"}, {"sum":{"field":"data.amount","as":"revenue"}}',
  },
)

const Aggregate = Type.Object(
  {
    window_seconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    slide_seconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    session_gap_seconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    function: Type.Optional(FunctionSpec),
    functions: Type.Optional(Type.Array(FunctionSpec)),
    group_by: Type.Optional(Type.Union([Field, Type.Array(Field)])),
    time: Type.Optional(Type.Union([Type.Literal('event'), Type.Literal('processing')])),
    allowed_lateness_seconds: Type.Optional(Type.Number({ minimum: 0 })),
    idle_timeout_seconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    emit: Type.Optional(Type.Union([Type.Literal('final'), Type.Literal('updates')])),
  },
  { additionalProperties: false },
)

const Transformation = Type.Union([
  Type.Object({ filter: Condition }, { additionalProperties: false }),
  Type.Object(
    {
      map: Type.Object({
        mappings: Type.Optional(Type.Record(Type.String(), Field)),
        set: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        remove: Type.Optional(Type.Array(Field)),
      }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      enrich: Type.Object({
        table: Type.String(),
        key_field: Field,
        target_field: Field,
        on_missing: Type.Optional(
          Type.Union([Type.Literal('keep'), Type.Literal('drop'), Type.Literal('null')]),
        ),
      }),
    },
    { additionalProperties: false },
  ),
  Type.Object({ aggregate: Aggregate }, { additionalProperties: false }),
])

/**
 * The pipeline definition, for the OpenAPI document. The same rules, with exact paths in the
 * errors, are enforced by the engine's parser (src/engine/pipeline-spec.ts), which the route uses.
 */
export const PipelineBody = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$' }),
    description: Type.Optional(Type.String({ maxLength: 4096 })),
    source_topic: Type.String({ pattern: '^[A-Za-z0-9._-]{1,249}$' }),
    sink_topic: Type.Optional(Type.Union([Type.String({ pattern: '^[A-Za-z0-9._-]{1,249}$' }), Type.Null()])),
    transformation: Type.Optional(Transformation),
    transformations: Type.Optional(Type.Array(Transformation)),
    start: Type.Optional(Type.Boolean({ description: 'start right away' })),
    start_from: Type.Optional(Type.Union([Type.Literal('earliest'), Type.Literal('latest')])),
    metrics: Type.Optional(
      Type.Boolean({
        description:
          'write closed results as metric series pipeline.<name>.<result> tagged with the group key (default true)',
      }),
    ),
  },
  { additionalProperties: false },
)

export const PipelineUpdateBody = Type.Object(
  {
    ...PipelineBody.properties,
    reset: Type.Optional(
      Type.Boolean({
        description: 'apply a change that loses the window state (positions and counters stay)',
      }),
    ),
  },
  { additionalProperties: false },
)

export const ReplayBody = Type.Object(
  {
    from: Type.Union(
      [
        Type.Literal('earliest'),
        Type.String({ format: 'date-time', description: 'the first record appended at or after this time' }),
        Type.Integer({ minimum: 0, description: 'an offset (on every partition)' }),
      ],
      { description: 'where in the source topic to recompute from (within retention)' },
    ),
  },
  { additionalProperties: false },
)

export const VersionsResponse = Type.Object({
  pipeline_id: Type.String(),
  versions: Type.Array(
    Type.Object({
      version: Type.Integer(),
      spec: Type.Record(Type.String(), Type.Unknown()),
      created_at: Type.String(),
      reset: Type.Boolean(),
    }),
  ),
})

export const PipelineStatsSchema = Type.Object({
  events_in: Type.Integer(),
  events_out: Type.Integer(),
  filtered: Type.Integer(),
  late: Type.Integer(),
  errors: Type.Integer(),
  results: Type.Integer({ description: 'window results emitted (closed windows)' }),
  lag: Type.Integer({ description: 'events on the source topic not yet processed' }),
  pending_results: Type.Integer({ description: 'window results and sink records produced, not yet written' }),
  watermark: Type.Union([Type.String(), Type.Null()]),
  partitions: Type.Array(
    Type.Object({
      partition: Type.Integer(),
      position: Type.Union([Type.Integer(), Type.Null()], { description: 'the next offset to read' }),
      lag: Type.Integer(),
      watermark: Type.Union([Type.String(), Type.Null()], {
        description: "the partition's own watermark (its highest event time − allowed lateness)",
      }),
      events_in: Type.Integer(),
      filtered: Type.Integer(),
      late: Type.Integer(),
      errors: Type.Integer(),
    }),
    { description: 'each source partition: the pipeline watermark is the minimum over those not idle' },
  ),
  condition: Type.Union([Type.Literal('ok'), Type.Literal('degraded')], {
    description: 'degraded: the source or sink is failing right now; the pipeline keeps retrying',
  }),
  condition_reason: Type.Optional(Type.String()),
  replay: Type.Optional(
    Type.Object(
      {
        from: Type.Union([Type.String(), Type.Integer()], { description: 'as asked' }),
        state: Type.Union([Type.Literal('replaying'), Type.Literal('done')]),
        recomputes_from: Type.Union([Type.String(), Type.Null()], {
          description: 'the first window start recomputed (null: every window)',
        }),
        started_at: Type.String(),
        finished_at: Type.Union([Type.String(), Type.Null()]),
        start: Type.Integer({ description: 'the offset it began at (summed over partitions)' }),
        position: Type.Integer({ description: 'the offset it has read to (summed over partitions)' }),
        target: Type.Integer({
          description: 'the end of the topic when it was asked (summed): past it the pipeline is live',
        }),
        skipped: Type.Integer({ description: 'events read that belong to windows before the cut (kept)' }),
        events_per_second: Type.Union([Type.Integer(), Type.Null()], {
          description: 'events read per second since it began (null: too quick to tell)',
        }),
      },
      { description: 'the last replay (POST /api/pipelines/{id}/replay)' },
    ),
  ),
})

export const PipelineResponse = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    status: Type.Union([
      Type.Literal('created'),
      Type.Literal('running'),
      Type.Literal('stopped'),
      Type.Literal('failed'),
    ]),
    created_at: Type.String(),
    updated_at: Type.String(),
    version: Type.Integer({ description: "the spec's version: 1 at create, one more each change" }),
    stats: PipelineStatsSchema,
    status_reason: Type.Optional(Type.String()),
  },
  { additionalProperties: true, description: 'the definition as given, plus these fields' },
)

export const WindowQuerystring = Type.Object(
  {
    state: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('closed'), Type.Literal('all')])),
    from: Type.Optional(Type.String({ description: 'RFC 3339 or epoch ms: windows ending after this' })),
    to: Type.Optional(Type.String({ description: 'RFC 3339 or epoch ms: windows starting before this' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  },
  { additionalProperties: true, description: 'plus key.<group_by path>=<value> filters' },
)

export const WindowJson = Type.Object({
  window_start: Type.String(),
  window_end: Type.String(),
  key: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  results: Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()])),
  closed: Type.Boolean(),
  version: Type.Optional(Type.Integer({ description: "the version of the pipeline's spec that made it" })),
})

export const EventJson = Type.Object(
  {
    id: Type.String(),
    event_type: Type.String(),
    source: Type.String(),
    timestamp: Type.String(),
    data: Type.Unknown(),
  },
  { additionalProperties: true },
)

export const WindowResponse = Type.Object({
  pipeline_id: Type.String(),
  windows: Type.Array(WindowJson),
})

export const PreviewBody = Type.Object(
  {
    pipeline: Type.Unknown({ description: 'a pipeline spec, as for create (nothing is saved)' }),
    events: Type.Optional(Type.Array(Type.Unknown(), { description: 'events as for ingest' })),
    topic: Type.Optional(
      Type.String({
        description: "without events: this topic's newest events (default: the spec's source topic)",
      }),
    ),
    last: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10_000,
        description: 'how many of the newest events (default 1000)',
      }),
    ),
  },
  { additionalProperties: false },
)

export const PreviewResponse = Type.Object({
  complete: Type.Boolean({
    description: 'false: the run stopped at its work budget; what is here is from the events before',
  }),
  events: Type.Integer({ description: 'events run through the spec' }),
  watermark: Type.Union([Type.String(), Type.Null()]),
  stages: Type.Array(
    Type.Object({
      stage: Type.String(),
      in: Type.Integer(),
      out: Type.Integer(),
      dropped: Type.Optional(Type.Integer()),
      late: Type.Optional(Type.Integer()),
      errors: Type.Optional(Type.Integer()),
    }),
  ),
  windows: Type.Array(WindowJson, {
    description: 'closed windows in the order they closed, then open ones (event time as given)',
  }),
  windows_omitted: Type.Integer(),
  records: Type.Array(EventJson, { description: 'a pipeline without aggregate: what it writes to its sink' }),
  records_omitted: Type.Integer(),
  dead_letters: Type.Array(Type.Object({ reason: Type.String(), detail: Type.String(), event: EventJson })),
  dead_letters_omitted: Type.Integer(),
})

export type PipelineJson = Static<typeof PipelineResponse>
