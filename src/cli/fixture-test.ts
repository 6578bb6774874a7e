/**
 * `datapulse test SPEC.json FIXTURE.json`: runs a pipeline over a fixture in-process (no server,
 * the same engine) and compares what it produced with what the fixture expects, as ksqlDB's
 * test runner and Kafka Streams' TopologyTestDriver do. The fixture format is in docs/testing.md.
 */
import { type DryStep, dryRun } from '../engine/dry-run.ts'
import { normalizeEvents, parseTimestamp } from '../engine/events.ts'
import { parsePipeline } from '../engine/pipeline-spec.ts'
import { eventJson, windowJson } from '../engine/result-shape.ts'
import type { Issue } from '../engine/types.ts'

/** The end of a stream: processing time far ahead, so every window closes (by the idle rule). */
const END = Number.MAX_SAFE_INTEGER / 2
/** Numbers agree within this relative difference (sums of floats in another order). */
const TOLERANCE = 1e-9

export interface FixtureReport {
  ok: boolean
  /** what differs, a line each: `- ` expected and missing, `+ ` produced and not expected, `~ ` both with other values */
  diff: string[]
  summary: string
}

interface ExpectedWindow {
  window_start: string
  window_end: string
  key?: Record<string, unknown> | null
  results: Record<string, number | null>
}

/** A fixture or spec that cannot run: the issues with their paths. */
export class FixtureError extends Error {
  readonly issues: Issue[]
  constructor(what: string, issues: Issue[]) {
    super(`${what}: ${issues.map((i) => `${i.path || '/'} ${i.message}`).join('; ')}`)
    this.issues = issues
  }
}

function objectAt(v: unknown, path: string, issues: Issue[]): Record<string, unknown> | undefined {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>
  issues.push({ path, message: 'must be an object' })
  return undefined
}

function timeAt(v: unknown, path: string, issues: Issue[]): number | undefined {
  if (v === 'end') return END
  const t = parseTimestamp(v)
  if (t === undefined) {
    issues.push({ path, message: 'must be an RFC 3339 time, epoch ms, or "end"' })
    return undefined
  }
  return t
}

/** Reads the fixture's steps and lookups; every problem is reported with its path. */
function readFixture(fixture: unknown) {
  const issues: Issue[] = []
  const f = objectAt(fixture, '', issues)
  const steps: DryStep[] = []
  const lookups = new Map<string, Map<string, Record<string, unknown>>>()
  if (!f) throw new FixtureError('fixture', issues)
  for (const key of Object.keys(f))
    if (!['description', 'lookups', 'steps', 'expect'].includes(key))
      issues.push({
        path: `/${key}`,
        message: 'is not a fixture field (description, lookups, steps, expect)',
      })
  const tables = f.lookups === undefined ? {} : objectAt(f.lookups, '/lookups', issues)
  for (const [name, t] of Object.entries(tables ?? {})) {
    const table = objectAt(t, `/lookups/${name}`, issues)
    const rows = table?.rows
    const key = typeof table?.key === 'string' ? table.key : 'id'
    if (!Array.isArray(rows)) {
      issues.push({ path: `/lookups/${name}/rows`, message: 'must be an array of rows' })
      continue
    }
    lookups.set(
      name,
      new Map(rows.map((r) => [String((r as Record<string, unknown>)[key]), r as Record<string, unknown>])),
    )
  }
  if (!Array.isArray(f.steps)) issues.push({ path: '/steps', message: 'must be an array of steps' })
  let clock = 0
  for (const [i, s] of (Array.isArray(f.steps) ? f.steps : []).entries()) {
    const step = objectAt(s, `/steps/${i}`, issues)
    if (!step) continue
    if ('advance_to' in step) {
      const now = timeAt(step.advance_to, `/steps/${i}/advance_to`, issues)
      if (now !== undefined) {
        clock = Math.max(clock, now)
        steps.push({ kind: 'advance', now: clock })
      }
      continue
    }
    if (!Array.isArray(step.events)) {
      issues.push({
        path: `/steps/${i}`,
        message: 'is { "events": [...], "at"?: time } or { "advance_to": time }',
      })
      continue
    }
    let n = 0
    const normalized = normalizeEvents(step.events, 0, () => `step${i}-${n++}`, `/steps/${i}/events`)
    if (!normalized.ok) {
      issues.push(...normalized.issues)
      continue
    }
    // arrival: as given, else the newest event time of the batch (processing time follows event time)
    const newest = normalized.events.reduce((m, e) => Math.max(m, e.timestamp), clock)
    const at = step.at === undefined ? newest : timeAt(step.at, `/steps/${i}/at`, issues)
    if (at === undefined) continue
    clock = Math.max(clock, at)
    const partition = step.partition === undefined ? 0 : Number(step.partition)
    if (!Number.isInteger(partition) || partition < 0)
      issues.push({ path: `/steps/${i}/partition`, message: 'must be a partition number' })
    steps.push({ kind: 'events', arrival: at, events: normalized.events, partition })
  }
  const expect = f.expect === undefined ? {} : (objectAt(f.expect, '/expect', issues) ?? {})
  for (const key of Object.keys(expect))
    if (!['windows', 'open_windows', 'dead_letters', 'records'].includes(key))
      issues.push({
        path: `/expect/${key}`,
        message: 'is not an expectation (windows, open_windows, dead_letters, records)',
      })
  for (const key of Object.keys(expect))
    if (!Array.isArray(expect[key])) issues.push({ path: `/expect/${key}`, message: 'must be an array' })
  if (issues.length > 0) throw new FixtureError('fixture', issues)
  return { steps, lookups, expect: expect as Record<string, unknown[]> }
}

