import type { TestContext } from 'node:test'
import { buildApp } from '../../src/app.ts'
import { type Config, loadConfig } from '../../src/config.ts'
import type { Event } from '../../src/engine/types.ts'
import { silentLogger } from '../../src/logger.ts'
import type { Runtime } from '../../src/runtime/runtime.ts'
import { freshDatabase } from './postgres.ts'
import { tempDir } from './tmp.ts'

export interface TestServer {
  url: string
  runtime: Runtime
  config: Config
  close: () => Promise<void>
  /** fetch + JSON: returns status, headers and the parsed body */
  call: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<Reply>
}

export interface Reply {
  status: number
  headers: Headers
  // biome-ignore lint/suspicious/noExplicitAny: test convenience for reading JSON bodies
  body: any
}

/** A manual clock for tests: time moves only when told. */
export function manualClock(start = Date.parse('2026-11-26T10:00:00Z')) {
  let now = start
  return { now: () => now, advance: (ms: number) => (now += ms), set: (ms: number) => (now = ms) }
}

/** Starts the real server on a free port with a fresh data dir (or the given one). */
/** data dir → its database, when the tests run on PostgreSQL */
const databases = new Map<string, { url: string; closes: Array<() => Promise<void>> }>()

export async function startServer(
  t: TestContext,
  options: {
    dataDir?: string
    clock?: () => number
    env?: Record<string, string>
    /** more flags, as on the command line */
    args?: string[]
    logger?: import('../../src/logger.ts').Logger
  } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? tempDir(t)
  const env = { ...options.env }
  let usesDatabase: { closes: Array<() => Promise<void>> } | undefined
  // DATAPULSE_TEST_STORE=postgres: the same tests on PostgreSQL, a fresh database per data dir (a restart finds its own again)
  if (process.env.DATAPULSE_TEST_STORE === 'postgres' && env.DATABASE_URL === undefined) {
    let db = databases.get(dataDir)
    if (db === undefined) {
      const closes: Array<() => Promise<void>> = []
      const url = await freshDatabase(t, async () => {
        for (const close of closes) await close()
      })
      if (url === undefined) throw new Error('DATAPULSE_TEST_STORE=postgres without a PostgreSQL')
      db = { url, closes }
      databases.set(dataDir, db)
    }
    env.DATABASE_URL = db.url
    usesDatabase = db
  }
  const config = loadConfig(['--port', '0', '--data-dir', dataDir, ...(options.args ?? [])], env)
  const { app, runtime } = await buildApp({
    config,
    logger: options.logger ?? silentLogger(),
    clock: options.clock,
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await app.close()
  }
  t.after(close)
  usesDatabase?.closes.push(close)
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { ...headers } }
    // as a real client does: a POST says it is JSON even without a body (cross-site protection asks it)
    if (body === undefined && method === 'POST' && !('content-type' in headers))
      (init.headers as Record<string, string>)['content-type'] = 'application/json'
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body)
      if (!('content-type' in headers))
        (init.headers as Record<string, string>)['content-type'] = 'application/json'
    }
    const res = await fetch(url + path, init)
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = text.length > 0 ? JSON.parse(text) : null
    } catch {}
    return { status: res.status, headers: res.headers, body: parsed }
  }
  return { url, runtime, config, close, call }
}

/**
 * Polls `check` until it returns a value (not undefined), or fails after `timeoutMs`; `what` may
 * be a function, to say in the failure what was last seen.
 */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 5_000,
  what: string | (() => string) = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Every event on a topic so far, read through the log's own reader interface. */
export async function readTopic(runtime: Runtime, topic: string): Promise<Event[]> {
  const reader = await runtime.log.openReader({
    topic,
    group: `test-${Math.random()}`,
    startFrom: 'earliest',
  })
  try {
    return (await reader.read(Number.MAX_SAFE_INTEGER, 0)).flatMap((b) => b.events)
  } finally {
    await reader.close()
  }
}
