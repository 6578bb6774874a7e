/**
 * Builds the typed client (`datapulse/client`) to dist/client.js for packages that import it from
 * node_modules, where Node.js does not strip types; its types stay src/client/client.ts.
 */
import { build } from 'esbuild'

const root = new URL('../', import.meta.url).pathname

export async function buildClient(): Promise<void> {
  await build({
    entryPoints: [`${root}src/client/client.ts`],
    bundle: true,
    platform: 'neutral',
    format: 'esm',
    target: 'es2022',
    outfile: `${root}dist/client.js`,
    logLevel: 'warning',
  })
}

if (import.meta.url === `file://${process.argv[1]}`) await buildClient()
