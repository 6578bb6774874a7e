/** The ceiling for HTTP ingest: node:http that reads each body, JSON.parses it and answers 200. */
import { createServer } from 'node:http'

const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      events?: unknown[]
      metrics?: unknown[]
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(`{"accepted":${(body.events ?? body.metrics ?? []).length}}`)
  })
})
server.listen(Number(process.argv[2]), '127.0.0.1', () => process.stdout.write('ready\n'))
