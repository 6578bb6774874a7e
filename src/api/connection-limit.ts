import { AppError } from '../errors.ts'
import { sendError } from './reply.ts'
import type { Server } from './server-type.ts'

/**
 * Caps open connections: a request that arrives on a connection past `max` gets 503 with
 * `Retry-After` and the connection is closed, so idle or slow clients cannot hold the server's
 * memory and sockets without bound. (Node's own `maxConnections` drops sockets without a word.)
 */
export function limitConnections(app: Server, max: number): void {
  let open = 0
  app.server.on('connection', (socket) => {
    open++
    socket.once('close', () => {
      open--
    })
  })
  app.addHook('onRequest', async (_request, reply) => {
    if (open <= max) return
    reply.header('connection', 'close')
    return sendError(reply, new AppError('unavailable', `more than ${max} connections are open`, [], 1))
  })
}
