import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname

export async function freePort(): Promise<number> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as { port: number }).port
  await new Promise((r) => srv.close(r))
  return port
}

/** The real server as a child process (`node src/main.ts …`), up once `GET /` answers. */
export class ChildServer {
  readonly url: string
  readonly #args: string[]
  child: ChildProcess | undefined
  /** what the server printed (logs go to stdout, start-up failures to stderr) */
  output = ''

  constructor(port: number, args: string[]) {
    this.url = `http://127.0.0.1:${port}`
    this.#args = ['--port', String(port), ...args]
  }

  /** Starts the server and waits for it to answer (up to `timeoutMs`: a machine in CI can be slow). */
  async start(timeoutMs = 60_000): Promise<void> {
    const child = spawn(process.execPath, [MAIN, ...this.#args], { stdio: ['ignore', 'pipe', 'pipe'] })
    const collect = (d: Buffer) => {
      this.output += d.toString()
    }
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    this.child = child
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${this.output}`)
      try {
        if ((await fetch(`${this.url}/`)).ok) return
      } catch {}
      await new Promise((r) => setTimeout(r, 25))
    }
    throw new Error(`server did not come up in ${timeoutMs} ms; it printed: ${this.output.slice(-4_000)}`)
  }

  async kill(signal: NodeJS.Signals): Promise<number | null> {
    const child = this.child
    if (!child || child.exitCode !== null) return child?.exitCode ?? null
    const exited = once(child, 'exit')
    child.kill(signal)
    const [code] = await exited
    return code as number | null
  }
}
