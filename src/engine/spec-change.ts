import {
  type AggregateLimits,
  AggregateOperator,
  type OperatorSnapshot,
  type PartitionedSnapshot,
  type TaskSnapshot,
} from './aggregate.ts'
import type { PipelineDefinition, Stage } from './pipeline-spec.ts'
import type { AggregateSpec } from './stages/aggregate-spec.ts'
import type { Issue, JsonValue } from './types.ts'
import type { SavedSlot } from './window-state/slot.ts'
import type { WindowSpec } from './windows.ts'

function aggregateOf(d: PipelineDefinition): { spec: AggregateSpec; index: number } | undefined {
  const index = d.stages.findIndex((s) => s.kind === 'aggregate')
  const stage = d.stages[index] as Extract<Stage, { kind: 'aggregate' }> | undefined
  return stage ? { spec: stage.spec, index } : undefined
}

function describeWindow(w: WindowSpec): string {
  if (w.kind === 'session') return `sessions with a ${w.gapMs / 1000} s gap`
  if (w.kind === 'hopping') return `hopping ${w.sizeMs / 1000} s every ${w.slideMs / 1000} s`
  return `tumbling ${w.sizeMs / 1000} s`
}

/**
 * What changing a pipeline from `old` to `next` would lose of its state, one issue per reason,
 * with the path in `next`'s spec (`aggregateAt(index)` names where its aggregate is). Empty when
 * the window state keeps its meaning: stages before the aggregate, functions added or removed,
 * lateness, idle timeout, emit mode, sink topic, description.
 */
export function changeLoses(
  old: PipelineDefinition,
  next: PipelineDefinition,
  aggregateAt: (index: number) => string,
): Issue[] {
  const lost: Issue[] = []
  if (old.sourceTopic !== next.sourceTopic)
    lost.push({
      path: '/source_topic',
      message: `changes from '${old.sourceTopic}' to '${next.sourceTopic}': the positions and the windows belong to the old topic`,
    })
  const a = aggregateOf(old)
  const b = aggregateOf(next)
  if (a && !b)
    lost.push({ path: '/transformations', message: 'removes the aggregate: its open windows would be lost' })
  if (!a || !b) return lost
  const at = aggregateAt(b.index)
  if (JSON.stringify(a.spec.window) !== JSON.stringify(b.spec.window))
    lost.push({
      path: `${at}/${b.spec.window.kind === 'session' ? 'session_gap_seconds' : 'window_seconds'}`,
      message: `the window changes from ${describeWindow(a.spec.window)} to ${describeWindow(b.spec.window)}: the open windows would be lost`,
    })
  const keys = (s: AggregateSpec) => s.groupBy.map((f) => f.raw)
  if (JSON.stringify(keys(a.spec)) !== JSON.stringify(keys(b.spec)))
    lost.push({
      path: `${at}/group_by`,
      message: `group_by changes from ${JSON.stringify(keys(a.spec))} to ${JSON.stringify(keys(b.spec))}: the open windows are kept by the old key`,
    })
  if (a.spec.time !== b.spec.time)
    lost.push({
      path: `${at}/time`,
      message: `time changes from ${a.spec.time} to ${b.spec.time}: the open windows were made by the other clock`,
    })
  return lost
}

/**
 * The window state of `old`'s aggregate as `next`'s (a change `changeLoses` found nothing lost in):
 * each function kept (same name and identity) keeps its accumulators; an added one gets empty ones
 * and shows as null in every window that starts before the newest time seen (those windows had
 * events it never saw); a removed one is dropped. The state may be in parts or a whole document
 * from before parts.
 */
export function migrateState(
  old: AggregateSpec,
  next: AggregateSpec,
  limits: AggregateLimits,
  state: JsonValue,
  partitions: ReadonlyMap<number, JsonValue>,
): PartitionedSnapshot {
  // through an operator of the old spec: any saved form comes out as parts
  const before = new AggregateOperator(old, limits)
  before.restore(state, partitions)
  const snap = before.snapshot()
  const fresh = new AggregateOperator(next, limits).freshAccumulatorsJson()
  const from = next.functions.map((f) =>
    old.functions.findIndex((o) => o.name === f.name && o.identity === f.identity),
  )
  const remap = (slot: SavedSlot): SavedSlot => {
    const [start, end, keyId, key, accs] = slot
    return [start, end, keyId, key, from.map((j, i) => (j >= 0 ? accs[j] : fresh[i]))]
  }
  let newest = Number.NEGATIVE_INFINITY
  const parts = new Map<number, JsonValue>()
  for (const [p, json] of snap.partitions) {
    const part = json as unknown as Omit<TaskSnapshot, 'partition'>
    if (part.maxTs !== null) newest = Math.max(newest, part.maxTs)
    parts.set(p, {
      ...part,
      slots: part.slots.map(remap),
      sealed: part.sealed.map(remap),
    } as unknown as JsonValue)
  }
  const own = snap.state as unknown as OperatorSnapshot
  const since: Record<string, number> = {}
  next.functions.forEach((f, i) => {
    const kept = from[i] >= 0 ? own.since?.[f.name] : Number.isFinite(newest) ? newest + 1 : undefined
    if (kept !== undefined) since[f.name] = kept
  })
  const { since: _old, ...rest } = own
  const migrated: OperatorSnapshot = { ...rest, ...(Object.keys(since).length > 0 ? { since } : {}) }
  return { state: migrated as unknown as JsonValue, partitions: parts }
}
