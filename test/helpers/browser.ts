import { existsSync, mkdirSync } from 'node:fs'
import type { TestContext } from 'node:test'
import { type BrowserContext, chromium } from 'playwright-core'
import { buildWeb } from '../../scripts/build-web.ts'
import { tempDir } from './tmp.ts'

const CHROMIUM = '/usr/bin/chromium'
export const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname

/** A headless Chromium (Debian's), or a skip with the reason (a failure under CI). */
export async function browser(t: TestContext): Promise<BrowserContext | undefined> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`)
    t.skip(`browser tests skipped: ${CHROMIUM} is not installed`)
    return undefined
  }
  await buildWeb()
  mkdirSync(ARTIFACTS, { recursive: true })
  const context = await chromium.launchPersistentContext(tempDir(t, 'datapulse-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    viewport: { width: 1440, height: 900 },
  })
  t.after(() => context.close())
  return context
}
