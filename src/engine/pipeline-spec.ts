import { Issues, objectWith, oneOf, pointer, tagged } from './check.ts'
import { type AggregateLimits, type AggregateSpec, parseAggregate } from './stages/aggregate-spec.ts'
import { type EnrichSpec, parseEnrich } from './stages/enrich.ts'
import { type Condition, parseFilter } from './stages/filter.ts'
import { type MapSpec, parseMap } from './stages/map.ts'
import type { Parsed } from './types.ts'

export type Stage =
  | { kind: 'filter'; condition: Condition }
  | { kind: 'map'; spec: MapSpec }
  | { kind: 'enrich'; spec: EnrichSpec }
  | { kind: 'aggregate'; spec: AggregateSpec }

export interface PipelineDefinition {
  name: string
  description: string | null
  sourceTopic: string
  sinkTopic: string | null
  startFrom: 'earliest' | 'latest'
  /** closed results also written as metric series `pipeline.<name>.<result>` (the default) */
  metrics: boolean
  stages: Stage[]
}

export const PIPELINE_FIELDS = [
  'name',
  'description',
  'source_topic',
  'sink_topic',
  'transformation',
  'transformations',
  'start',
  'start_from',
  'metrics',
] as const

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/
/** Kafka's legal topic names (not `.` or `..`), so the same names work on the embedded log and on Kafka. */
export const TOPIC_PATTERN = /^(?!\.\.?$)[A-Za-z0-9._-]{1,249}$/
export const TOPIC_RULE = 'must be a topic name: 1 to 249 of letters, digits, . _ - (not . or ..)'

export function isTopicName(value: unknown): value is string {
  return typeof value === 'string' && TOPIC_PATTERN.test(value)
}
const MAX_STAGES = 64
const TRANSFORMATIONS = ['filter', 'map', 'enrich', 'aggregate']

export function checkTopic(value: unknown, path: string, issues: Issues): string | undefined {
  if (!isTopicName(value)) {
    issues.add(path, TOPIC_RULE)
    return undefined
  }
  return value
}

/** One transformation; a stage that does not parse always leaves an issue, so nothing is dropped silently. */
function parseStage(
  value: unknown,
  path: string,
  issues: Issues,
  limits: AggregateLimits,
): Stage | undefined {
  const before = issues.list.length
  const stage = parseStageKind(value, path, issues, limits)
  if (stage === undefined && issues.list.length === before) issues.add(path, 'is not a valid transformation')
  return stage
}

function parseStageKind(
  value: unknown,
  path: string,
  issues: Issues,
  limits: AggregateLimits,
): Stage | undefined {
  const tag = tagged(value, path, issues)
  if (!tag) return undefined
  const [kind, payload] = tag
  const inner = pointer(path, kind)
  if (typeof value === 'string' || !TRANSFORMATIONS.includes(kind)) {
    issues.add(path, `unknown transformation '${kind}' (expected one of: ${TRANSFORMATIONS.join(', ')})`)
    return undefined
  }
  switch (kind) {
    case 'filter': {
      const condition = parseFilter(payload, inner, issues)
      return condition && { kind, condition }
    }
    case 'map': {
      const spec = parseMap(payload, inner, issues)
      return spec && { kind, spec }
    }
    case 'enrich': {
      const spec = parseEnrich(payload, inner, issues)
      return spec && { kind, spec }
    }
    default: {
      const spec = parseAggregate(payload, inner, issues, limits)
      return spec && { kind: 'aggregate', spec }
    }
  }
}

/** Parses the transformation chain (`transformation` or `transformations`) of a pipeline body. */
export function parseStages(body: Record<string, unknown>, issues: Issues, limits: AggregateLimits): Stage[] {
  const stages: Stage[] = []
  if (body.transformation !== undefined && body.transformations !== undefined) {
    issues.add('/transformations', 'give either transformation or transformations, not both')
    return stages
  }
  if (body.transformation !== undefined && body.transformation !== null) {
    const stage = parseStage(body.transformation, '/transformation', issues, limits)
    if (stage) stages.push(stage)
  } else if (body.transformations !== undefined && body.transformations !== null) {
    if (!Array.isArray(body.transformations) || body.transformations.length > MAX_STAGES) {
      issues.add('/transformations', `must be an array of at most ${MAX_STAGES} transformations`)
      return stages
    }
    body.transformations.forEach((t, i) => {
      const stage = parseStage(t, pointer('/transformations', i), issues, limits)
      if (stage) stages.push(stage)
    })
  }
  const aggregateAt = stages.findIndex((s) => s.kind === 'aggregate')
  if (aggregateAt !== -1 && aggregateAt !== stages.length - 1)
    issues.add(pointer('/transformations', aggregateAt), 'aggregate must be the last transformation')
  return stages
}

/** Parses and checks a whole pipeline definition; every problem is reported with its path. */
export function parsePipeline(body: unknown, limits: AggregateLimits): Parsed<PipelineDefinition> {
  const issues = new Issues()
  const obj = objectWith(body, '', issues, PIPELINE_FIELDS)
  if (!obj) return { ok: false, issues: issues.list }
  if (typeof obj.name !== 'string' || !NAME_PATTERN.test(obj.name))
    issues.add('/name', 'is required: 1 to 128 of letters, digits, _ . - (starting with a letter or digit)')
  if (
    obj.description !== undefined &&
    obj.description !== null &&
    (typeof obj.description !== 'string' || obj.description.length > 4096)
  )
    issues.add('/description', 'must be a string of at most 4096 characters')
  const sourceTopic = checkTopic(obj.source_topic, '/source_topic', issues)
  const sinkTopic =
    obj.sink_topic === undefined || obj.sink_topic === null
      ? null
      : checkTopic(obj.sink_topic, '/sink_topic', issues)
  if (obj.start !== undefined && typeof obj.start !== 'boolean') issues.add('/start', 'must be a boolean')
  if (obj.metrics !== undefined && typeof obj.metrics !== 'boolean')
    issues.add('/metrics', 'must be a boolean')
  const startFrom =
    obj.start_from === undefined
      ? 'earliest'
      : oneOf(obj.start_from, '/start_from', issues, ['earliest', 'latest'] as const)
  const stages = parseStages(obj, issues, limits)
  if (sourceTopic !== undefined && sourceTopic === sinkTopic)
    issues.add('/sink_topic', 'must differ from source_topic')
  if (!issues.empty || sourceTopic === undefined || sinkTopic === undefined || !startFrom)
    return { ok: false, issues: issues.list }
  return {
    ok: true,
    value: {
      name: obj.name as string,
      description: (obj.description as string | undefined) ?? null,
      sourceTopic,
      sinkTopic,
      startFrom,
      metrics: obj.metrics !== false,
      stages,
    },
  }
}
