#!/usr/bin/env node
// Plain JavaScript, so an older Node.js can still say what it needs instead of a stack trace.
const major = Number(process.versions.node.split('.')[0])
if (major < 24) {
  process.stderr.write(
    `datapulse: needs Node.js 24 or newer, this is ${process.version}: run it through npm (npm start, npx datapulse), which uses the Node.js 24 that npm install puts in node_modules, or install Node.js 24\n`,
  )
  process.exit(2)
}
const { main } = await import('../src/cli/main.ts')
process.exitCode = await main(process.argv.slice(2))