const windowId = (w: { window_start: string; window_end: string; key?: unknown }) =>
  `${new Date(w.window_start).toISOString()} – ${new Date(w.window_end).toISOString()} ${JSON.stringify(w.key ?? null)}`

function sameNumber(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number')
    return Math.abs(a - b) <= TOLERANCE * Math.max(Math.abs(a), Math.abs(b)) + TOLERANCE
  return a === b
}

/** Windows by identity (start, end, key); results compared function by function. */
function compareWindows(what: string, got: ExpectedWindow[], want: ExpectedWindow[], diff: string[]): void {
  const produced = new Map(got.map((w) => [windowId(w), w.results]))
  for (const w of want) {
    const id = windowId(w)
    const results = produced.get(id)
    if (results === undefined) diff.push(`- ${what} ${id} ${JSON.stringify(w.results)}`)
    else {
      const names = new Set([...Object.keys(w.results), ...Object.keys(results)])
      const differs = [...names].filter((n) => !sameNumber(results[n], w.results[n]))
      if (differs.length > 0)
        diff.push(
          `~ ${what} ${id}: ${differs.map((n) => `${n} got ${JSON.stringify(results[n] ?? null)}, want ${JSON.stringify(w.results[n] ?? null)}`).join('; ')}`,
        )
      produced.delete(id)
    }
  }
  for (const [id, results] of produced) diff.push(`+ ${what} ${id} ${JSON.stringify(results)}`)
}

/** Compares lists as multisets of their JSON text. */
function compareItems(what: string, got: unknown[], want: unknown[], diff: string[]): void {
  const left = new Map<string, number>()
  for (const g of got) left.set(JSON.stringify(g), (left.get(JSON.stringify(g)) ?? 0) + 1)
  for (const w of want) {
    const text = JSON.stringify(w)
    const n = left.get(text) ?? 0
    if (n === 0) diff.push(`- ${what} ${text}`)
    else left.set(text, n - 1)
  }
  for (const [text, n] of left) for (let i = 0; i < n; i++) diff.push(`+ ${what} ${text}`)
}

/** Runs `spec` over `fixture`; throws FixtureError when either cannot run. */
export function runFixture(spec: unknown, fixture: unknown): FixtureReport {
  const parsed = parsePipeline(spec, { maxWindowsPerEvent: 100_000 })
  if (!parsed.ok) throw new FixtureError('spec', parsed.issues)
  const { steps, lookups, expect } = readFixture(fixture)
  const result = dryRun(
    parsed.value,
    { get: (table, key) => lookups.get(table)?.get(key) },
    {
      maxKeysPerWindow: 10_000_000,
      maxItems: 10_000_000,
      maxWork: Number.POSITIVE_INFINITY,
    },
    steps,
  )
  const windows = result.windows.map(windowJson)
  const closed = windows.filter((w) => w.closed)
  const open = windows.filter((w) => !w.closed)
  const diff: string[] = []
  if (expect.windows) compareWindows('window', closed, expect.windows as ExpectedWindow[], diff)
  if (expect.open_windows) compareWindows('open window', open, expect.open_windows as ExpectedWindow[], diff)
  if (expect.dead_letters) {
    // a dead letter is its reason and the event's id (given in the fixture, or step<i>-<n>)
    const got = result.deadLetters.map((d) => ({ reason: d.reason, event_id: d.event.id }))
    compareItems('dead letter', got, expect.dead_letters, diff)
  }
  if (expect.records) {
    const got = result.records.map((e) => {
      const { id: _id, ...rest } = eventJson(e)
      return rest
    })
    compareItems('record', got, expect.records, diff)
  }
  const checked = Object.keys(expect).length
  return {
    ok: diff.length === 0,
    diff,
    summary: `${result.events} events, ${closed.length} closed and ${open.length} open windows, ${result.deadLetters.length} dead letters, ${result.records.length} records; ${checked === 0 ? 'nothing expected' : diff.length === 0 ? 'all as expected' : `${diff.length} differences`}`,
  }
}
