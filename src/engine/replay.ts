import type { WindowSpec } from './windows.ts'
import { lastWindowStart } from './windows.ts'

/** What a replay recomputes: the windows starting at or after `cut` (null: every window). */
export type ReplayCut = { ok: true; cut: number | null } | { ok: false; reason: string }

/**
 * Where a replay begins (POST /api/pipelines/{id}/replay). It recomputes whole windows, from the
 * first window holding `asked` (an event time; null: from the start), with fresh state, reading the
 * log from the first record appended at or after the cut — every event of those windows is there,
 * as an event is appended at or after its own time. Two bounds keep that exact:
 * - never after a window still open at `watermark` (the pipeline's, before the replay): the windows
 *   before the cut are all closed and stored, so none loses what it holds;
 * - never before `retainedFrom` (the append time of the oldest record left, when retention dropped
 *   some): a window needs all of its events.
 * Sessions have no boundary a replay could begin at (a session before any point may grow past
 * it), so they replay only the whole log.
 */
export function replayCut(
  window: WindowSpec,
  asked: number | null,
  watermark: number,
  retainedFrom: number | null,
): ReplayCut {
  if (window.kind === 'session') {
    if (asked !== null)
      return {
        ok: false,
        reason: 'a session can span any point of the log: sessions replay from "earliest" only',
      }
    if (retainedFrom !== null)
      return {
        ok: false,
        reason:
          'retention has dropped the start of the log, and a session can span any point: no exact replay',
      }
    return { ok: true, cut: null }
  }
  const size = window.sizeMs
  const slide = window.kind === 'hopping' ? window.slideMs : window.sizeMs
  // the first window that holds `asked` starts (size − slide) before the last one that does
  let cut = asked === null ? Number.NEGATIVE_INFINITY : lastWindowStart(asked, slide) - size + slide
  // every window starting before `closedBefore` has ended by the watermark
  const closedBefore = Number.isFinite(watermark)
    ? lastWindowStart(watermark - size + slide, slide)
    : Number.NEGATIVE_INFINITY
  if (cut > closedBefore) cut = closedBefore
  if (retainedFrom !== null) {
    const lowest = lastWindowStart(retainedFrom - 1, slide) + slide
    if (cut < lowest) {
      if (lowest > closedBefore)
        return {
          ok: false,
          reason: `retention has dropped events of windows still open (the oldest record left was appended at ${new Date(retainedFrom).toISOString()})`,
        }
      cut = lowest
    }
  }
  return { ok: true, cut: Number.isFinite(cut) ? cut : null }
}
