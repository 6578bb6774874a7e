/**
 * Builds the dashboard: web/src (TypeScript) → web/dist/app.js with esbuild, plus uPlot's CSS.
 * Runs on `npm install` (prepare) and before `npm start`; `--if-missing` skips a built tree.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { build } from 'esbuild'

const root = new URL('../', import.meta.url).pathname
const dist = `${root}web/dist`

export async function buildWeb(): Promise<void> {
  mkdirSync(dist, { recursive: true })
  await build({
    entryPoints: [`${root}web/src/main.ts`],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    outfile: `${dist}/app.js`,
    logLevel: 'warning',
  })
  copyFileSync(`${root}node_modules/uplot/dist/uPlot.min.css`, `${dist}/uplot.css`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.includes('--if-missing') && existsSync(`${dist}/app.js`)) process.exit(0)
  await buildWeb()
}
