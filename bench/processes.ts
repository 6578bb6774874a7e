import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

/** Starts a node script; resolves once `ready` answers true (or the script prints "ready"). */
export async function startProcess(args: string[], ready: () => Promise<boolean>): Promise<ChildProcess> {
  // DATAPULSE_BENCH_CPU_PROF=dir: each started process writes a CPU profile there when it ends
  const profile = process.env.DATAPULSE_BENCH_CPU_PROF
  const flags = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []
  const child = spawn(process.execPath, [...flags, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  let printedReady = false
  child.stdout?.on('data', (d: Buffer) => {
    if (d.toString().includes('ready')) printedReady = true
  })
  for (let i = 0; i < 400; i++) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode}`)
    if (printedReady || (await ready().catch(() => false))) return child
    await new Promise((r) => setTimeout(r, 50))
  }
  child.kill('SIGKILL')
  throw new Error(`${args.join(' ')} did not start`)
}

export async function stop(child: ChildProcess): Promise<void> {
  // gone already: exited, or killed by a signal (a kill -9 leaves exitCode null)
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

export interface LoadResult {
  requests: number
  events: number
  eventsPerSecond: number
  mbPerSecond: number
  statuses: Record<string, number>
  p50: number
  p99: number
}

/** Runs the load generator in its own process. */
export function runLoad(
  url: string,
  seconds: number,
  connections: number,
  batch: number,
  rate = 0,
  kind: 'events' | 'metrics' = 'events',
  /** events addressed to this topic (no running pipeline needed for them to be stored) */
  topic = '',
  /** distinct user_id values in the events */
  keys = 10_000,
): Promise<LoadResult> {
  const script = new URL('./load.ts', import.meta.url).pathname
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [
        script,
        url,
        String(seconds),
        String(connections),
        String(batch),
        String(rate),
        kind,
        topic,
        String(keys),
      ],
      { maxBuffer: 1 << 20 },
      (err, stdout) => {
        if (err) reject(err)
        else resolve(JSON.parse(stdout.trim().split('\n').pop() as string))
      },
    )
  })
}

export function tempDataDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'datapulse-bench-'))
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** DataPulse itself in its own process on a free port with a fresh data dir; `close` stops it and removes the dir. */
export async function startDataPulse(
  extraArgs: string[] = [],
): Promise<{ base: string; pid: number; close: () => Promise<void> }> {
  const data = tempDataDir()
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const main = new URL('../src/main.ts', import.meta.url).pathname
  const server = await startProcess(
    [main, '--port', String(port), '--data-dir', data.dir, '--log-level', 'warn', ...extraArgs],
    async () => (await fetch(`${base}/`)).ok,
  )
  return {
    base,
    pid: server.pid as number,
    close: async () => {
      await stop(server)
      data.remove()
    },
  }
}
