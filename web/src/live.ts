import type { DeadLetter, StatsEvent, WindowRow } from './api.ts'

export interface LiveHandlers {
  stats?: (s: StatsEvent) => void
  windows?: (w: WindowRow[]) => void
  deadLetters?: (d: DeadLetter[]) => void
}

/** Server-Sent Events from /api/stream; returns the unsubscribe. */
export function live(pipelineId: string | undefined, handlers: LiveHandlers): () => void {
  const source = new EventSource(
    `/api/stream${pipelineId ? `?pipeline=${encodeURIComponent(pipelineId)}` : ''}`,
  )
  const on = <T>(event: string, handler: ((v: T) => void) | undefined) => {
    if (handler)
      source.addEventListener(event, (e) => handler(JSON.parse((e as MessageEvent<string>).data) as T))
  }
  on('stats', handlers.stats)
  on('windows', handlers.windows)
  on('dead_letters', handlers.deadLetters)
  return () => source.close()
}
