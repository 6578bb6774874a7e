/**
 * The `datapulse` command: `serve`, and a client of a running server for pipelines, ingestion,
 * windows, metrics and lookups. Arguments by node:util parseArgs (no dependency, strict, enough
 * for subcommands with a few flags each). Exit codes: 0 ok, 1 a request failed, 2 usage.
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ApiError, type Client, createClient } from '../client/client.ts'
import { VERSION } from '../version.ts'
import { FixtureError, runFixture } from './fixture-test.ts'
import { ingestFile } from './ingest.ts'
import { print, table, UsageError } from './output.ts'
import { apply, findPipeline, readSpec } from './pipelines.ts'

const HELP = `usage: datapulse <command> [flags]

  serve [flags]                        run the server (datapulse serve --help lists its flags)
  test SPEC.json FIXTURE.json          run a pipeline over a fixture in-process (no server) and
                                       compare with what it expects; exit 1 and a diff on a mismatch
  pipelines list                       every pipeline with status and counters
  pipelines get PIPELINE               one pipeline (id or name)
  pipelines apply -f SPEC.json [--reset]
                                       create; or, by name, leave the same spec as it is and change
                                       another in place (open windows kept; a change that would lose
                                       them is refused unless --reset)
  pipelines start|stop|delete PIPELINE
  pipelines replay PIPELINE [--from earliest|TIME|OFFSET]
                                       recompute from a point of the source topic, then run live
  pipelines versions PIPELINE          every version of its spec
  ingest FILE.ndjson|-  [--topic T] [--batch N] [--skip LINES]
                                       send a file of events (one JSON per line), with progress
  tail PIPELINE                        follow window results as they change
  windows PIPELINE [--state open|closed|all] [--limit N] [--key PATH=VALUE]…
  metrics query NAME [--from T] [--to T] [--step 1m] [--agg avg] [--tag K=V]…
  lookups put TABLE -f ROWS.csv|ROWS.json [--key FIELD]

flags for every command:
  --url URL        the server (DATAPULSE_URL; default http://127.0.0.1:8003)
  --api-key KEY    an API key (DATAPULSE_API_KEY)
  --json           machine-readable output
  --help           this text
  --version        the version

exit codes: 0 ok, 1 a request failed, 2 usage`

const FLAGS = {
  url: { type: 'string' },
  'api-key': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  file: { type: 'string', short: 'f' },
  topic: { type: 'string' },
  batch: { type: 'string' },
  skip: { type: 'string' },
  state: { type: 'string' },
  limit: { type: 'string' },
  key: { type: 'string', multiple: true },
  from: { type: 'string' },
  to: { type: 'string' },
  step: { type: 'string' },
  agg: { type: 'string' },
  tag: { type: 'string', multiple: true },
  reset: { type: 'boolean' },
} as const

type Flags = ReturnType<typeof parseArgs<{ options: typeof FLAGS; allowPositionals: true }>>['values']

function pairs(list: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const item of list ?? []) {
    const eq = item.indexOf('=')
    if (eq <= 0) throw new UsageError(`--${flag} takes NAME=VALUE, got '${item}'`)
    out[item.slice(0, eq)] = item.slice(eq + 1)
  }
  return out
}

function count(value: string | undefined, flag: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${flag} must be an integer of at least ${min}`)
  return n
}

function need(args: string[], i: number, what: string): string {
  const v = args[i]
  if (v === undefined) throw new UsageError(`missing ${what} (datapulse --help)`)
  return v
}

const windowRows = (windows: Array<Record<string, unknown>>) =>
  windows.map((w) => ({ ...w, state: w.closed ? 'closed' : 'open' }))

async function run(command: string, args: string[], flags: Flags, client: Client): Promise<void> {
  const json = flags.json === true
  switch (command) {
    case 'pipelines': {
      const sub = need(
        args,
        0,
        'a pipelines command: list, get, apply, start, stop, delete, replay, versions',
      )
      if (sub === 'list') {
        const { pipelines } = await client.listPipelines()
        return print(json, pipelines, () =>
          table(
            pipelines.map((p) => ({
              ...p,
              in: p.stats.events_in,
              results: p.stats.results,
              lag: p.stats.lag,
            })),
            ['id', 'name', 'status', 'source_topic', 'in', 'results', 'lag'],
          ),
        )
      }
      if (sub === 'apply') {
        if (!flags.file) throw new UsageError('pipelines apply needs -f SPEC.json')
        const applied = await apply(client, readSpec(flags.file), flags.reset === true)
        return print(
          json,
          applied,
          () =>
            `${applied.pipeline.name} (${applied.pipeline.id}): ${applied.action}${applied.changed ? ` (${applied.changed.join(', ')}; version ${applied.pipeline.version})` : ''}`,
        )
      }
      const pipeline = await findPipeline(client, need(args, 1, 'a pipeline id or name'))
      if (sub === 'get') return print(true, pipeline, () => '')
      if (sub === 'start' || sub === 'stop') {
        const p =
          sub === 'start' ? await client.startPipeline(pipeline.id) : await client.stopPipeline(pipeline.id)
        return print(json, p, () => `${p.name}: ${p.status}`)
      }
      if (sub === 'replay') {
        const from = flags.from ?? 'earliest'
        const p = await client.replayPipeline(pipeline.id, /^\d+$/.test(from) ? Number(from) : from)
        const r = p.stats.replay
        return print(json, p, () =>
          r
            ? `${p.name}: replaying from ${r.from}, ${r.recomputes_from === null ? 'every window' : `the windows from ${r.recomputes_from}`} (offsets ${r.start} → ${r.target}); ${r.state}`
            : `${p.name}: ${p.status}`,
        )
      }
      if (sub === 'versions') {
        const { versions } = await client.versions(pipeline.id)
        return print(json, versions, () =>
          table(
            versions.map((v) => ({ ...v, spec: JSON.stringify(v.spec).slice(0, 80) })),
            ['version', 'created_at', 'reset', 'spec'],
          ),
        )
      }
      if (sub === 'delete') {
        await client.deletePipeline(pipeline.id)
        return print(json, { deleted: pipeline.id }, () => `${pipeline.name}: deleted`)
      }
      throw new UsageError(`unknown pipelines command '${sub}'`)
    }
    case 'ingest': {
      const file = need(args, 0, 'a file of events (or - for stdin)')
      const report = await ingestFile(client, {
        file,
        topic: flags.topic,
        batch: count(flags.batch, 'batch', 5_000, 1),
        skip: count(flags.skip, 'skip', 0, 0),
        progress: json ? 'none' : process.stderr.isTTY ? 'bar' : 'lines',
      })
      print(json, report, () =>
        [
          `ingested ${report.events} events (${(report.bytes / 2 ** 20).toFixed(1)} MB) in ${report.seconds.toFixed(1)} s: ${Math.round(report.eventsPerSecond)} events/s`,
          ...(report.stoppedAtLine === undefined
            ? []
            : [
                `stopped at line ${report.stoppedAtLine}: ${report.error}`,
                `resume with: datapulse ingest ${file} --skip ${report.stoppedAtLine - 1}`,
              ]),
        ].join('\n'),
      )
      if (report.stoppedAtLine !== undefined) process.exitCode = 1
      return
    }
    case 'windows': {
      const pipeline = await findPipeline(client, need(args, 0, 'a pipeline id or name'))
      const state = flags.state as 'open' | 'closed' | 'all' | undefined
      if (state !== undefined && !['open', 'closed', 'all'].includes(state))
        throw new UsageError('--state is open, closed or all')
      const { windows } = await client.windows(pipeline.id, {
        state,
        limit: count(flags.limit, 'limit', 100, 1),
        key: pairs(flags.key, 'key'),
      })
      return print(json, windows, () =>
        table(windowRows(windows), ['window_start', 'window_end', 'key', 'results', 'state']),
      )
    }
    case 'tail': {
      const pipeline = await findPipeline(client, need(args, 0, 'a pipeline id or name'))
      const seen = new Map<string, string>()
      for await (const { event, data } of client.stream(pipeline.id)) {
        if (event !== 'windows') continue
        // oldest first, so the newest change is the last line
        for (const w of [...(data as Array<Record<string, unknown>>)].reverse()) {
          const id = `${w.window_start}|${JSON.stringify(w.key)}`
          const text = JSON.stringify([w.results, w.closed])
          if (seen.get(id) === text) continue
          seen.set(id, text)
          process.stdout.write(
            json
              ? `${JSON.stringify(w)}\n`
              : `${w.window_start} ${JSON.stringify(w.key)} ${JSON.stringify(w.results)} ${w.closed ? 'closed' : 'open'}\n`,
          )
        }
      }
      return
    }
    case 'metrics': {
      if (need(args, 0, 'a metrics command: query') !== 'query')
        throw new UsageError('metrics takes: query NAME')
      const agg = flags.agg as 'avg' | undefined
      const result = await client.queryMetrics({
        name: need(args, 1, 'a series name'),
        from: flags.from,
        to: flags.to,
        step: flags.step,
        agg,
        tags: pairs(flags.tag, 'tag'),
      })
      return print(json, result, () =>
        table(
          result.series.flatMap((s) => s.points.map((p) => ({ series: s.name, tags: s.tags, ...p }))),
          ['series', 'tags', 'timestamp', 'value'],
        ),
      )
    }
    case 'lookups': {
      if (need(args, 0, 'a lookups command: put') !== 'put')
        throw new UsageError('lookups takes: put TABLE -f FILE')
      const name = need(args, 1, 'a table name')
      if (!flags.file) throw new UsageError('lookups put needs -f ROWS.csv or ROWS.json')
      let text: string
      try {
        text = readFileSync(flags.file, 'utf8')
      } catch (err) {
        throw new UsageError(`cannot read ${flags.file}: ${(err as NodeJS.ErrnoException).code ?? err}`)
      }
      const key = flags.key?.[0] ?? 'id'
      const result = flags.file.endsWith('.json')
        ? await client.putLookup(name, key, JSON.parse(text) as Array<Record<string, unknown>>)
        : await client.putLookup(name, key, text)
      return print(json, result, () => `${result.table}: ${result.rows} rows keyed by ${result.key}`)
    }
    default:
      throw new UsageError(`unknown command '${command}' (datapulse --help)`)
  }
}

/** `datapulse test SPEC FIXTURE [--json]`: 0 as expected, 1 a difference (printed), 2 a spec or fixture that cannot run. */
function testFixture(argv: string[]): number {
  const json = argv.includes('--json')
  const [specFile, fixtureFile, ...rest] = argv.filter((a) => a !== '--json')
  if (!specFile || !fixtureFile || rest.length > 0) {
    process.stderr.write('datapulse: usage: datapulse test SPEC.json FIXTURE.json [--json]\n')
    return 2
  }
  try {
    const report = runFixture(readJson(specFile), readJson(fixtureFile))
    print(json, report, () =>
      [
        ...report.diff,
        `${report.ok ? 'ok' : 'FAILED'}: ${fixtureFile}: ${report.summary}`,
        ...(report.ok
          ? []
          : ['(- expected, not produced; + produced, not expected; ~ produced with other values)']),
      ].join('\n'),
    )
    return report.ok ? 0 : 1
  } catch (err) {
    if (err instanceof FixtureError || err instanceof UsageError) {
      process.stderr.write(`datapulse: ${err.message}\n`)
      return 2
    }
    throw err
  }
}

