/** How the CLI prints: aligned tables for people, JSON with --json. */
export function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  const text = (v: unknown) =>
    v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v)
  const cells = rows.map((r) => columns.map((c) => text(r[c])))
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)))
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd()
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n')
}

export function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(`${json ? JSON.stringify(value, null, 2) : human()}\n`)
}

/** A usage error: exit code 2. */
export class UsageError extends Error {}
