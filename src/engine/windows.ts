/**
 * Window assignment: pure arithmetic on a timestamp. Windows are epoch-aligned and half-open
 * [start, end). Tumbling windows are hopping windows whose slide equals their size.
 */
export type WindowSpec =
  | { kind: 'tumbling'; sizeMs: number }
  | { kind: 'hopping'; sizeMs: number; slideMs: number }
  | { kind: 'session'; gapMs: number }

/** a mod b, never negative (times before 1970 included) */
export function mod(a: number, b: number): number {
  const r = a % b
  return r < 0 ? r + b : r
}

/** The start of the last (latest-starting) aligned window containing `ts`. */
export function lastWindowStart(ts: number, slideMs: number): number {
  return ts - mod(ts, slideMs)
}

/** How many windows one event can fall into. */
export function windowsPerEvent(spec: WindowSpec): number {
  if (spec.kind === 'tumbling') return 1
  if (spec.kind === 'hopping') return Math.ceil(spec.sizeMs / spec.slideMs)
  return 1
}