function readJson(file: string): unknown {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`)
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new UsageError(`${file} is not JSON: ${(err as Error).message}`)
  }
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'serve') {
    // the server's heap policy, as `npm start` (src/main.ts) has it
    const { releaseMemoryWhenQuiet } = await import('../heap-policy.ts')
    releaseMemoryWhenQuiet()
    const { serve } = await import('../serve.ts')
    await serve(argv.slice(1))
    return 0
  }
  if (argv[0] === 'test') return testFixture(argv.slice(1))
  let parsed: { values: Flags; positionals: string[] }
  try {
    parsed = parseArgs({ args: argv, options: FLAGS, allowPositionals: true, strict: true })
  } catch (err) {
    process.stderr.write(`datapulse: ${(err as Error).message} (datapulse --help)\n`)
    return 2
  }
  const { values: flags, positionals } = parsed
  if (flags.version) {
    process.stdout.write(`${VERSION}\n`)
    return 0
  }
  if (flags.help || positionals.length === 0) {
    process.stdout.write(`${HELP}\n`)
    return positionals.length === 0 && !flags.help ? 2 : 0
  }
  const client = createClient({
    url: flags.url ?? process.env.DATAPULSE_URL,
    apiKey: flags['api-key'] ?? process.env.DATAPULSE_API_KEY,
  })
  try {
    await run(positionals[0], positionals.slice(1), flags, client)
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`datapulse: ${err.message}\n`)
      return 2
    }
    if (err instanceof ApiError) {
      const details = err.details.map((d) => `\n  ${d.path}: ${d.message}`).join('')
      const hint =
        err.status === 401
          ? ' (give a key with --api-key or DATAPULSE_API_KEY)'
          : err.status === 403
            ? ' (this key lacks the role)'
            : ''
      process.stderr.write(`datapulse: ${err.status} ${err.code}: ${err.message}${hint}${details}\n`)
      return 1
    }
    const cause = (err as { cause?: { code?: string } }).cause?.code
    if (cause === 'ECONNREFUSED')
      process.stderr.write(
        `datapulse: nothing answers at ${client.url} (start it with datapulse serve, or give --url)\n`,
      )
    else process.stderr.write(`datapulse: ${(err as Error).message}\n`)
    return 1
  }
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main(process.argv.slice(2))
