import { authHeaders, type DeadLetter, type StatsEvent, unauthorized, type WindowRow } from './api.ts'

export interface LiveHandlers {
  stats?: (s: StatsEvent) => void
  windows?: (w: WindowRow[]) => void
  deadLetters?: (d: DeadLetter[]) => void
}

const RECONNECT_MS = 2_000

/**
 * Server-Sent Events from /api/stream, read with fetch so the API key goes in the Authorization
 * header (EventSource cannot send headers, and a key in the URL would end up in logs and
 * history). Reconnects after a drop; returns the unsubscribe.
 */
export function live(pipelineId: string | undefined, handlers: LiveHandlers): () => void {
  const url = `/api/stream${pipelineId ? `?pipeline=${encodeURIComponent(pipelineId)}` : ''}`
  const abort = new AbortController()
  let timer: ReturnType<typeof setTimeout> | undefined
  const dispatch = (event: string, data: string) => {
    const handler =
      event === 'stats'
        ? handlers.stats
        : event === 'windows'
          ? handlers.windows
          : event === 'dead_letters'
            ? handlers.deadLetters
            : undefined
    if (handler) (handler as (v: unknown) => void)(JSON.parse(data))
  }
  const connect = async () => {
    try {
      const res = await fetch(url, {
        headers: { ...authHeaders(), accept: 'text/event-stream' },
        signal: abort.signal,
      })
      if (res.status === 401) {
        const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null
        unauthorized(body?.error?.message ?? 'this server needs an API key')
        return
      }
      if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`)
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let end = buffer.indexOf('\n\n')
        while (end >= 0) {
          let event = 'message'
          const data: string[] = []
          for (const line of buffer.slice(0, end).split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7)
            else if (line.startsWith('data: ')) data.push(line.slice(6))
          }
          dispatch(event, data.join('\n'))
          buffer = buffer.slice(end + 2)
          end = buffer.indexOf('\n\n')
        }
      }
    } catch {
      if (abort.signal.aborted) return
    }
    if (!abort.signal.aborted) timer = setTimeout(() => void connect(), RECONNECT_MS)
  }
  void connect()
  return () => {
    abort.abort()
    clearTimeout(timer)
  }
}
